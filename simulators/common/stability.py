"""When a lattice run has diverged (NaN or a runaway velocity), checked as every flow's lattice advances."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from forecast.errors import ForecastError

VELOCITY_LIMIT = 0.5  # lattice units; |u| beyond ~c_s means the run has left the LBM's validity


class SimulationDiverged(ForecastError):
    """A run produced NaN or a runaway velocity."""


def check_velocity(
    u: np.ndarray, v: np.ndarray, run: str, step: int, omega: float, collision: str, resolution: str
) -> None:
    """Raise SimulationDiverged if the velocity ``(u, v)`` is NaN or beyond ``VELOCITY_LIMIT``, naming ``run``
    (its name and Reynolds number), the step, the relaxation rate and the collision model; ``resolution``
    names the options that raise the flow's resolution."""
    speed = float(np.sqrt(np.max(u * u + v * v)))
    if not np.isfinite(speed) or speed > VELOCITY_LIMIT:
        what = "NaN" if not np.isfinite(speed) else f"|u| = {speed:.3g} > {VELOCITY_LIMIT}"
        raise SimulationDiverged(
            f"{run} diverged at lattice step {step} ({what}, omega = {omega:.5f}, collision {collision}): "
            f"use --collision cumulant, raise the resolution ({resolution}), or lower --velocity"
        )


def checked_frames(
    lattice: Any,
    name: str,
    spinup_steps: int,
    spinup_chunk: int,
    every: int,
    frames: int,
    sample: Callable[[], Any],
) -> Iterator[Any]:
    """Advance ``lattice`` through its spin-up (``spinup_chunk`` steps at a time), then ``frames`` times
    ``every`` steps, yielding ``sample()`` after each; ``check_stable(name, step)`` follows every advance."""
    step = 0
    while step < spinup_steps:
        chunk = min(spinup_chunk, spinup_steps - step)
        lattice.advance(chunk)
        step += chunk
        lattice.check_stable(name, step)
    for _ in range(frames):
        lattice.advance(every)
        step += every
        lattice.check_stable(name, step)
        yield sample()
