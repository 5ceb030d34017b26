"""Kolmogorov flow: chaotic 2-D turbulence on a periodic square, lbmpy D2Q9, written as a field store.

``config`` (the options and units), ``lattice`` (forcing, collision, perturbations), ``run`` (one seed ->
frames), ``truth`` (perturbation ensembles), ``writer`` (coordinates and attributes on the shared store),
``parallel`` (the shared orchestration), ``analysis`` (spectrum, energy balance, error growth).

Only ``KolmogorovConfig`` is imported eagerly: the rest pulls in lbmpy and dask.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulators.kolmogorov.config import KolmogorovConfig

_LAZY = {
    "SimulationDiverged": "simulators.kolmogorov.lattice",
    "GenerationResult": "simulators.common.parallel",
    "generate": "simulators.kolmogorov.parallel",
}

__all__ = ["KolmogorovConfig", "SimulationDiverged", "GenerationResult", "generate"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'simulators.kolmogorov' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
