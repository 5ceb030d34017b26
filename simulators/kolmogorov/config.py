"""What one generation of Kolmogorov flow is: the options of ``forecast simulate kolmogorov``.

Units follow Chandler & Kerswell (J. Fluid Mech. 722, 2013): on a periodic square of side ``L`` cells, the body
force ``F_x = A sin(2 pi n y / L)`` (``n``: ``wavenumber``), the length ``l = L / (2 pi)``, the velocity
``U = sqrt(A l)`` (``velocity``, lattice units) and the time ``T = l / U`` (lattice steps). The Reynolds number is
``Re = U l / nu``: the viscosity and the forcing amplitude follow from ``Re``, ``U`` and ``L``. With ``n = 4``
the laminar flow loses stability at Re ~ 10 and the flow is chaotic (turbulent bursts) from Re ~ 20; the
defaults (Re = 100) are measured chaotic here (docs/results/kolmogorov.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from forecast.errors import ForecastError
from simulators.common.flow import check_truth_options, truth_init_times

COLLISIONS = ("cumulant", "trt", "mrt", "srt")
TARGETS = ("cpu", "gpu")
MAX_VELOCITY = 0.1  # lattice units: the LBM is only valid at low Mach number (U/c_s < 0.2)


@dataclass(frozen=True)
class KolmogorovConfig:
    """Options of a generation; runs differ only by their seed (the initial perturbation)."""

    seeds: tuple[int, ...] = (0, 1)  # one run (sequence) per seed: its random initial state
    reynolds: float = 100.0  # Re = U l / nu with l = L / (2 pi)
    wavenumber: int = 4  # n: forcing F_x = A sin(2 pi n y / L)
    velocity: float = 0.04  # U = sqrt(A l) in lattice units (Mach U / c_s ~ 0.07)
    frames: int = 4000  # train frames per run
    test_frames: int = 1000  # frames that follow in the same run, stored in the test group
    every: int | None = None  # lattice steps between two stored frames; default: T / 2
    size: tuple[int, int] = (64, 64)  # stored frame (height, width)
    scale: int = 2  # simulation cells per stored pixel along each axis (frames are block-averaged)
    collision: str = "cumulant"
    spinup: int | None = None  # lattice steps discarded before the first frame; default: 100 T
    target: str = "cpu"
    threads: int | None = None  # OpenMP threads per run; None: cores / parallel runs (set by generate)
    write_batch: int = 32  # frames buffered before one zarr write
    time_chunk: int = 4  # frames per zarr chunk along time
    # truth ensembles (group `truth`): K members from the run's lattice state at N test starts
    truth_members: int = 0  # K; 0: no truth group
    truth_inits: int = 8  # N starts per run, spread over its test frames
    truth_horizon: int = 16  # H frames per member
    truth_context: int = 4  # test frames kept before the first start (a forecaster's context)
    # std of the members' velocity perturbation relative to U; its mean over every stored pixel is zero
    perturbation: float = 1e-4

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ForecastError("no run seed given (--seeds S [S ...])")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ForecastError(f"run seeds must be distinct and non-negative, got {list(self.seeds)}")
        if not self.reynolds > 0:
            raise ForecastError(f"the Reynolds number must be positive, got {self.reynolds}")
        if self.frames < 1 or self.test_frames < 1:
            raise ForecastError(
                f"--frames and --test-frames must be >= 1 (got {self.frames}, {self.test_frames})"
            )
        if min(self.size) < 8 or self.scale < 1 or self.size[0] != self.size[1]:
            raise ForecastError(
                f"--size must be a square of at least 8 pixels and --scale >= 1 (got {self.size}, {self.scale})"
            )
        if not 1 <= self.wavenumber <= self.grid_size // 8:
            raise ForecastError(
                f"--wavenumber must be in [1, {self.grid_size // 8}] (8 cells or more per forcing wavelength "
                f"on a {self.grid_size}-cell lattice), got {self.wavenumber}"
            )
        if not 0 < self.velocity <= MAX_VELOCITY:
            raise ForecastError(
                f"--velocity {self.velocity} is outside (0, {MAX_VELOCITY}] lattice units: the LBM is only valid "
                "at low Mach number; raise the resolution instead"
            )
        if self.collision not in COLLISIONS:
            raise ForecastError(f"unknown collision model {self.collision!r}; choose one of {COLLISIONS}")
        if self.target not in TARGETS:
            raise ForecastError(f"unknown target {self.target!r}; choose one of {TARGETS}")
        if self.time_chunk < 1 or self.write_batch % self.time_chunk:
            raise ForecastError("write_batch must be a multiple of time_chunk (writes must not share chunks)")
        if self.viscosity < 1e-4:
            raise ForecastError(
                f"Re = {self.reynolds:g} on a {self.grid_size}-cell lattice needs a viscosity of "
                f"{self.viscosity:.2g} (relaxation time within 3e-4 of 1/2): unstable; raise --size/--scale "
                "or --velocity, or lower --reynolds"
            )
        self._check_truth()
        if self.every is None:  # half a time unit T (frozen: set once, here)
            object.__setattr__(self, "every", max(1, int(round(self.time_unit / 2))))
        if self.every < 1:
            raise ForecastError(f"--every must be >= 1 lattice step, got {self.every}")

    def _check_truth(self) -> None:
        if not 0 <= self.perturbation <= 0.1:
            raise ForecastError(
                f"--perturbation must be in [0, 0.1] (relative to U), got {self.perturbation}"
            )
        if self.truth_members < 0:
            raise ForecastError(f"--truth-members must be >= 0, got {self.truth_members}")
        if not self.truth_members:
            return
        if self.perturbation <= 0 or self.scale < 2:
            raise ForecastError(
                "truth members need --perturbation > 0 and --scale >= 2 (the perturbation lives below a "
                "stored pixel)"
            )
        check_truth_options(self)

    # --- derived quantities (lattice units) ---
    @property
    def grid_size(self) -> int:
        """Cells along each side of the periodic square."""
        return self.size[0] * self.scale

    @property
    def grid_cells(self) -> int:
        return self.grid_size**2

    @property
    def runs(self) -> int:
        """Runs (sequences) of the store: one per seed."""
        return len(self.seeds)

    @property
    def batch(self) -> int:
        """Runs per lattice: always one (the shared orchestration asks)."""
        return 1

    @property
    def length(self) -> float:
        """l = L / (2 pi), in cells."""
        return self.grid_size / (2 * np.pi)

    @property
    def time_unit(self) -> float:
        """T = l / U, in lattice steps."""
        return self.length / self.velocity

    @property
    def viscosity(self) -> float:
        """nu = U l / Re."""
        return self.velocity * self.length / self.reynolds

    @property
    def amplitude(self) -> float:
        """A = U^2 / l, the forcing amplitude (lattice units: cells per step^2)."""
        return self.velocity**2 / self.length

    @property
    def spinup_steps(self) -> int:
        return int(self.spinup) if self.spinup is not None else int(round(100 * self.time_unit))

    def resolution_issue(self) -> str | None:
        """None: the periodic lattice has no boundary layer to miss (the viscosity bound is checked above)."""
        return None

    @property
    def truth_init_times(self) -> list[int]:
        """The ``time`` values of the test frames that the truth starts' first leads verify against."""
        return truth_init_times(self)

    @property
    def frames_per_run(self) -> int:
        return self.frames + self.test_frames

    @classmethod
    def content_options(cls, stored_json: str) -> dict:
        """The options of a stored ``to_json``, with options added since at their defaults."""
        defaults = json.loads(cls().to_json())
        return {**defaults, **json.loads(stored_json)}

    def to_json(self) -> str:
        """The options that define the store's content (resume checks that they did not change)."""
        d = dataclasses.asdict(self)
        for key in ("threads", "target", "write_batch"):
            d.pop(key)
        d["seeds"] = [int(s) for s in self.seeds]
        d["size"] = list(self.size)
        return json.dumps(d, sort_keys=True)
