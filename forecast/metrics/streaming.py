"""Scoring a forecast in one streamed pass: blocks of inits, every score's sums from one kernel call per ensemble.

``score_forecast`` reads the forecast in blocks of ``block_inits`` inits (by default as many as hold
:data:`BLOCK_MB` MB of members: measured, docs/results/speed.md). For each block and variable V one call of
``_kernels.summary_kernel`` sorts the members of every point once and adds the CRPS, the squared ensemble-mean
error, the member variance, the rank and the PIT into per-lead sums; the reference, the truth ensemble and the
velocity pair (spectra, divergence) add theirs. The sums of all blocks are added up and finished into the scores
(means, square roots, ratios). Memory holds a few blocks, never the file.

The scores file is the registry's (``forecast.metrics.scores``): its variables, dims, coordinates, attributes and
dtypes are those of ``build_scores`` on the first init (a lazy graph that is never computed), its values come from
the sums, equal to the registry's dask computation to float rounding (tested). A metric added to the registry
without a streamed form here is computed by the registry's lazy graph, in the same file.

Blocks run on a few threads of this process (reading the file is serialised, the kernels release the GIL), or,
when a dask distributed ``Client`` is active, as one task per block on its workers, which must see the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xarray as xr

from forecast.forecast_file import OBS_SUFFIX
from forecast.metrics import _kernels, shedding, stability
from forecast.metrics._kernel_views import kernel_array
from forecast.metrics.physics import divergence, kinetic_energy_spectrum
from forecast.metrics.spectral_bands import band_error

BLOCK_MB = 128  # members (all variables) per block; docs/results/speed.md measures the choice
_KEEP = ("lead_time", "y", "x")  # the dims of the CRPS map
Sums = dict[str, np.ndarray]


def default_block_inits(ds: xr.Dataset, names: list[str], member_dim: str = "member") -> int:
    """Inits per block: as many as hold :data:`BLOCK_MB` MB of members of all ``names`` (at least one)."""
    per_init = sum(ds[v].size // ds.sizes["init"] * ds[v].dtype.itemsize for v in names)
    return max(1, min(ds.sizes["init"], int(BLOCK_MB * 1e6 // max(per_init, 1))))


@dataclass(frozen=True)
class Plan:
    """What every block needs to know: the variables, how to score, the layout of the points."""

    names: tuple[str, ...]
    fair: bool
    skipna: bool
    seed: int
    pit_bins: int
    member_dim: str
    obs_dims: dict[str, tuple[str, ...]]  # V -> dims of V_obs, in its order (the rank hash's row-major index)
    obs_shape: dict[str, tuple[int, ...]]  # V -> shape of the whole V_obs
    reference_fair: bool = False
    reference: bool = False
    truth: bool = False
    verifying: bool = False
    flow: bool = False
    street: bool = False  # a vortex street long enough for the Strouhal number (``shedding.unavailable``)

    def points(self, v: str) -> tuple[str, ...]:
        """The dims of V_obs after ``init`` and ``lead_time``: one kernel point per combination."""
        return tuple(d for d in self.obs_dims[v] if d not in ("init", "lead_time"))


# ------------------------------------------------------------------------------------------------ one block
def _canonical(obs: xr.DataArray, ens: xr.DataArray | None, plan: Plan, v: str):
    """numpy ``obs[init, lead, point]`` and ``ens[init, member, lead, point]`` (views where the layout allows)."""
    rest = plan.points(v)
    o = kernel_array(obs.transpose("init", "lead_time", *rest).values)
    o = o.reshape(o.shape[0], o.shape[1], -1)
    if ens is None:
        return o, None
    e = kernel_array(ens.transpose("init", plan.member_dim, "lead_time", *rest).values)
    return o, e.reshape(e.shape[0], e.shape[1], e.shape[2], -1)


def _global_index(plan: Plan, v: str, start: int, n: int) -> np.ndarray:
    """Row-major position in the whole V_obs of every point of inits ``start..start+n`` (``[init, lead, point]``)."""
    dims, shape = plan.obs_dims[v], plan.obs_shape[v]
    strides = np.cumprod([1, *shape[::-1]])[:-1][::-1].astype(np.uint64)
    index = np.zeros((), dtype=np.uint64)
    for dim, size, stride in zip(dims, shape, strides):
        span = np.arange(start, start + n) if dim == "init" else np.arange(size)
        index = np.add.outer(index, span.astype(np.uint64) * stride)
    order = [dims.index(d) for d in ("init", "lead_time", *plan.points(v))]
    index = index.transpose(order)
    return index.reshape(index.shape[0], index.shape[1], -1)


def _ensemble_sums(obs, ens, index, fair: bool, plan: Plan, full: bool) -> Sums:
    """The kernel's sums of one ensemble against ``obs`` (``_kernels.summary_kernel``)."""
    n_lead, n_point, m = obs.shape[1], obs.shape[2], ens.shape[1]
    use_network = m <= _kernels.NETWORK_MAX_MEMBERS
    sums = {
        "crps_sum": np.zeros((n_lead, n_point)),
        "crps_count": np.zeros((n_lead, n_point), dtype=np.int64),
        "error_sum": np.zeros(n_lead),
        "error_count": np.zeros(n_lead, dtype=np.int64),
        "var_sum": np.zeros(n_lead),
        "var_count": np.zeros(n_lead, dtype=np.int64),
        "rank": np.zeros((n_lead, m + 1), dtype=np.int64),
        "pit": np.zeros((n_lead, plan.pit_bins), dtype=np.int64),
    }
    n_nan = _kernels.summary_kernel(
        obs, ens, index, _kernels.sorting_network(m if use_network else 1), use_network, bool(fair),
        plan.skipna, full, np.uint64(plan.seed), *sums.values(),
    )  # fmt: skip
    sums["nan"] = np.array(n_nan, dtype=np.int64)
    return sums


def _per_lead(
    values: np.ndarray, skipna: bool, keep: tuple[int, ...] = (1,)
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count over every axis of ``values`` but ``keep`` (the lead's); NaN left out with ``skipna``."""
    axes = tuple(a for a in range(values.ndim) if a not in keep)
    if skipna:
        return np.nansum(values, axis=axes), np.sum(~np.isnan(values), axis=axes)
    total = np.sum(values, axis=axes)
    return total, np.full(total.shape, values.size // total.size)


def _energy_distance_sums(ens: np.ndarray, truth: np.ndarray, skipna: bool) -> Sums:
    """Per-lead sums of the energy distance between two ``[init, member, lead, point]`` ensembles."""
    n_init, _, n_lead, n_point = ens.shape
    flat = [np.ascontiguousarray(np.moveaxis(a, 1, -1)).reshape(-1, a.shape[1]) for a in (ens, truth)]
    out = np.empty(flat[0].shape[0])
    _kernels.energy_distance_kernel(flat[0], flat[1], skipna, out)
    total, count = _per_lead(out.reshape(n_init, n_lead, n_point), skipna)
    return {"energy_sum": total, "energy_count": count}


def _max_difference(obs: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``[max |obs - other|, max |obs|]`` (NaN left out), for the same-truth checks of ``scores.input_checks``."""
    with np.errstate(all="ignore"):
        return np.array(
            [np.nanmax(np.abs(obs - other), initial=-np.inf), np.nanmax(np.abs(obs), initial=-np.inf)]
        )


def _uniform_step(field: xr.DataArray, dim: str) -> float | None:
    """The spacing of ``dim`` (its coordinate, else 1) where it is uniform with at least 3 points, else None."""
    coord = field[dim].values if dim in field.coords else np.arange(field.sizes[dim])
    step = np.diff(np.asarray(coord, dtype=np.float64))
    return float(step[0]) if step.size >= 2 and (step == step[0]).all() else None


def _divergence_sums(u: xr.DataArray, v: xr.DataArray, skipna: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead sum and count of the squared divergence (``physics.divergence``) of frames of u and v."""
    dx, dy = _uniform_step(u, "x"), _uniform_step(u, "y")
    if dx is None or dy is None:  # numpy's non-uniform gradient, through physics.divergence
        div = divergence(u, v).transpose(..., "lead_time", "y", "x").values
        div = div.reshape(-1, *div.shape[-3:]).astype(np.float64)  # [frames of a lead, lead, y, x]
        return _per_lead(div * div, skipna)
    frames = [np.asarray(f.transpose(..., "lead_time", "y", "x").values) for f in (u, v)]
    frames = [kernel_array(f.reshape(-1, *f.shape[-3:])) for f in frames]
    total, count = np.zeros(frames[0].shape[1]), np.zeros(frames[0].shape[1], dtype=np.int64)
    _kernels.divergence_square_kernel(*frames, dx, dy, skipna, total, count)
    return total, count


def _spectrum_sums(u: xr.DataArray, v: xr.DataArray, plan: Plan) -> Sums:
    """Per-lead sums of the kinetic-energy spectrum of one velocity pair (members, verifying truth or truth)."""
    spectrum = kinetic_energy_spectrum(u, v).transpose(..., "lead_time", "wavenumber").values
    spectrum = spectrum.reshape(-1, *spectrum.shape[-2:])  # [frames of a lead, lead, wavenumber]
    spec_sum, spec_count = _per_lead(spectrum, plan.skipna, keep=(1, 2))
    return {"spectrum_sum": spec_sum, "spectrum_count": spec_count}


def _flow_sums(u: xr.DataArray, v: xr.DataArray, plan: Plan) -> Sums:
    """Per-lead sums of the kinetic-energy spectrum and squared divergence of one velocity pair (members or truth)."""
    div_sum, div_count = _divergence_sums(u, v, plan.skipna)
    return {**_spectrum_sums(u, v, plan), "div_sum": div_sum, "div_count": div_count}


def _stability_sums(obs: xr.DataArray, ens: xr.DataArray, plan: Plan, v: str, start: int) -> Sums:
    """The verifying truth's extremes and, at the block's inits of arrays over every init, each member frame's
    lowest and highest value and count of non-finite values (``stability.frame_extremes``)."""
    extremes = stability.frame_extremes(ens, plan.member_dim).transpose("init", plan.member_dim, "lead_time")
    n_init = plan.obs_shape[v][plan.obs_dims[v].index("init")]
    inits = slice(start, start + ens.sizes["init"])
    sums = {}
    for key, fill in (("low_min", np.nan), ("high_max", np.nan), ("nonfinite", 0)):
        values = extremes[key.split("_")[0]].values
        full = np.full((n_init, *values.shape[1:]), fill, dtype=np.float64)
        full[inits] = values
        sums[f"stability_{key}"] = full
    values = np.asarray(obs.values, dtype=np.float64).ravel()
    sums["stability_obs_low_min"] = np.fmin.reduce(values, initial=np.inf)
    sums["stability_obs_high_max"] = np.fmax.reduce(values, initial=-np.inf)
    return sums


def _strouhal_sums(block: xr.Dataset, plan: Plan, start: int) -> Sums:
    """The Strouhal numbers of the block's members and verifying truth (``shedding``), at the block's inits of
    arrays over every init (NaN elsewhere)."""
    n_init = plan.obs_shape["v"][plan.obs_dims["v"].index("init")]
    inits = slice(start, start + block.sizes["init"])
    sums = {}
    for key, name in (("strouhal_max", "v"), ("strouhal_obs_max", "v" + OBS_SUFFIX)):
        values = shedding.strouhal_numbers(block[name], block).transpose("init", ...).values
        sums[key] = np.full((n_init, *values.shape[1:]), np.nan)
        sums[key][inits] = values
    return sums


def block_sums(
    plan: Plan,
    start: int,
    block: xr.Dataset,
    reference: xr.Dataset | None = None,
    truth: xr.Dataset | None = None,
    verifying: xr.Dataset | None = None,
) -> Sums:
    """The sums of inits ``start ..`` of the forecast ``block`` (and the same inits of the optional inputs).

    The inputs may be lazy (read here, in the calling thread or dask worker) or in memory.
    """
    block, reference, truth, verifying = (
        None if d is None else d.compute(scheduler="synchronous")
        for d in (block, reference, truth, verifying)
    )
    sums: Sums = {}
    for v in plan.names:
        obs, ens = _canonical(block[f"{v}{OBS_SUFFIX}"], block[v], plan, v)
        index = _global_index(plan, v, start, obs.shape[0])
        _put(sums, v, "", _ensemble_sums(obs, ens, index, plan.fair, plan, full=True))
        _put(sums, v, "", _stability_sums(block[f"{v}{OBS_SUFFIX}"], block[v], plan, v, start))
        if reference is not None:
            ref_obs, ref = _canonical(reference[f"{v}{OBS_SUFFIX}"], reference[v], plan, v)
            _put(
                sums, v, "reference_", _ensemble_sums(obs, ref, index, plan.reference_fair, plan, full=False)
            )
            sums[f"{v}:reference_difference"] = _max_difference(obs, ref_obs)
        if truth is not None:
            _, members = _canonical(block[f"{v}{OBS_SUFFIX}"], truth[v], plan, v)
            _put(sums, v, "truth_", _ensemble_sums(obs, members, index, plan.fair, plan, full=True))
            _put(sums, v, "", _energy_distance_sums(ens, members, plan.skipna))
        if verifying is not None:
            frames = verifying[v].transpose(*block[f"{v}{OBS_SUFFIX}"].dims)
            sums[f"{v}:verifying_difference"] = _max_difference(obs, _canonical(frames, None, plan, v)[0])
    if plan.flow:
        _put(sums, "flow", "", _flow_sums(block["u"], block["v"], plan))
        _put(sums, "flow", "obs_", _flow_sums(block["u" + OBS_SUFFIX], block["v" + OBS_SUFFIX], plan))
        if truth is not None:
            _put(sums, "flow", "truth_", _spectrum_sums(truth["u"], truth["v"], plan))
    if plan.street:
        _put(sums, "flow", "", _strouhal_sums(block, plan, start))
    return sums


def _put(sums: Sums, v: str, prefix: str, new: Sums) -> None:
    sums.update({f"{v}:{prefix}{key}": value for key, value in new.items()})


def add_sums(total: Sums | None, new: Sums) -> Sums:
    """Sums of two sets of blocks: maxima for the same-truth checks' differences and for ``*_max``, minima for
    ``*_min`` (missing values, the other blocks' inits, left out), totals otherwise."""
    if total is None:
        return new
    return {k: _combine(k, total[k], new[k]) for k in total}


def _combine(key: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if key.endswith(("_difference", "_max")):
        return np.fmax(a, b)
    return np.fmin(a, b) if key.endswith("_min") else a + b


# ------------------------------------------------------------------------------------------------ the blocks
def _distributed_client():
    """The active dask distributed Client, or None."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def run_blocks(
    task: Callable[..., Sums], jobs: list[tuple], sizes: list[int], progress: bool, threads: int | None = None
) -> Sums:
    """``task(*job)`` for every job, added up: on the active dask distributed client's workers, or on ``threads``
    threads here (default: the CPUs, at most 4), with at most ``threads + 1`` blocks in flight."""
    from tqdm.auto import tqdm

    total = None
    with tqdm(total=sum(sizes), desc="scoring", unit="init", disable=not progress) as bar:
        for sums, size in _completed(task, jobs, sizes, threads):
            total = add_sums(total, sums)
            bar.update(size)
    return total


def _completed(task, jobs: list[tuple], sizes: list[int], threads: int | None) -> Iterator[tuple[Sums, int]]:
    client = _distributed_client()
    if client is not None:
        from distributed import as_completed

        futures = {client.submit(task, *job, pure=False): size for job, size in zip(jobs, sizes)}
        for future in as_completed(futures):
            yield future.result(), futures[future]
        return
    threads = threads or min(os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(threads) as pool:
        pending = []
        for job, size in zip(jobs, sizes):
            pending.append((pool.submit(task, *job), size))
            if len(pending) > threads:
                future, done_size = pending.pop(0)
                yield future.result(), done_size
        for future, done_size in pending:
            yield future.result(), done_size


# ------------------------------------------------------------------------------------------------ finishing
def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


def _mean(sums: Sums, key: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return sums[f"{key}_sum"] / sums[f"{key}_count"]


def _lead_mean(sums: Sums, key: str) -> np.ndarray:
    """Mean over every point of a per-(lead, point) sum."""
    with np.errstate(all="ignore"):
        return sums[f"{key}_sum"].sum(axis=-1) / sums[f"{key}_count"].sum(axis=-1)


def _crps_map(sums: Sums, plan: Plan, v: str, lead: xr.DataArray) -> xr.DataArray:
    """CRPS per (lead, y, x): the per-point sums added over the other point dims (channel) and divided."""
    rest = plan.points(v)
    shape = (lead.size, *(plan.obs_shape[v][plan.obs_dims[v].index(d)] for d in rest))
    extra = [d for d in rest if d not in _KEEP]
    total = xr.DataArray(sums[f"{v}:crps_sum"].reshape(shape), dims=("lead_time", *rest)).sum(extra)
    count = xr.DataArray(sums[f"{v}:crps_count"].reshape(shape), dims=("lead_time", *rest)).sum(extra)
    with np.errstate(all="ignore"):
        return total / count


def streamed_values(sums: Sums, plan: Plan, v: str, lead: xr.DataArray) -> dict[str, Callable[[], object]]:
    """The values of the registry's scores of V (by metric key) from the sums: each a numpy array or DataArray."""
    s = {k.split(":", 1)[1]: a for k, a in sums.items() if k.startswith(f"{v}:")}
    m = s["rank"].shape[1] - 1
    values: dict[str, Callable[[], object]] = {}
    values["crps"] = lambda: _crps_map(sums, plan, v, lead)
    values["crps_mean"] = lambda: values["crps"]().mean(["y", "x"], skipna=plan.skipna)
    values["rmse"] = lambda: np.sqrt(_mean(s, "error"))
    values["spread"] = lambda: np.sqrt(_mean(s, "var"))
    values["spread_skill"] = lambda: _ratio(values["spread"](), values["rmse"]()) * np.sqrt((m + 1) / m)
    values["rank_histogram"] = lambda: s["rank"]
    values["pit_histogram"] = lambda: s["pit"]
    if plan.reference:
        values["crps_reference_mean"] = lambda: _lead_mean(s, "reference_crps")
        values["crps_skill"] = lambda: (
            1 - _ratio(np.asarray(values["crps_mean"]()), values["crps_reference_mean"]())
        )
    if plan.truth:
        k = s["truth_rank"].shape[1] - 1
        values["crps_oracle_mean"] = lambda: _lead_mean(s, "truth_crps")
        values["crps_oracle_ratio"] = lambda: _ratio(
            np.asarray(values["crps_mean"]()), values["crps_oracle_mean"]()
        )
        values["spread_truth"] = lambda: np.sqrt(_mean(s, "truth_var"))
        values["spread_ratio_truth"] = lambda: _ratio(values["spread"](), values["spread_truth"]())
        values["spread_skill_truth"] = lambda: (
            _ratio(np.sqrt(_mean(s, "truth_var")), np.sqrt(_mean(s, "truth_error"))) * np.sqrt((k + 1) / k)
        )
        values["energy_distance"] = lambda: _mean(s, "energy")
        values["rank_histogram_truth"] = lambda: s["truth_rank"]
    values["stable_fraction"] = lambda: stability.stable_fraction(_departed(s, plan, lead))
    values["stability_horizon"] = lambda: stability.stability_horizon(values["stable_fraction"]())
    return values


def _departed(s: Sums, plan: Plan, lead: xr.DataArray) -> xr.DataArray:
    """``stability.departed`` of one variable from its streamed extremes."""
    dims = ("init", plan.member_dim, "lead_time")
    extremes = xr.Dataset(
        {
            key: (dims, s[f"stability_{name}"])
            for key, name in (("low", "low_min"), ("high", "high_max"), ("nonfinite", "nonfinite"))
        },  # fmt: skip
        coords={"lead_time": lead.values},
    )
    low, high = stability.widened(s["stability_obs_low_min"], s["stability_obs_high_max"])
    return stability.departed(extremes, low, high)


def flow_values(sums: Sums) -> dict[str, Callable[[], np.ndarray]]:
    """The velocity pair's scores (``FLOW_METRICS`` names) from the sums."""
    values = {
        "ke_spectrum": lambda: _mean(sums, "flow:spectrum"),
        "ke_spectrum_obs": lambda: _mean(sums, "flow:obs_spectrum"),
        "divergence_rms": lambda: np.sqrt(_mean(sums, "flow:div")),
        "divergence_rms_obs": lambda: np.sqrt(_mean(sums, "flow:obs_div")),
    }
    reference = "ke_spectrum_obs"
    if "flow:truth_spectrum_sum" in sums:
        values["ke_spectrum_truth"] = lambda: _mean(sums, "flow:truth_spectrum")
        reference = "ke_spectrum_truth"
    spectrum = lambda name: xr.DataArray(values[name](), dims=("lead_time", "wavenumber"))  # noqa: E731
    values["ke_band_error"] = lambda: band_error(spectrum("ke_spectrum"), spectrum(reference))
    if "flow:strouhal_max" in sums:
        members, truth = sums["flow:strouhal_max"], sums["flow:strouhal_obs_max"][:, None]
        values["strouhal_number"] = lambda: members
        values["strouhal_number_obs"] = lambda: truth[:, 0]
        values["strouhal_relative_error"] = lambda: (members - truth) / truth
    return values
