"""The hybrid fusion a model was fitted with, saved in its model folder beside the relevance calibrator.

``ragcun-train`` fits the dense weight on the queries it holds back; a store given such a model
uses that weight unless the user sets one (``alpha=``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragcun.io.atomic import write_json_atomic

FILE = "ragcun_fusion.json"


@dataclass(frozen=True)
class FusionSettings:
    """A fitted hybrid fusion: the dense weight ``alpha`` for ``normalization``, and what it was fitted on."""

    alpha: float
    normalization: str
    fitted_on: dict[str, Any]

    def __post_init__(self) -> None:
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise ValueError(f"alpha (the dense weight) must be a number in [0, 1]; got {a!r}")
        if not isinstance(self.normalization, str) or not self.normalization:
            raise ValueError(f"normalization must be a non-empty string; got {self.normalization!r}")
        if not isinstance(self.fitted_on, dict):
            raise ValueError(f"fitted_on must be a dict; got {type(self.fitted_on).__name__}")

    def save(self, folder: str | Path) -> Path:
        """Write :data:`FILE` into model ``folder`` atomically; returns its path."""
        path = Path(folder) / FILE
        write_json_atomic(path, asdict(self))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> FusionSettings | None:
        """The settings saved in model ``folder``; ``None`` when it has none; ``ValueError`` when corrupt."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(float(data["alpha"]), data["normalization"], data["fitted_on"])
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: corrupt fusion settings ({exc})") from None
