"""One run: one Reynolds number, from the start-up transient to the last stored frame.

The lattice is touched only every ``every`` steps: the compiled lbmpy time loop runs ``every`` steps at a time,
then the frame is cut out (crop to the stored window, block average to the stored size) and checked for
divergence. Everything per frame is O(cells), against O(every * cells) for the kernel.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import Lattice, build_lattice
from simulators.karman.noise import sequence_seed

FIELDS = ("u", "v", "rho", "vorticity")


def run_name(index: int) -> str:
    """How errors name a run: its index, which is also its sequence index in the store."""
    return f"run {index}"


def _block_mean(field: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return field
    h, w = field.shape
    return field.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def sample_frame(lattice: Lattice) -> dict[str, np.ndarray]:
    """The stored window of the current state: ``{name: (height, width) float32}``, rows = y, columns = x."""
    config = lattice.config
    width = config.window_width
    u, v, rho = lattice.macroscopic()  # [x, y] views
    solid = lattice.solid[:width].T
    u = np.where(solid, 0.0, u[:width].T)
    v = np.where(solid, 0.0, v[:width].T)
    rho = np.where(solid, 1.0, rho[:width].T)
    # vorticity dv/dx - du/dy on the simulation grid (central differences, one-sided at the window edges)
    vorticity = np.gradient(v, axis=1) - np.gradient(u, axis=0)
    vorticity[solid] = 0.0
    fields = {"u": u, "v": v, "rho": rho, "vorticity": vorticity}
    return {name: _block_mean(fields[name], config.scale).astype(np.float32) for name in FIELDS}


def run_frames(
    config: KarmanConfig, index: int, lattice: Lattice | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the ``frames + test_frames`` frames of run ``index``, after discarding the spin-up."""
    reynolds = config.reynolds[index]
    name = run_name(index)
    lattice = lattice or build_lattice(config, reynolds, sequence_seed(config.noise_seed, index))
    step = 0
    # Spin-up: the impulsive start and the first shedding cycles are not part of the data set.
    while step < config.spinup_steps:
        chunk = min(config.every, config.spinup_steps - step)
        lattice.advance(chunk)
        step += chunk
        lattice.check_stable(name, step)
    for _ in range(config.frames_per_run):
        lattice.advance(config.every)
        step += config.every
        lattice.check_stable(name, step)
        yield sample_frame(lattice)
