"""Kolmogorov flow's store: its coordinates and attributes, and the shared writer (``simulators.common.store``).

Layout (docs/formats.md, "Field store"): groups ``train`` and ``test``, variables ``u``, ``v``, ``rho``,
``vorticity`` with dims ``(sequence, time, y, x)``, one sequence per seed; per-run coordinates (seed, Reynolds
number, forcing, viscosity) and the flow's attributes are defined here (``FLOW``).
"""

from __future__ import annotations

import lbmpy
import numpy as np

import forecast
from forecast.field_store import cf_attrs
from simulators.common import store
from simulators.common.flow import Flow
from simulators.kolmogorov import truth
from simulators.kolmogorov.config import KolmogorovConfig
from simulators.kolmogorov.run import batch_frames, build_runs

VARIABLE_ATTRS = {
    # UDUNITS has no lattice units: lattice quantities are dimensionless ("1") and the long_name says which
    "u": {
        "long_name": "velocity along x, the forcing's direction (lattice units: cells per step)",
        "units": "1",
    },
    "v": {"long_name": "velocity along y (lattice units: cells per lattice step)", "units": "1"},
    "rho": {"long_name": "density (lattice units)", "units": "1"},
    "vorticity": {"long_name": "vorticity dv/dx - du/dy (lattice units: per lattice step)", "units": "1"},
}


def sequence_coords(config: KolmogorovConfig) -> dict:
    """The per-run coordinates: seed, Reynolds number, forcing, velocity and time scales, viscosity."""
    n = config.runs

    def same(value, long_name):
        return store.per_run(np.full(n, value), long_name)

    return {
        "sequence": ("sequence", np.arange(n), {"long_name": "run (one per seed)"}),
        "seed": store.per_run(np.asarray(config.seeds, dtype=np.int64), "seed of the run's initial state"),
        "reynolds": same(config.reynolds, "Reynolds number U l / nu, l = L / (2 pi)"),
        "forcing_amplitude": same(config.amplitude, "forcing amplitude A (lattice units: cells per step^2)"),
        "forcing_wavenumber": same(config.wavenumber, "forcing wavenumber n: F_x = A sin(2 pi n y / L)"),
        "velocity_scale": same(config.velocity, "velocity unit U = sqrt(A l) (lattice units)"),
        "viscosity": same(config.viscosity, "kinematic viscosity (lattice units: cells^2 per lattice step)"),
    }


def group_attrs(config: KolmogorovConfig, group: str) -> dict:
    """The group's global attributes: CF header, lattice, forcing, units, truth perturbation."""
    collision = store.COLLISION_NAMES[config.collision]
    return {
        **cf_attrs(
            "2-D Kolmogorov flow (forced turbulence on a periodic square), lattice Boltzmann",
            f"lbmpy {lbmpy.__version__} lattice Boltzmann simulation (D2Q9, {collision}), "
            f"forecast {forecast.__version__}",
            f"forecast simulate kolmogorov (simulators.kolmogorov.generate) with options {config.to_json()}",
        ),
        "frame_interval": config.every,
        "stencil": "D2Q9",
        "collision": collision,
        "lbmpy_version": lbmpy.__version__,
        "spinup_steps": config.spinup_steps,
        "grid_shape": [config.grid_size, config.grid_size],
        "downsampling": config.scale,
        "boundaries": "periodic in x and y",
        "forcing": "F_x = A sin(2 pi n (y + 1/2) / L), y the cell index, L the lattice size",
        "time_unit_lattice_steps": config.time_unit,
        "perturbation": config.perturbation,
        "group": group,
    }


def one_lattice(config: KolmogorovConfig, index: int) -> int:
    """Every run has a lattice of its own: its own key."""
    return index


FLOW = Flow(
    name="kolmogorov",
    config_class=KolmogorovConfig,
    variable_attrs=VARIABLE_ATTRS,
    axes=("position across the forcing, y", "position along the forcing, x"),
    sequence_coords=sequence_coords,
    group_attrs=group_attrs,
    build_runs=build_runs,
    batch_frames=batch_frames,
    continuations=truth.continuations,
    truth_coords=truth.perturbation_seed_coords,
    truth_description=(
        "perturbation ensemble: each member restarts from the run's full lattice state (all populations on the "
        "simulation grid, finer than a stored pixel) at the frame before init_time, plus a velocity "
        "perturbation of std `perturbation` x U with zero mean over every stored pixel (seed "
        "perturbation_seed); the verifying run got a perturbation of its own there, so it is one more member. "
        "Lead l verifies against test.sel(sequence=sequence, time=init_time + l - 1)"
    ),
    run_key=one_lattice,
)
