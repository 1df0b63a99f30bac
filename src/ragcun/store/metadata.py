"""``check_metadata``: metadata must survive a JSON save and load unchanged, so it is checked when added.

Allowed: a dict with string keys whose values are ``None``, ``bool``, ``int``, finite ``float``,
``str``, lists of allowed values and dicts of the same kind. Anything JSON would change or refuse
(non-string keys, tuples, sets, NaN or infinite floats, other types) is refused with a
``ValueError`` naming the record, the metadata key and where below it the value sits
(``record 'm': metadata key 'o' holds a set at ['x'][0], which JSON cannot store unchanged; use a
list``), so a filter matches the same records before and after a save.
"""

from __future__ import annotations

import math
from typing import Any


def _a(value: Any) -> str:
    """``value``'s type name with its article: ``"an int"``, ``"a set"``."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _problem(value: Any, path: str) -> str | None:
    """What makes ``value`` (at ``path`` below a metadata key, ``""`` for the key's value) not round-trip
    through JSON, worded to follow ``metadata key 'k' holds``; ``None`` if it does."""
    at = f" at {path}" if path else ""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r}{at}; JSON has no NaN or infinity"
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _problem(item, f"{path}[{i}]")) is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} ({_a(key)}){at}; keys must be strings"
            if (found := _problem(item, f"{path}[{key!r}]")) is not None:
                return found
        return None
    hint = "; use a list" if isinstance(value, (tuple, set, frozenset)) else ""
    return f"{_a(value)}{at}, which JSON cannot store unchanged{hint}"


def _metadata_problem(metadata: dict[Any, Any]) -> str | None:
    """The first problem of ``metadata``, naming its key: ``metadata key 'o' holds an object, ...``."""
    for key, value in metadata.items():
        if not isinstance(key, str):
            return f"metadata key {key!r} is {_a(key)}; keys must be strings"
        if (found := _problem(value, "")) is not None:
            return f"metadata key {key!r} holds {found}"
    return None


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """``metadata`` if it survives a JSON round trip unchanged; else a ``ValueError`` starting with ``what``."""
    if not isinstance(metadata, dict):
        raise ValueError(f"{what}: metadata must be a dict, got {type(metadata).__name__}")
    try:
        found = _metadata_problem(metadata)
    except RecursionError:
        found = "metadata is nested too deeply (or contains itself)"
    if found is not None:
        raise ValueError(f"{what}: {found}")
    return metadata
