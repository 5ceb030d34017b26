"""The von Karman vortex street: lbmpy D2Q9 flow past a cylinder, written as a field store.

``config`` (the options), ``lattice`` (domain, boundaries, collision, stability), ``run`` (one Reynolds
number -> frames), ``writer`` (frames -> zarr regions, progress, completeness), ``parallel`` (dask),
``analysis`` (Strouhal number from stored frames).
"""

from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import SimulationDiverged
from simulators.karman.parallel import GenerationResult, generate

__all__ = ["KarmanConfig", "SimulationDiverged", "GenerationResult", "generate"]
