"""Importers: natural-video datasets and external gridded fields -> field stores (docs/formats.md).

One module per source kind; each exposes ``import_KIND(src, out, ...)``. They share
:mod:`forecast.data.importers.writer`, which streams sequences into the store, resumes an interrupted
import and sets the completeness flag last. The modules are imported lazily by :func:`importer`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

KINDS = ("kth", "bair", "cityscapes", "smmnist", "fields")


def importer(kind: str) -> Callable:
    """The ``import_KIND`` function of one source kind."""
    from forecast.errors import ForecastError

    if kind not in KINDS:
        raise ForecastError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    return getattr(importlib.import_module(f"forecast.data.importers.{kind}"), f"import_{kind}")
