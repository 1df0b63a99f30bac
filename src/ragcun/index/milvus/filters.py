"""Milvus boolean expressions: ragcun filter specs translated for pushdown, quoting and id lists.

:func:`translate_filter` turns a ragcun filter spec (see :mod:`ragcun.index.filters`) into a Milvus
expression on the JSON ``metadata`` field that keeps a superset of the spec's matches, and says
whether it is exact; :func:`milvus_filter_expression` is its expression alone. Nothing here needs
pymilvus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ragcun.index.filters import compile_filter, is_membership, is_operator_dict

ID_FIELD = "id"
METADATA_FIELD = "metadata"


def quote(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal (backslash, quote and newlines escaped)."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def id_expression(ids: Sequence[str]) -> str:
    """A Milvus expression keeping the rows whose primary key is one of ``ids``."""
    return f"{ID_FIELD} in [{', '.join(quote(i) for i in ids)}]"


def filter_expression(filter: object) -> str:
    """``filter`` as a Milvus expression: a string is used as is, anything else is a ragcun spec (``None``: ``""``)."""
    return filter if isinstance(filter, str) else milvus_filter_expression(filter)


_COMPARISONS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_Translation = tuple[str | None, bool]  # (expression, or None for "no constraint"; exact)
_ANYTHING: _Translation = (None, False)  # no constraint: a superset of whatever the filter keeps


def _literal(value: object) -> str | None:
    """``value`` as a Milvus literal, or ``None`` when it is not a scalar Milvus compares like Python."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2 ** 63) <= value < 2 ** 63 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return quote(value)
    return None


def _atom(path: str, op: str, want: Any) -> _Translation:
    """One ``{key: {op: want}}`` test; exact ones are two-valued (never null), so ``not`` keeps them exact."""
    if op in ("$exists", "$nin", "$in", "$any", "$all"):
        if op == "$exists":  # Milvus cannot tell a JSON null from a missing key: `not exists` keeps both
            return (f"(not exists {path})", False) if not want else _ANYTHING
        items = list(want)
        if op == "$nin":
            parts = [_atom(path, "$ne", w) for w in items]
            return _conjoin(parts) if parts else (None, True)
        if op == "$in":
            return _disjoin([_atom(path, "$eq", w) for w in items]) if items else _ANYTHING
        literals = [_literal(w) for w in items]
        known = [w for w in literals if w is not None]
        if not items or len(known) < len(items):
            return _ANYTHING
        function = "json_contains_any" if op == "$any" else "json_contains_all"
        return f"(exists {path} and {function}({path}, [{', '.join(known)}]))", True
    literal = _literal(want)
    if (literal is None or op == "$text_match" or (op == "$contains" and isinstance(want, str))
            or (op in ("$gt", "$gte", "$lt", "$lte") and isinstance(want, bool))):
        return _ANYTHING  # substring tests, ordering by booleans and non-scalar values: left to the caller
    if op in ("$ne", "$neq"):
        return f"(not exists {path} or {path} != {literal})", True
    if op == "$contains":
        literal = f"({literal})" if literal.startswith("-") else literal  # Milvus Lite's parser needs the parens
        return f"(exists {path} and json_contains({path}, {literal}))", True
    # an ordering test on a value of another type is null in Milvus (False in Python), so its
    # negation would drop rows Python keeps: report it inexact and `$not` leaves it to the caller
    return f"(exists {path} and {path} {_COMPARISONS[op]} {literal})", op == "$eq"


def _conjoin(parts: list[_Translation]) -> _Translation:
    exprs = [e for e, _ in parts if e is not None]
    exact = all(x for _, x in parts)
    if not exprs:
        return None, exact
    return (exprs[0] if len(exprs) == 1 else "(" + " and ".join(exprs) + ")"), exact


def _disjoin(parts: list[_Translation]) -> _Translation:
    if not parts:
        return _ANYTHING
    if any(e is None for e, _ in parts):
        return None, any(e is None and x for e, x in parts)
    exprs = [e for e, _ in parts if e is not None]
    return (exprs[0] if len(exprs) == 1 else "(" + " or ".join(exprs) + ")"), all(x for _, x in parts)


def _translate(spec: Any) -> _Translation:
    if spec is None:
        return None, True
    if callable(spec):
        return _ANYTHING
    parts: list[_Translation] = []
    for key, cond in spec.items():
        if key in ("$and", "$or"):
            subs = [_translate(s) for s in cond]
            parts.append(_conjoin(subs) if key == "$and" else _disjoin(subs))
        elif key == "$not":
            expr, exact = _translate(cond)
            parts.append((f"(not {expr})", True) if exact and expr is not None else _ANYTHING)
        else:
            path = f"{METADATA_FIELD}[{quote(str(key))}]"
            if is_operator_dict(key, cond):
                parts.append(_conjoin([_atom(path, op, want) for op, want in cond.items()]))
            elif is_membership(cond):
                parts.append(_atom(path, "$in", cond))
            else:
                parts.append(_atom(path, "$eq", cond))
    return _conjoin(parts)


def translate_filter(spec: Any) -> tuple[str, bool]:
    """A ragcun filter spec (see :mod:`ragcun.index.filters`) as ``(milvus_expression, exact)``.

    The expression tests the JSON ``metadata`` field and keeps every row the spec keeps (``""``
    keeps all). ``exact`` says it keeps no others, under negation too; where Milvus cannot match
    Python's semantics (substring ``$contains`` / ``$text_match``, ``$exists``, ``None`` - which a
    missing key reads as -, list or dict values to compare equal, callables, a negated ``$gt``-style
    ordering) that part is widened, so callers
    apply the spec's predicate to the hits as well.
    Invalid specs raise the errors :func:`ragcun.index.filters.compile_filter` raises.
    """
    compile_filter(spec)
    expr, exact = _translate(spec)
    return expr or "", exact


def milvus_filter_expression(spec: Any) -> str:
    """The Milvus expression of :func:`translate_filter` (a superset of the spec's matches; ``""`` = all)."""
    return translate_filter(spec)[0]
