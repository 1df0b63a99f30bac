"""The names a Gaussian head is built from: its architectures and initialisations.

Plain constants without torch, so a command line can offer them before anything heavy loads.
"""

from __future__ import annotations

HEADS = ("linear", "mlp", "residual")
"""Gaussian head architectures (:func:`ragcun.model.head.build_head`)."""
INITS = ("identity", "whitening", "random")
"""How a new head starts (``GaussianEncoder(init=...)``)."""
