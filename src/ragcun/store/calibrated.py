"""``CalibratorSource``: what every store's ``calibrator=`` accepts (the core and both framework adapters)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ragcun.scoring.calibrator import RelevanceCalibrator


@runtime_checkable
class CarriesCalibrator(Protocol):
    """A model that may carry a relevance calibrator: a ``GaussianEncoder`` or a framework embedding over one."""

    @property
    def relevance_calibrator(self) -> RelevanceCalibrator | None:
        """Its calibrator, ``None`` if it has none."""


CalibratorSource = RelevanceCalibrator | CarriesCalibrator | None
"""A :class:`RelevanceCalibrator`, a model carrying one, or ``None``."""
