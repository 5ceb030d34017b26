"""What a simulator tells the shared store writer, truth writer and orchestration about its flow.

A ``Flow`` bundles the flow-specific pieces (its config class, its variables' attributes, its per-run
coordinates and global attributes, how runs are built and stepped, how truth members fork); everything else
about a field store of simulated runs (layout, chunks, resume, progress, dask, the truth group) is shared
(``simulators.common``). Its config (``KarmanConfig``, ``KolmogorovConfig``) offers the same fields and
properties: ``runs``, ``frames``, ``test_frames``, ``frames_per_run``, ``every``, ``size``, ``scale``,
``spinup_steps``, ``time_chunk``, ``write_batch``, ``threads``, ``batch``, ``truth_*``, ``truth_init_times``,
``grid_cells``, ``resolution_issue()``, ``to_json()`` and ``content_options()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecast.errors import ForecastError

FIELDS = ("u", "v", "rho", "vorticity")


@dataclass(frozen=True)
class Flow:
    """The flow-specific hooks of one simulator (module-level functions, so a flow pickles by reference)."""

    name: str  # the simulator's name on the command line (`forecast simulate NAME`)
    config_class: type
    variable_attrs: dict  # field name -> CF attributes
    axes: tuple  # long names of the y and x axes ("transverse position", "streamwise position")
    sequence_coords: Callable  # config -> {name: (dims, values, attrs)} along `sequence`
    group_attrs: Callable  # (config, group) -> the group's global attributes
    build_runs: Callable  # (config, indices) -> a lattice computing those runs
    batch_frames: Callable  # (config, indices, lattice) -> iterator of [frame per run] per stored time
    continuations: Callable  # (lattice, config, indices, init_time) -> [{name: (K, H, y, x)} per run]
    truth_coords: Callable  # (config, sequence, init_times) -> extra truth coordinates (e.g. member seeds)
    truth_description: str  # what a truth member is conditioned on (the group's `truth_description`)
    run_key: Callable  # (config, index) -> runs with equal keys may share one lattice (--batch-runs)

    @property
    def config_attr(self) -> str:
        """The root attribute holding the generating config as JSON (``karman_config``, ...)."""
        return f"{self.name}_config"


def run_name(index: int) -> str:
    """How errors name a run: its index, which is also its sequence index in the store."""
    return f"run {index}"


def block_mean(field: np.ndarray, factor: int) -> np.ndarray:
    """``field`` (height, width) coarse-grained to the stored size: the mean of each ``factor`` x ``factor`` block."""
    if factor == 1:
        return field
    h, w = field.shape
    return field.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def check_truth_options(config) -> None:
    """One line naming the problem where the truth group's starts, horizon and context do not fit the test frames
    (``config.truth_members`` > 0)."""
    if config.truth_inits < 1 or config.truth_horizon < 1 or config.truth_context < 0:
        raise ForecastError(
            "--truth-inits and --truth-horizon must be >= 1 and --truth-context >= 0 (got "
            f"{config.truth_inits}, {config.truth_horizon}, {config.truth_context})"
        )
    room = config.test_frames - config.truth_context - config.truth_horizon + 1
    if room < config.truth_inits:
        raise ForecastError(
            f"{config.truth_inits} truth starts need {config.truth_context} context frames before and "
            f"{config.truth_horizon} frames after each within the {config.test_frames} test frames; "
            f"raise --test-frames to {config.truth_context + config.truth_horizon - 1 + config.truth_inits} or "
            "lower --truth-inits, --truth-horizon or --truth-context"
        )


def truth_init_times(config) -> list[int]:
    """The ``time`` values of the test frames that the truth starts' first leads verify against: evenly spread,
    with ``truth_context`` test frames before and ``truth_horizon - 1`` after each (none without members)."""
    if not config.truth_members:
        return []
    first = config.frames + config.truth_context
    last = config.frames + config.test_frames - config.truth_horizon
    return [int(t) for t in np.round(np.linspace(first, last, config.truth_inits)).astype(int)]
