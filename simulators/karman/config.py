"""What one generation of the von Karman dataset is: the options of ``forecast simulate karman``.

The defaults reproduce the paper's "Simulation" dataset (section 4.1): 10,000 frames of 128x128, one every
128 lattice steps, 8,000 for training and 2,000 for testing, here as two runs (two Reynolds numbers, one per
core) of 4,000 + 1,000 frames each.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from forecast.errors import ForecastError
from simulators.common.flow import check_truth_options, truth_init_times

# Resolution: the laminar boundary layer on the cylinder is ~5 D / sqrt(Re) thick (Blasius scaling; Schlichting,
# Boundary-Layer Theory). Thinner than a cell, the lattice no longer resolves the flow that sheds the vortices
# (flagged); thinner than a quarter cell, the run says nothing about that Re (refused unless allowed).
BOUNDARY_LAYER_FACTOR = 5.0
FLAG_BELOW_CELLS = 1.0
REFUSE_BELOW_CELLS = 0.25
MAX_INFLOW_NOISE = 0.5  # beyond this the inflow reverses now and then: no longer a perturbed free stream
COLLISIONS = ("cumulant", "mrt", "entropic", "srt")
TARGETS = ("cpu", "gpu")


@dataclass(frozen=True)
class KarmanConfig:
    """Options of a generation; every run (one per Reynolds number) shares all but ``reynolds``."""

    reynolds: tuple[float, ...] = (150.0, 400.0)
    frames: int = 4000  # train frames per run
    test_frames: int = 1000  # frames that follow in the same run, stored in the test group
    every: int = 128  # lattice steps between two stored frames (the paper's 128 ticks)
    size: tuple[int, int] = (128, 128)  # stored frame (height, width)
    scale: int = 1  # simulation cells per stored pixel along each axis (frames are block-averaged by it)
    diameter: float | None = None  # cylinder diameter in cells; default: channel height / 16 (6% blockage)
    velocity: float = 0.05  # inflow speed U in lattice units (Mach U/c_s ~ 0.09)
    length_ratio: float = 3.0  # channel length / stored window width: the wake needs room to leave
    collision: str = "cumulant"
    spinup: int | None = None  # lattice steps discarded before the first frame; default: 3 flow-throughs
    target: str = "cpu"
    threads: int | None = None  # OpenMP threads per run; None: cores / parallel runs (set by generate)
    write_batch: int = 32  # frames buffered before one zarr write
    time_chunk: int = 4  # frames per zarr chunk along time
    # free-stream turbulence at the inlet (simulators/karman/noise.py); 0: the deterministic street
    inflow_noise: float = 0.0  # std of each inflow velocity component, relative to U
    noise_time: float = 2.0  # its correlation time, in convective times D / U (a shedding period is ~5)
    noise_length: float = 2.0  # its correlation length across the inlet, in cylinder diameters
    noise_seed: int = 0  # each run draws from its own stream derived from this seed and its index
    # perfect-model truth ensembles (group `truth`): K continuations from the exact state at N test starts
    truth_members: int = 0  # K; 0: no truth group
    truth_inits: int = 8  # N starts per run, spread over its test frames
    truth_horizon: int = 16  # H frames per continuation
    truth_context: int = 4  # test frames kept before the first start (a forecaster's context)
    allow_underresolved: bool = False  # run (flagged) even where the boundary layer is far below a cell
    # runs with the same Reynolds number computed in one lattice, up to this many (channels stacked across
    # the flow, lattice.build_batch); 1: one lattice per run
    batch: int = 1

    def __post_init__(self) -> None:
        if not self.reynolds:
            raise ForecastError("no Reynolds number given (--reynolds R [R ...])")
        if any(not (r > 0) for r in self.reynolds):
            raise ForecastError(f"Reynolds numbers must be positive, got {list(self.reynolds)}")
        if self.frames < 1 or self.test_frames < 1:
            raise ForecastError(
                f"--frames and --test-frames must be >= 1 (got {self.frames}, {self.test_frames})"
            )
        if self.every < 1:
            raise ForecastError(f"--every must be >= 1 lattice step, got {self.every}")
        if min(self.size) < 8 or self.scale < 1:
            raise ForecastError(
                f"--size must be at least 8 pixels and --scale >= 1 (got {self.size}, {self.scale})"
            )
        if not 0 < self.velocity <= 0.2:
            raise ForecastError(
                f"inflow velocity {self.velocity} is outside (0, 0.2] lattice units: the LBM is only valid at low "
                "Mach number; raise the resolution instead"
            )
        if self.collision not in COLLISIONS:
            raise ForecastError(f"unknown collision model {self.collision!r}; choose one of {COLLISIONS}")
        if self.target not in TARGETS:
            raise ForecastError(f"unknown target {self.target!r}; choose one of {TARGETS}")
        if self.length_ratio < 1.5:
            raise ForecastError(
                "--length-ratio must be >= 1.5: the outflow must lie well behind the stored window"
            )
        if self.batch < 1:
            raise ForecastError(f"--batch-runs must be >= 1, got {self.batch}")
        if self.time_chunk < 1 or self.write_batch % self.time_chunk:
            raise ForecastError("write_batch must be a multiple of time_chunk (writes must not share chunks)")
        self._check_noise_and_truth()
        if self.cylinder_diameter < 2:
            raise ForecastError(
                f"cylinder diameter {self.cylinder_diameter} cells is under-resolved (need >= 2)"
            )
        issue = self.resolution_issue()
        if (
            issue
            and self.boundary_layer_cells(max(self.reynolds)) < REFUSE_BELOW_CELLS
            and not self.allow_underresolved
        ):
            raise ForecastError(f"{issue} (--allow-underresolved runs it anyway, flagged)")

    def _check_noise_and_truth(self) -> None:
        if not 0 <= self.inflow_noise <= MAX_INFLOW_NOISE:
            raise ForecastError(
                f"--inflow-noise must be in [0, {MAX_INFLOW_NOISE}] (relative to U), got {self.inflow_noise}"
            )
        if not (self.noise_time > 0 and self.noise_length > 0):
            raise ForecastError(
                f"--noise-time and --noise-length must be positive (got {self.noise_time}, {self.noise_length})"
            )
        if self.truth_members < 0:
            raise ForecastError(f"--truth-members must be >= 0, got {self.truth_members}")
        if not self.truth_members:
            return
        check_truth_options(self)

    # --- derived geometry (simulation grid, lattice units) ---
    @property
    def grid_height(self) -> int:
        return self.size[0] * self.scale

    @property
    def window_width(self) -> int:
        return self.size[1] * self.scale

    @property
    def grid_length(self) -> int:
        return int(round(self.window_width * self.length_ratio))

    @property
    def cylinder_diameter(self) -> float:
        return float(self.diameter) if self.diameter is not None else self.grid_height / 16

    @property
    def cylinder_center(self) -> tuple[float, float]:
        """(x, y) of the cylinder in cell-midpoint coordinates (cell i spans [i, i + 1], as lbmpy's masks):
        a quarter window behind the inlet, on the axis of the fluid channel (the wall cells 0 and H - 1
        are boundary cells, so the fluid spans [1, H - 1])."""
        return (self.window_width / 4, self.grid_height / 2)

    @property
    def spinup_steps(self) -> int:
        if self.spinup is not None:
            return int(self.spinup)
        return int(round(3 * self.grid_length / self.velocity))

    def boundary_layer_cells(self, reynolds: float) -> float:
        """Cells across the cylinder's boundary layer, ~5 D / sqrt(Re)."""
        return BOUNDARY_LAYER_FACTOR * self.cylinder_diameter / np.sqrt(reynolds)

    def resolution_issue(self) -> str | None:
        """One line naming the problem and the remedy where the lattice does not resolve the boundary layer."""
        reynolds = max(self.reynolds)
        cells = self.boundary_layer_cells(reynolds)
        if cells >= FLAG_BELOW_CELLS:
            return None
        diameter = FLAG_BELOW_CELLS * np.sqrt(reynolds) / BOUNDARY_LAYER_FACTOR
        max_re = (BOUNDARY_LAYER_FACTOR * self.cylinder_diameter / FLAG_BELOW_CELLS) ** 2
        return (
            f"under-resolved: Re = {reynolds:g} with a cylinder {self.cylinder_diameter:g} cells wide leaves "
            f"{cells:.2g} cells across its boundary layer (~5 D / sqrt(Re)); use at least {np.ceil(diameter):.0f} "
            f"cells per diameter (--diameter, --scale or --size) or Re <= {max_re:.0f}"
        )

    @property
    def convective_time(self) -> float:
        """D / U in lattice steps."""
        return self.cylinder_diameter / self.velocity

    @property
    def truth_init_times(self) -> list[int]:
        """The ``time`` values of the test frames that the truth starts' first leads verify against."""
        return truth_init_times(self)

    @property
    def runs(self) -> int:
        """Runs (sequences) of the store: one per Reynolds number."""
        return len(self.reynolds)

    @property
    def grid_cells(self) -> int:
        """Lattice cells of one run's grid."""
        return self.grid_length * self.grid_height

    @property
    def frames_per_run(self) -> int:
        return self.frames + self.test_frames

    def viscosity(self, reynolds: float) -> float:
        """Kinematic viscosity nu = U D / Re (lattice units)."""
        return self.velocity * self.cylinder_diameter / reynolds

    @classmethod
    def content_options(cls, stored_json: str) -> dict:
        """The options of a stored ``to_json``, with options that did not exist when it was written at their
        defaults (those reproduce what the older version wrote)."""
        defaults = json.loads(cls().to_json())
        return {**defaults, **json.loads(stored_json)}

    def to_json(self) -> str:
        """The options that define the store's content (resume checks that they did not change). ``batch`` is
        kept when it is not 1: a batched store should hold the same bits, but that is checked by a slow test
        only, so resume does not mix the two."""
        d = dataclasses.asdict(self)
        for key in ("threads", "target", "write_batch", "allow_underresolved"):
            d.pop(key)
        if d["batch"] == 1:
            d.pop("batch")  # stores of separate runs say nothing about batching (as before the option)
        d["reynolds"] = [float(r) for r in self.reynolds]
        d["size"] = list(self.size)
        return json.dumps(d, sort_keys=True)
