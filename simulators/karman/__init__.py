"""The von Karman vortex street: lbmpy D2Q9 flow past a cylinder, written as a field store.

``config`` (the options), ``lattice`` (domain, boundaries, collision, stability), ``run`` (one Reynolds
number -> frames), ``writer`` (frames -> zarr regions, progress, completeness), ``parallel`` (dask),
``analysis`` (Strouhal number from stored frames).

Only ``KarmanConfig`` is imported eagerly: the rest pulls in lbmpy and dask (seconds), which the ``forecast``
command line must not pay for ``--help`` or for commands that do not simulate.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulators.karman.config import KarmanConfig

# name -> module: imported on first access
_LAZY = {
    "SimulationDiverged": "simulators.karman.lattice",
    "GenerationResult": "simulators.karman.parallel",
    "generate": "simulators.karman.parallel",
}

__all__ = ["KarmanConfig", "SimulationDiverged", "GenerationResult", "generate"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'simulators.karman' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
