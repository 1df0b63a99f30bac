"""``RetrievalMode``: the one vocabulary of retrieval modes, used by the core and both framework adapters.

``dense`` ranks by L2 distance, ``sparse`` by BM25 on the query text (the frameworks' word; ``lexical``
is accepted as an alias and read as ``sparse``), ``hybrid`` fuses both (:mod:`ragcun.store.fusion`).
Every place that takes a mode takes a :class:`RetrievalMode` or its plain string.
"""

from __future__ import annotations

from enum import Enum

LEXICAL_ALIAS = "lexical"
"""The older name of :attr:`RetrievalMode.SPARSE`, still accepted."""


class RetrievalMode(str, Enum):
    """How a text query is ranked: ``dense`` (L2), ``sparse`` (BM25; alias ``lexical``) or ``hybrid`` (fused)."""

    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> RetrievalMode | None:
        return cls.SPARSE if value == LEXICAL_ALIAS else None

    @classmethod
    def parse(cls, value: object) -> RetrievalMode:
        """``value`` (a mode or its string, ``"lexical"`` meaning sparse) as a mode, else a ``ValueError`` naming them."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"retrieval mode must be one of {names} (or {LEXICAL_ALIAS!r} for sparse); "
                             f"got {value!r}") from None
