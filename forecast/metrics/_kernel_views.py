"""Shared plumbing of the metrics: checking the member dimension, Datasets variable by variable, and numpy
views for the kernels."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from forecast.errors import ForecastError


def check_member_dim(obs: xr.DataArray, ens: xr.DataArray, member_dim: str) -> None:
    """Refuse a missing or ambiguous member dimension and anything that xarray would silently broadcast."""
    if not isinstance(member_dim, str):
        raise ForecastError(f"member_dim must be the name of one dimension, got {member_dim!r}")
    if member_dim not in ens.dims:
        raise ForecastError(f"the ensemble has no member dimension {member_dim!r} (its dims are {ens.dims})")
    if member_dim in obs.dims:
        raise ForecastError(
            f"the observation also has the dimension {member_dim!r}: ambiguous which one holds the members"
        )
    ens_rest = set(ens.dims) - {member_dim}
    if ens_rest != set(obs.dims):
        raise ForecastError(
            f"observation dims {obs.dims} do not match the ensemble's dims {ens.dims} less {member_dim!r}; "
            "select or broadcast explicitly"
        )
    for dim in obs.dims:
        if obs.sizes[dim] != ens.sizes[dim]:
            raise ForecastError(
                f"dimension {dim!r} has size {obs.sizes[dim]} in the observation, {ens.sizes[dim]} in the ensemble"
            )
    try:
        xr.align(obs, ens, join="exact", copy=False)
    except ValueError as exc:
        raise ForecastError(
            f"observation and ensemble coordinates differ: {str(exc).splitlines()[0]}"
        ) from None
    if ens.sizes[member_dim] == 0:
        raise ForecastError(f"the ensemble has no members along {member_dim!r}")


def whole_member_axis(ens: xr.DataArray, member_dim: str) -> xr.DataArray:
    """One dask chunk along the member dimension (a per-point kernel needs all members at once)."""
    if ens.chunks is not None:
        axis = ens.get_axis_num(member_dim)
        if len(ens.chunks[axis]) > 1:
            ens = ens.chunk({member_dim: -1})
    return ens


def result_dtype(*arrays) -> np.dtype:
    """float32 stays float32, float64 stays float64, integers (8-bit video) become float64."""
    dtypes = [a.dtype for a in arrays]
    if any(not np.issubdtype(d, np.floating) for d in dtypes):
        return np.dtype(np.float64)
    return np.result_type(*dtypes, np.float32)


def kernel_array(array) -> np.ndarray:
    """``array`` as numpy in a dtype the compiled kernels take: float16 (which numba lacks) becomes float32."""
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype == np.float16 else array


def per_variable(fn, obs, ens, **kwargs) -> xr.Dataset:
    """Apply ``fn(obs[V], ens[V], **kwargs)`` to every variable of two Datasets with the same variables."""
    if not (isinstance(obs, xr.Dataset) and isinstance(ens, xr.Dataset)):
        raise ForecastError("pass two Datasets or two DataArrays, not one of each")
    if set(obs.data_vars) != set(ens.data_vars):
        raise ForecastError(
            f"observation variables {sorted(obs.data_vars)} differ from ensemble variables {sorted(ens.data_vars)}"
        )
    return xr.Dataset({name: fn(obs[name], ens[name], **kwargs) for name in obs.data_vars})


def _reshape_nocopy(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        return array.reshape(shape, copy=False)
    except ValueError:
        return None


def as_kernel_views(point_arrays: list[np.ndarray], ens: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Views ``(A, B)`` of the per-point arrays and ``(A, B, m)`` of ``ens`` (member axis last, any stride).

    The loop shape is split in two at the first place where every array reshapes without a copy, so the
    usual layouts (member last, or member between ``init`` and the rest) reach the kernel uncopied.
    """
    loop_shape = ens.shape[:-1]
    m = ens.shape[-1]
    for split in range(len(loop_shape) + 1):
        a, b = math.prod(loop_shape[:split]), math.prod(loop_shape[split:])
        ens_view = _reshape_nocopy(ens, (a, b, m))
        views = [_reshape_nocopy(p, (a, b)) for p in point_arrays]
        if ens_view is not None and all(v is not None for v in views):
            return views, ens_view
    a = math.prod(loop_shape)
    return [np.reshape(p, (1, a)) for p in point_arrays], np.reshape(ens, (1, a, m))
