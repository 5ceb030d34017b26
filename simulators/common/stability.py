"""When a lattice run has diverged: NaN or a runaway velocity, one error type for every flow."""

from __future__ import annotations

import numpy as np

from forecast.errors import ForecastError

VELOCITY_LIMIT = 0.5  # lattice units; |u| beyond ~c_s means the run has left the LBM's validity


class SimulationDiverged(ForecastError):
    """A run produced NaN or a runaway velocity."""


def check_velocity(
    u: np.ndarray, v: np.ndarray, run: str, step: int, omega: float, collision: str, resolution: str
) -> None:
    """Raise SimulationDiverged, naming ``run`` (its name and Reynolds number), the step, the relaxation rate and
    the collision model, if the velocity ``(u, v)`` is NaN or beyond ``VELOCITY_LIMIT``; ``resolution`` names the
    options that raise the flow's resolution."""
    speed = float(np.sqrt(np.max(u * u + v * v)))
    if not np.isfinite(speed) or speed > VELOCITY_LIMIT:
        what = "NaN" if not np.isfinite(speed) else f"|u| = {speed:.3g} > {VELOCITY_LIMIT}"
        raise SimulationDiverged(
            f"{run} diverged at lattice step {step} ({what}, omega = {omega:.5f}, collision {collision}): use "
            f"--collision cumulant, raise the resolution ({resolution}), or lower --velocity"
        )
