"""One run: one seed, from the random initial state through the spin-up to the last stored frame.

The lattice is touched only every ``every`` steps: lbmpy's time loop runs ``every`` steps at a time, then the
frame is coarse-grained to the stored size (block means of ``scale`` x ``scale`` cells) and the run checked for
divergence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from forecast.errors import ForecastError
from simulators.common.flow import FIELDS, block_mean, run_name
from simulators.common.stability import checked_frames
from simulators.kolmogorov.config import KolmogorovConfig
from simulators.kolmogorov.lattice import Lattice, build_lattice


def vorticity(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """dv/dx - du/dy of fields indexed [y, x] on the periodic grid (central differences, wrapped)."""
    dv_dx = (np.roll(v, -1, axis=1) - np.roll(v, 1, axis=1)) / 2
    du_dy = (np.roll(u, -1, axis=0) - np.roll(u, 1, axis=0)) / 2
    return dv_dx - du_dy


def full_fields(lattice: Lattice) -> dict[str, np.ndarray]:
    """The current state on the simulation grid: ``{name: (L, L) float64}``, rows = y, columns = x."""
    u, v, rho = (np.array(field.T) for field in lattice.macroscopic())
    return {"u": u, "v": v, "rho": rho, "vorticity": vorticity(u, v)}


def sample_frame(lattice: Lattice) -> dict[str, np.ndarray]:
    """The stored frame of the current state: ``{name: (height, width) float32}``, block means of the grid."""
    fields = full_fields(lattice)
    return {name: block_mean(fields[name], lattice.config.scale).astype(np.float32) for name in FIELDS}


def build_runs(config: KolmogorovConfig, indices: Sequence[int]) -> Lattice:
    """The lattice of run ``indices[0]`` (one run per lattice), started from its seed."""
    if len(indices) != 1:
        raise ForecastError("Kolmogorov flow computes one run per lattice")
    return build_lattice(config, config.seeds[indices[0]])


def batch_frames(
    config: KolmogorovConfig, indices: Sequence[int], lattice: Lattice | None = None
) -> Iterator[list[dict[str, np.ndarray]]]:
    """Yield ``[frame]`` of run ``indices[0]`` per stored time, after discarding the spin-up."""
    name = run_name(indices[0])
    lattice = lattice or build_runs(config, indices)
    # spin-up: the random start decays, the forced flow reaches its attractor
    yield from checked_frames(
        lattice, name, config.spinup_steps, config.every * 16, config.every, config.frames_per_run,
        lambda: [sample_frame(lattice)],
    )  # fmt: skip


def run_frames(config: KolmogorovConfig, index: int) -> Iterator[dict[str, np.ndarray]]:
    """Yield the ``frames + test_frames`` frames of run ``index``."""
    for frames in batch_frames(config, [index]):
        yield frames[0]
