"""Free-stream turbulence at the inlet: a random, smooth, time-correlated perturbation of the inflow velocity.

Both inflow components get a perturbation ``U * A * a(y, t)`` (``A`` = ``--inflow-noise``, relative to the
inflow speed U), where each component ``a`` is a stationary Gaussian process with unit variance that is

* correlated across the inlet with a Gaussian kernel ``exp(-(y - y')^2 / (2 l^2))`` (``l`` = ``--noise-length``
  cylinder diameters), and
* an Ornstein-Uhlenbeck process in time with correlation time ``tau`` (``--noise-time`` convective times D/U):
  ``corr(a(t), a(t + s)) = exp(-|s| / tau)``.

It is built as ``a = L xi`` with ``L L^T`` the spatial covariance (its eigenmodes, the negligible ones dropped)
and ``xi`` independent unit OU processes, advanced exactly (``xi <- r xi + sqrt(1 - r^2) eta``, ``r =
exp(-dt / tau)``), so the statistics do not depend on how often the inflow is updated. The inflow is held
constant between updates, every ``update_interval`` lattice steps (a small fraction of ``tau``).

A batched lattice (several channels in one launch) has one independent process per channel
(:class:`BatchNoise`). The state that determines the future is ``xi`` plus the random generator; :meth:`InflowNoise.state` and
:meth:`InflowNoise.restore` save and restore both (truth ensembles fork from them and then reseed).
"""

from __future__ import annotations

import numpy as np

# The OU process is updated at least this many times per correlation time.
UPDATES_PER_CORRELATION_TIME = 16
# Spatial eigenmodes below this fraction of the largest eigenvalue carry no variance worth simulating.
MODE_CUTOFF = 1e-8


def spatial_factor(positions: np.ndarray, length: float) -> np.ndarray:
    """``L`` (cells, modes) with ``L L^T`` the Gaussian covariance of ``positions`` at correlation ``length``."""
    distance = positions[:, None] - positions[None, :]
    covariance = np.exp(-0.5 * (distance / length) ** 2)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    keep = eigenvalues > MODE_CUTOFF * eigenvalues.max()
    return eigenvectors[:, keep] * np.sqrt(eigenvalues[keep])


def sequence_seed(noise_seed: int, index: int) -> int:
    """The noise seed of run (sequence) ``index``, derived reproducibly from the generation's ``noise_seed``."""
    return int(np.random.SeedSequence([noise_seed, index]).generate_state(1)[0])


def member_seed(sequence_seed_: int, init_time: int, member: int) -> int:
    """The noise seed of one truth-ensemble member that forks from run ``sequence_seed_`` at ``init_time``."""
    return int(np.random.SeedSequence([sequence_seed_, init_time, member]).generate_state(1)[0])


class InflowNoise:
    """The inlet perturbation of one run: ``velocities()`` gives (u, v) along the inlet in lattice units."""

    def __init__(
        self,
        amplitude: float,
        velocity: float,
        height: int,
        length_cells: float,
        time_steps: float,
        seed: int,
    ):
        self.amplitude = float(amplitude) * float(velocity)  # absolute std of each component
        self.velocity = float(velocity)
        self.tau = float(time_steps)
        self.factor = spatial_factor(np.arange(height, dtype=np.float64), float(length_cells))
        self.rng = np.random.default_rng(seed)
        self.xi = self.rng.standard_normal((2, self.factor.shape[1]))  # start in the stationary distribution

    @property
    def update_interval(self) -> int:
        """Lattice steps between two inflow updates (even: lbmpy's compiled loop runs steps in pairs)."""
        steps = int(self.tau / UPDATES_PER_CORRELATION_TIME)
        return max(2, steps - steps % 2)

    def velocities(self) -> tuple[np.ndarray, np.ndarray]:
        """Inflow (u, v) per inlet cell, each of shape (height,)."""
        a = self.xi @ self.factor.T  # (2, height), unit variance per cell
        return self.velocity + self.amplitude * a[0], self.amplitude * a[1]

    def advance(self, steps: int) -> None:
        """Advance the OU process by ``steps`` lattice steps (exact discretisation)."""
        r = np.exp(-steps / self.tau)
        self.xi = r * self.xi + np.sqrt(1.0 - r * r) * self.rng.standard_normal(self.xi.shape)

    def state(self) -> dict:
        """Everything that determines the future: the OU state and the generator."""
        return {"xi": self.xi.copy(), "rng": self.rng.bit_generator.state}

    def restore(self, state: dict, seed: int | None = None) -> None:
        """Return to ``state``; with ``seed``, continue with fresh, independent future noise from that seed."""
        self.xi = state["xi"].copy()
        if seed is None:
            self.rng.bit_generator.state = state["rng"]
        else:
            self.rng = np.random.default_rng(seed)


class BatchNoise:
    """The inlet perturbations of the channels of a batched lattice (``lattice.build_batch``), one
    independent ``InflowNoise`` each, seen as one process along the stacked inlet."""

    def __init__(self, processes: list[InflowNoise]):
        self.processes = list(processes)

    @property
    def update_interval(self) -> int:
        return self.processes[0].update_interval  # the same options, so the same interval for every channel

    def velocities(self) -> tuple[np.ndarray, np.ndarray]:
        """Inflow (u, v) along the stacked inlet, each of shape (members * height,)."""
        pairs = [process.velocities() for process in self.processes]
        return np.concatenate([u for u, _ in pairs]), np.concatenate([v for _, v in pairs])

    def advance(self, steps: int) -> None:
        for process in self.processes:
            process.advance(steps)

    def state(self) -> list[dict]:
        return [process.state() for process in self.processes]

    def restore(self, state: list[dict], seed: list[int] | None = None) -> None:
        """Return to ``state``; with ``seed`` (one per channel), fresh future noise from those seeds."""
        seeds = [None] * len(self.processes) if seed is None else list(seed)
        for process, saved, channel_seed in zip(self.processes, state, seeds, strict=True):
            process.restore(saved, channel_seed)
