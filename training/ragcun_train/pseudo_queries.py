"""Deprecated path of :mod:`ragcun_train.distil.pseudo_queries`: importing it warns and yields that module."""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn("ragcun_train.pseudo_queries moved to ragcun_train.distil.pseudo_queries; import from there (the old path will be removed)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("ragcun_train.distil.pseudo_queries")
