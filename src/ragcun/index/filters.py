"""Metadata filters, one implementation for every ragcun store.

A filter spec is ``None`` (everything), a callable ``metadata -> bool``, or a Mongo-style dict, read
as LangChain's FAISS store reads its dict filters (ragcun adds operators, never a different meaning):

* ``{"genre": "sf"}`` - equality; several keys are ANDed;
* ``{"page": [1, 2]}`` - a list (tuple, set) value is membership, ``{"page": {"$in": [1, 2]}}``;
  to match a list-valued field exactly, say ``{"tags": {"$eq": ["a", "b"]}}``;
* ``{"year": {"$gte": 1990, "$lt": 2000}}`` - operators ``$eq $ne`` (alias ``$neq``) ``$gt $gte $lt
  $lte $in $nin $contains $any $all $exists $text_match``; an empty ``{}`` constrains nothing;
* ``{"$and": [spec, ...]}``, ``{"$or": [spec, ...]}``, ``{"$not": spec}``.

A missing key reads as ``None`` (as ``metadata.get(key)`` does): ``{"note": None}`` matches records
without ``note`` too, and only ``$exists`` tells the two apart. Comparing values of incomparable
types (``"a" > 3``, ``None > 1``) does not match rather than raising (FAISS raises ``TypeError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


def _as_list(value: Any, op: str) -> list:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"filter operator {op} needs a list value; got {value!r}")
    return list(value)


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "$exists":
        return (have is not _MISSING) == bool(want)
    if have is _MISSING:
        have = None
    try:
        if op == "$eq":
            return have == want
        if op in ("$ne", "$neq"):
            return have != want
        if op == "$gt":
            return have > want
        if op == "$gte":
            return have >= want
        if op == "$lt":
            return have < want
        if op == "$lte":
            return have <= want
    except TypeError:
        return False
    if op == "$in":
        return have in _as_list(want, op)
    if op == "$nin":
        return have not in _as_list(want, op)
    if op == "$contains":
        if isinstance(have, str):
            return isinstance(want, str) and want in have
        return isinstance(have, (list, tuple)) and want in have
    if op == "$any":
        return isinstance(have, (list, tuple)) and any(w in have for w in _as_list(want, op))
    if op == "$all":
        return isinstance(have, (list, tuple)) and all(w in have for w in _as_list(want, op))
    if op == "$text_match":
        return isinstance(have, str) and str(want) in have
    raise ValueError(f"unknown filter operator {op!r}")


_OPS = {"$eq", "$ne", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$any", "$all",
        "$exists", "$text_match"}


def is_operator_dict(key: str, cond: Any) -> bool:
    """Whether ``cond`` (the condition on field ``key``) is a dict of operators: ``{}`` or all keys ``$``-prefixed.

    A dict without ``$`` keys is a value to compare equal; one mixing both is a ``ValueError``."""
    if not isinstance(cond, Mapping):
        return False
    marked = [str(k).startswith("$") for k in cond]
    if any(marked) and not all(marked):
        raise ValueError(f"filter condition on key {key!r} mixes operators and plain keys: {sorted(map(str, cond))}")
    return not cond or all(marked)


def is_membership(cond: Any) -> bool:
    """Whether a field's plain condition is a list (tuple, set) of values, read as ``$in`` as LangChain's FAISS does."""
    return isinstance(cond, (list, tuple, set, frozenset))


def _field(key: str, cond: Any) -> Predicate:
    if is_operator_dict(key, cond):
        unknown = set(cond) - _OPS
        if unknown:
            raise ValueError(f"unknown filter operator(s) {sorted(unknown)} for key {key!r}")
        for op in ("$in", "$nin", "$any", "$all"):
            if op in cond:
                _as_list(cond[op], op)
        items = list(cond.items())
        return lambda md: all(_compare(op, md.get(key, _MISSING), want) for op, want in items)
    if is_membership(cond):
        members = list(cond)
        return lambda md: _compare("$in", md.get(key, _MISSING), members)
    return lambda md: _compare("$eq", md.get(key, _MISSING), cond)


def compile_filter(spec: Mapping[str, Any] | Predicate | None) -> Predicate | None:
    """Turn a filter spec (see module docstring) into a predicate on a metadata dict; ``None`` stays ``None``."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"filter must be a dict, a callable or None; got {type(spec).__name__}")
    parts: list[Predicate] = []
    for key, cond in spec.items():
        if key in ("$and", "$or"):
            subs = [_sub_filter(s, key) for s in _as_list(cond, key)]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key == "$not":
            parts.append(_negation(_sub_filter(cond, key)))
        elif str(key).startswith("$"):
            raise ValueError(f"unknown filter combinator {key!r}; use $and, $or or $not")
        else:
            parts.append(_field(key, cond))
    return _all_of(parts)


def _sub_filter(spec: Any, combinator: str) -> Predicate:
    """``spec`` under ``combinator`` compiled; ``None`` (no filter) has no meaning there and is refused."""
    predicate = compile_filter(spec)
    if predicate is None:
        raise ValueError(f"filter combinator {combinator} needs filter specs; got None")
    return predicate


def _all_of(predicates: list[Predicate]) -> Predicate:
    return lambda md: all(p(md) for p in predicates)


def _any_of(predicates: list[Predicate]) -> Predicate:
    return lambda md: any(p(md) for p in predicates)


def _negation(predicate: Predicate) -> Predicate:
    return lambda md: not predicate(md)
