"""The vortex street's store: its coordinates and attributes, and the shared writer (``simulators.common.store``).

Layout (docs/formats.md, "Field store"): groups ``train`` and ``test``, variables ``u``, ``v``, ``rho``,
``vorticity`` with dims ``(sequence, time, y, x)``, one sequence per Reynolds number; the per-run coordinates
(Reynolds number, inflow, cylinder, noise seed) and the street's attributes are defined here, the layout, chunks,
progress and resume in ``simulators.common.store`` (``FLOW`` ties the two).
"""

from __future__ import annotations

import os

import lbmpy
import numpy as np
import xarray as xr

import forecast
from forecast.field_store import cf_attrs
from simulators.common import store
from simulators.common.flow import FIELDS, Flow  # noqa: F401  (karman_writer.FIELDS)
from simulators.common.store import (  # noqa: F401  (the street's writer API, as before the move)
    FRAME_COMPRESSORS,
    PROGRESS_ARRAY,
    RunWriter,
    frames_written,
    open_frames,
    set_frames_written,
    write_frames,
)
from simulators.karman import truth
from simulators.karman.config import KarmanConfig
from simulators.karman.noise import sequence_seed
from simulators.karman.run import batch_frames, build_runs

CONFIG_ATTR = "karman_config"

VARIABLE_ATTRS = {
    # UDUNITS has no lattice units: lattice quantities are dimensionless ("1") and the long_name says which
    "u": {"long_name": "streamwise velocity (lattice units: cells per lattice step)", "units": "1"},
    "v": {"long_name": "transverse velocity (lattice units: cells per lattice step)", "units": "1"},
    "rho": {"long_name": "density (lattice units)", "units": "1"},
    "vorticity": {"long_name": "vorticity dv/dx - du/dy (lattice units: per lattice step)", "units": "1"},
}


def sequence_coords(config: KarmanConfig) -> dict:
    """The per-run coordinates: Reynolds number, inflow, cylinder, viscosity and noise seed."""
    n_seq = len(config.reynolds)
    reynolds = np.asarray(config.reynolds, dtype=np.float64)
    cx, cy = config.cylinder_center
    return {
        "sequence": ("sequence", np.arange(n_seq), {"long_name": "run (one per Reynolds number)"}),
        "reynolds": store.per_run(reynolds, "Reynolds number U D / nu"),
        "inflow_velocity": store.per_run(
            np.full(n_seq, config.velocity), "inflow speed U (lattice units: cells per lattice step)"
        ),
        "cylinder_diameter": store.per_run(
            np.full(n_seq, config.cylinder_diameter), "cylinder diameter D (lattice cells)"
        ),
        "viscosity": store.per_run(
            np.array([config.viscosity(r) for r in reynolds]),
            "kinematic viscosity (lattice units: cells^2 per lattice step)",
        ),
        # in the same cell-index coordinates as x and y (cell i spans [i - 1/2, i + 1/2])
        "cylinder_x": store.per_run(np.full(n_seq, cx - 0.5), "cylinder centre x (lattice cells)"),
        "cylinder_y": store.per_run(np.full(n_seq, cy - 0.5), "cylinder centre y (lattice cells)"),
        "noise_seed": store.per_run(
            np.array([sequence_seed(config.noise_seed, i) for i in range(n_seq)], dtype=np.int64),
            "seed of the run's inlet noise (noise.sequence_seed(noise_seed, sequence))",
        ),
    }


def group_attrs(config: KarmanConfig, group: str) -> dict:
    """The group's global attributes: CF header, lattice, boundaries, noise, resolution."""
    return {
        **cf_attrs(
            "2-D flow past a cylinder (von Karman vortex street), lattice Boltzmann",
            f"lbmpy {lbmpy.__version__} lattice Boltzmann simulation (D2Q9, {store.COLLISION_NAMES[config.collision]}), "
            f"forecast {forecast.__version__}",
            f"forecast simulate karman (simulators.karman.generate) with options {config.to_json()}",
        ),
        "frame_interval": config.every,
        "stencil": "D2Q9",
        "collision": store.COLLISION_NAMES[config.collision],
        "lbmpy_version": lbmpy.__version__,
        "spinup_steps": config.spinup_steps,
        "grid_shape": [config.grid_height, config.grid_length],
        "downsampling": config.scale,
        "boundaries": "inflow UBB (uniform U), free-slip side walls, extrapolation outflow, no-slip cylinder",
        "group": group,
        **noise_attrs(config),
        "resolution_warning": config.resolution_issue() or "",
    }


def noise_attrs(config: KarmanConfig) -> dict:
    """The inlet-noise options as store attributes (the lattice-step values are what the run used)."""
    return {
        "inflow_noise": config.inflow_noise,
        "inflow_noise_description": (
            "std of each inflow velocity component relative to U: Ornstein-Uhlenbeck in time, Gaussian "
            "correlation across the inlet (0: uniform inflow, the deterministic street)"
        ),
        "noise_time": config.noise_time,
        "noise_time_lattice_steps": config.noise_time * config.convective_time,
        "noise_length": config.noise_length,
        "noise_length_cells": config.noise_length * config.cylinder_diameter,
        "noise_seed": config.noise_seed,
    }


def reynolds_of(config: KarmanConfig, index: int) -> float:
    """Runs with one Reynolds number can share a lattice (``--batch-runs``)."""
    return config.reynolds[index]


FLOW = Flow(
    name="karman",
    config_class=KarmanConfig,
    variable_attrs=VARIABLE_ATTRS,
    axes=("transverse position", "streamwise position"),
    sequence_coords=sequence_coords,
    group_attrs=group_attrs,
    build_runs=build_runs,
    batch_frames=batch_frames,
    continuations=truth.continuations,
    truth_coords=truth.member_seed_coords,
    truth_description=(
        "perfect-model ensemble: continuations from the exact simulator state of the frame before "
        "init_time, each with independent future inlet noise; lead l verifies against "
        "test.sel(sequence=sequence, time=init_time + l - 1)"
    ),
    run_key=reynolds_of,
)


def skeleton(config: KarmanConfig, group: str) -> xr.Dataset:
    """The lazily zero-filled Dataset of one group, with every coordinate and attribute."""
    return store.skeleton(config, group, FLOW)


def create_store(path: str | os.PathLike, config: KarmanConfig) -> None:
    """Write the skeleton of a new store, marked incomplete, with no run finished."""
    store.create_store(path, config, FLOW)


def check_resumable(path: str | os.PathLike, config: KarmanConfig) -> None:
    """Refuse to resume a store that was started with other options."""
    store.check_resumable(path, config, FLOW)
