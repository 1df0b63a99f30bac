"""``check_metadata``: metadata must survive a JSON save and load unchanged, so it is checked when added.

Allowed: a dict with string keys whose values are ``None``, ``bool``, ``int``, finite ``float``,
``str``, lists of allowed values and dicts of the same kind. Anything JSON would change or refuse
(non-string keys, tuples, sets, NaN or infinite floats, other types) is refused with a
``ValueError`` naming the record and the key, so a filter matches the same records before and
after a save.
"""

from __future__ import annotations

import math
from typing import Any


def _problem(value: Any, path: str) -> str | None:
    """What makes ``value`` (at ``path``) not round-trip through JSON, or ``None``."""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}; JSON has no NaN or infinity"
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _problem(item, f"{path}[{i}]")) is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} in {path or 'metadata'} is a {type(key).__name__}; keys must be strings"
            if (found := _problem(item, f"{path}[{key!r}]" if path else repr(key))) is not None:
                return found
        return None
    hint = "; use a list" if isinstance(value, (tuple, set, frozenset)) else ""
    return f"{path} is a {type(value).__name__}, which JSON cannot store unchanged{hint}"


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """``metadata`` if it survives a JSON round trip unchanged; else a ``ValueError`` starting with ``what``."""
    if not isinstance(metadata, dict):
        raise ValueError(f"{what}: metadata must be a dict, got {type(metadata).__name__}")
    try:
        found = _problem(metadata, "")
    except RecursionError:
        found = "metadata is nested too deeply (or contains itself)"
    if found is not None:
        raise ValueError(f"{what}: {found}")
    return metadata
