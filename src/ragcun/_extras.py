"""The one check the framework plugins run first: their framework is an extra, so name it when it is missing."""

from __future__ import annotations

import importlib


def require(module: str, package: str, extra: str, plugin: str) -> None:
    """Import ``module``; if it is not installed, one ``ImportError`` saying that ``plugin`` needs ``package``
    and the ``pip install "ragcun[extra]"`` that brings it (any other import failure surfaces as it is)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as missing:
        if missing.name != module:
            raise
        raise ImportError(f'{plugin} requires {package}: pip install "ragcun[{extra}]"') from None
