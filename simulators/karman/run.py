"""One run: one Reynolds number, from the start-up transient to the last stored frame.

The lattice is touched only every ``every`` steps: the compiled lbmpy time loop runs ``every`` steps at a time,
then the frame is cut out (crop to the stored window, block average to the stored size) and checked for
divergence. Everything per frame is O(cells), against O(every * cells) for the kernel. Runs with one Reynolds
number can share a lattice (``batch_frames``: channels stacked across the flow, ``lattice.build_batch``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from forecast.errors import ForecastError
from simulators.common.flow import FIELDS, block_mean, run_name
from simulators.common.stability import checked_frames
from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import Lattice, build_batch, channel_offset
from simulators.karman.noise import sequence_seed


def sample_frame(lattice: Lattice, member: int = 0) -> dict[str, np.ndarray]:
    """The stored window of the current state of channel ``member`` (of a batched lattice; 0 otherwise):
    ``{name: (height, width) float32}``, rows = y, columns = x."""
    config = lattice.config
    width = config.window_width
    rows = slice(channel_offset(config, member), channel_offset(config, member) + config.grid_height)
    u, v, rho = (field[:width, rows] for field in lattice.macroscopic())  # [x, y] views
    solid = lattice.solid[:width, rows].T
    u = np.where(solid, 0.0, u.T)
    v = np.where(solid, 0.0, v.T)
    rho = np.where(solid, 1.0, rho.T)
    # vorticity dv/dx - du/dy on the simulation grid (central differences, one-sided at the window edges)
    vorticity = np.gradient(v, axis=1) - np.gradient(u, axis=0)
    vorticity[solid] = 0.0
    fields = {"u": u, "v": v, "rho": rho, "vorticity": vorticity}
    return {name: block_mean(fields[name], config.scale).astype(np.float32) for name in FIELDS}


def run_frames(
    config: KarmanConfig, index: int, lattice: Lattice | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the ``frames + test_frames`` frames of run ``index``, after discarding the spin-up."""
    for frames in batch_frames(config, [index], lattice):
        yield frames[0]


def build_runs(config: KarmanConfig, indices: Sequence[int]) -> Lattice:
    """The lattice of runs ``indices`` (one Reynolds number): one channel each, with its own noise seed."""
    reynolds = {config.reynolds[i] for i in indices}
    if len(reynolds) != 1:
        raise ForecastError(f"runs {list(indices)} have different Reynolds numbers; a batch shares one")
    seeds = [sequence_seed(config.noise_seed, i) for i in indices]
    return build_batch(config, reynolds.pop(), seeds)


def batch_frames(
    config: KarmanConfig, indices: Sequence[int], lattice: Lattice | None = None
) -> Iterator[list[dict[str, np.ndarray]]]:
    """Yield the frames of runs ``indices`` computed in one lattice (``build_runs``), one list per time."""
    name = ", ".join(run_name(i) for i in indices)
    lattice = lattice or build_runs(config, indices)
    # Spin-up: the impulsive start and the first shedding cycles are not part of the data set.
    yield from checked_frames(
        lattice, name, config.spinup_steps, config.every, config.every, config.frames_per_run,
        lambda: [sample_frame(lattice, member) for member in range(lattice.members)],
    )  # fmt: skip
