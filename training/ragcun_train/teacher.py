"""Deprecated path of :mod:`ragcun_train.distil.teacher`: importing it warns and yields that module."""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn("ragcun_train.teacher moved to ragcun_train.distil.teacher; import from there (the old path will be removed)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("ragcun_train.distil.teacher")
