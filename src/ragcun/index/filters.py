"""Metadata filters, one implementation for every ragcun store.

A filter spec is ``None`` (everything), a callable ``metadata -> bool``, or a Mongo-style dict:

* ``{"genre": "sf"}`` - equality; several keys are ANDed;
* ``{"year": {"$gte": 1990, "$lt": 2000}}`` - operators ``$eq $ne $gt $gte $lt $lte $in $nin
  $contains $any $all $exists $text_match``;
* ``{"$and": [spec, ...]}``, ``{"$or": [spec, ...]}``, ``{"$not": spec}``.

A missing key matches only ``$ne``, ``$nin`` and ``$exists: False``; comparing values of
incomparable types (``"a" > 3``) does not match rather than raising.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


def _as_list(value: Any, op: str) -> list:
    if not isinstance(value, (list, tuple, set)):
        raise ValueError(f"filter operator {op} needs a list value; got {value!r}")
    return list(value)


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "$exists":
        return (have is not _MISSING) == bool(want)
    if have is _MISSING:
        return op in ("$ne", "$nin")
    try:
        if op == "$eq":
            return have == want
        if op == "$ne":
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


_OPS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$any", "$all",
        "$exists", "$text_match"}


def _field(key: str, cond: Any) -> Predicate:
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
        unknown = set(cond) - _OPS
        if unknown:
            raise ValueError(f"unknown filter operator(s) {sorted(unknown)} for key {key!r}")
        for op in ("$in", "$nin", "$any", "$all"):
            if op in cond:
                _as_list(cond[op], op)
        items = list(cond.items())
        return lambda md: all(_compare(op, md.get(key, _MISSING), want) for op, want in items)
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
