"""Calibration of an ensemble: ensemble-mean RMSE, spread, spread-skill ratio, rank and PIT histograms.

All functions take an observation ``obs`` (dims D) and an ensemble ``ens`` (dims D plus ``member_dim``) as
xarray objects, reduce ``member_dim`` and the dims in ``dim`` (default: all of D), and work lazily on dask.

* RMSE: ``sqrt(mean_dim (mean_members(x) - y)^2)``, the error of the ensemble mean.
* spread: ``sqrt(mean_dim var_members(x))`` with the unbiased (ddof=1) member variance.
* spread-skill ratio: ``sqrt((m + 1) / m) * spread / RMSE``. For a calibrated ensemble (truth and members
  exchangeable draws) ``E[(xbar - y)^2] = (1 + 1/m) E[s^2]``, so the uncorrected ratio tends to
  ``sqrt(m / (m + 1))`` (0.97 at m = 16); the finite-ensemble factor makes 1 the calibrated value at every m
  (Fortin et al. 2014). Below 1: under-dispersive (over-confident); above 1: over-dispersive.
* rank histogram: counts of the truth's rank 0..m among the members. Ties between the truth and members
  (common in 8-bit video) are broken uniformly at random, with a random number hashed from the point's
  position and ``seed``: the same input and seed give the same histogram, however the data are chunked.
  Flat for a calibrated ensemble, U-shaped when under-dispersive, dome-shaped when over-dispersive.
* PIT histogram: the randomised probability integral transform ``(n_below + u (n_tied + 1)) / (m + 1)``,
  u uniform, binned on [0, 1]; uniform (flat histogram) exactly when the rank histogram is flat.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics import _kernels
from forecast.metrics._kernel_views import (
    as_kernel_views,
    check_member_dim,
    kernel_array,
    per_variable,
    whole_member_axis,
)


def _reduce_dims(obs: xr.DataArray, dim: str | Iterable[Hashable] | None) -> list[Hashable]:
    if dim is None:
        return list(obs.dims)
    dims = [dim] if isinstance(dim, str) else list(dim)
    unknown = [d for d in dims if d not in obs.dims]
    if unknown:
        raise ForecastError(f"cannot reduce over {unknown}: the observation's dims are {obs.dims}")
    return dims


def ensemble_mean_rmse(
    obs: xr.DataArray, ens: xr.DataArray, member_dim: str = "member", dim=None, skipna: bool = False
) -> xr.DataArray:
    """Root-mean-square error of the ensemble mean, averaged over ``dim``."""
    check_member_dim(obs, ens, member_dim)
    error = ens.mean(member_dim, skipna=skipna) - obs
    rmse = np.sqrt((error**2).mean(_reduce_dims(obs, dim), skipna=skipna))
    return rmse.assign_attrs(long_name="RMSE of the ensemble mean", **_units(ens))


def ensemble_spread(
    ens: xr.DataArray, member_dim: str = "member", dim=None, skipna: bool = False
) -> xr.DataArray:
    """Ensemble spread ``sqrt(mean_dim var_members)`` (unbiased member variance, ddof=1)."""
    if member_dim not in ens.dims:
        raise ForecastError(f"the ensemble has no member dimension {member_dim!r} (its dims are {ens.dims})")
    rest = [d for d in ens.dims if d != member_dim]
    dims = rest if dim is None else ([dim] if isinstance(dim, str) else list(dim))
    if ens.sizes[member_dim] == 1:
        # A one-member (deterministic) forecast states no uncertainty: its spread is 0, not undefined.
        variance = 0.0 * ens.isel({member_dim: 0}, drop=True)  # 0 where defined, NaN where the value is
    else:
        variance = ens.var(member_dim, ddof=1, skipna=skipna)
    spread = np.sqrt(variance.mean(dims, skipna=skipna))
    return spread.assign_attrs(long_name="ensemble spread (standard deviation)", **_units(ens))


def spread_skill_ratio(
    obs: xr.DataArray,
    ens: xr.DataArray,
    member_dim: str = "member",
    dim=None,
    skipna: bool = False,
    finite_ensemble_correction: bool = True,
) -> xr.DataArray:
    """``sqrt((m + 1) / m) * spread / RMSE``: 1 for a calibrated ensemble of any size m (see module doc); NaN
    where the RMSE is 0 (undefined)."""
    m = ens.sizes.get(member_dim, 0)
    rmse = ensemble_mean_rmse(obs, ens, member_dim, dim, skipna)
    ratio = ensemble_spread(ens, member_dim, dim or _reduce_dims(obs, dim), skipna) / rmse.where(rmse != 0)
    if finite_ensemble_correction:
        ratio = ratio * np.sqrt((m + 1) / m)
    return ratio.assign_attrs(
        long_name="spread-skill ratio",
        units="1",
        finite_ensemble_correction="sqrt((m+1)/m)" if finite_ensemble_correction else "none",
    )


def _units(da: xr.DataArray) -> dict:
    return {"units": da.attrs["units"]} if "units" in da.attrs else {}


def _row_major_index(locations: list[tuple[int, int]], strides: np.ndarray) -> np.ndarray:
    """Row-major positions of the block spanning ``locations`` ((start, stop) per axis) of an array."""
    index = np.zeros((), dtype=np.uint64)
    for (start, stop), stride in zip(locations, strides):
        index = np.add.outer(index, np.arange(start, stop, dtype=np.uint64) * np.uint64(stride))
    return index


def _global_index(obs: xr.DataArray) -> xr.DataArray:
    """The row-major position of every point of ``obs``, chunked like ``obs`` (dask-backed if it is).

    Built block by block from each block's location, so it needs no rechunking and reads nothing.
    """
    strides = np.cumprod([1, *obs.shape[::-1]])[:-1][::-1]
    if obs.chunks is None:
        values = _row_major_index([(0, n) for n in obs.shape], strides)
    else:
        import dask.array as da

        values = da.map_blocks(
            lambda block_info=None: _row_major_index(block_info[None]["array-location"], strides),
            chunks=obs.chunks,
            dtype=np.uint64,
            meta=np.empty((0,) * obs.ndim, dtype=np.uint64),
        )
    return xr.DataArray(values, dims=obs.dims)


def _rank_and_pit_array(obs, ens, index, seed, skipna):
    obs, ens = kernel_array(obs), kernel_array(ens)
    rank = np.empty(obs.shape, dtype=np.int16 if ens.shape[-1] < 32767 else np.int32)
    pit = np.empty(obs.shape, dtype=np.float64)
    (obs_v, index_v, rank_v, pit_v), ens_v = as_kernel_views(
        [obs, np.broadcast_to(index, obs.shape), rank, pit], ens
    )
    _kernels.rank_kernel(obs_v, ens_v, index_v, np.uint64(seed), bool(skipna), rank_v, pit_v)
    return rank, pit


def rank_and_pit(
    obs: xr.DataArray, ens: xr.DataArray, member_dim: str = "member", seed: int = 0, skipna: bool = False
) -> tuple[xr.DataArray, xr.DataArray]:
    """Per point: the truth's rank among the members (0..m; -1 where undefined) and its randomised PIT."""
    check_member_dim(obs, ens, member_dim)
    ens = whole_member_axis(ens, member_dim)
    index = _global_index(obs)
    rank, pit = xr.apply_ufunc(
        _rank_and_pit_array,
        obs,
        ens,
        index,
        input_core_dims=[[], [member_dim], []],
        output_core_dims=[[], []],
        kwargs={"seed": int(seed), "skipna": skipna},
        dask="parallelized",
        output_dtypes=[np.int16 if ens.sizes[member_dim] < 32767 else np.int32, np.float64],
    )
    rank.attrs = {"long_name": "rank of the observation among the members", "units": "1", "seed": int(seed)}
    pit.attrs = {"long_name": "randomised probability integral transform", "units": "1", "seed": int(seed)}
    return rank, pit


def rank_histogram(
    obs: xr.DataArray,
    ens: xr.DataArray,
    member_dim: str = "member",
    dim=None,
    seed: int = 0,
    skipna: bool = False,
) -> xr.DataArray:
    """Counts of the truth's rank (dim ``rank``, 0..m) over ``dim``; points without a rank are not counted.

    Datasets are ranked variable by variable (as :func:`crps_ensemble` scores them).
    """
    if isinstance(obs, xr.Dataset) or isinstance(ens, xr.Dataset):
        return per_variable(
            rank_histogram, obs, ens, member_dim=member_dim, dim=dim, seed=seed, skipna=skipna
        )
    dims = _reduce_dims(obs, dim)
    rank, _ = rank_and_pit(obs, ens, member_dim, seed, skipna)
    m = ens.sizes[member_dim]
    bins = xr.DataArray(np.arange(m + 1), dims="rank", coords={"rank": np.arange(m + 1)})
    counts = (rank == bins).sum(dims, dtype=np.int64)
    counts["rank"].attrs = {"long_name": "number of members below the observation", "units": "1"}
    return counts.assign_attrs(
        long_name="rank histogram (counts)", units="1", seed=int(seed), ensemble_size=m
    )


def pit_histogram(
    obs: xr.DataArray,
    ens: xr.DataArray,
    member_dim: str = "member",
    dim=None,
    bins: int = 10,
    seed: int = 0,
    skipna: bool = False,
) -> xr.DataArray:
    """Counts of the randomised PIT in ``bins`` equal bins of [0, 1] (dim ``pit_bin``, coordinate = centres).

    Datasets are binned variable by variable.
    """
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
        raise ForecastError(f"the PIT histogram needs a whole number of bins >= 1, got {bins!r}")
    if isinstance(obs, xr.Dataset) or isinstance(ens, xr.Dataset):
        return per_variable(
            pit_histogram, obs, ens, member_dim=member_dim, dim=dim, bins=bins, seed=seed, skipna=skipna
        )
    dims = _reduce_dims(obs, dim)
    _, pit = rank_and_pit(obs, ens, member_dim, seed, skipna)
    which = np.floor(pit * bins).clip(0, bins - 1)  # NaN stays NaN and matches no bin
    centres = (np.arange(bins) + 0.5) / bins
    index = xr.DataArray(np.arange(bins), dims="pit_bin", coords={"pit_bin": centres})
    counts = (which == index).sum(dims, dtype=np.int64)
    counts["pit_bin"].attrs = {"long_name": "PIT bin centre", "units": "1"}
    return counts.assign_attrs(long_name="PIT histogram (counts)", units="1", seed=int(seed), bins=bins)
