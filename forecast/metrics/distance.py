"""The energy distance between two ensembles at every point: how far a forecast's distribution is from another.

For one-dimensional distributions F (members X) and G (members Y) the energy distance is
``D(F, G) = 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 int (F(z) - G(z))^2 dz`` (Szekely and Rizzo 2013): twice
the Cramer distance, 0 exactly when F = G, in the units of the field. It is the CRPS generalised from a single
observation to a whole distribution: ``E_Y CRPS(F, Y) = D(F, G) / 2 + E|Y - Y'| / 2``, so against a truth
ensemble it is what the CRPS would be if the truth's own spread were taken out.

Here both within-ensemble means are over pairs i != j (U-statistics): the estimate is unbiased, 0 on average
when the two ensembles are drawn from one distribution whatever their sizes, and so may come out slightly
negative by chance. A one-member ensemble is a point mass. Computed per point (pixel) from the sorted
members, without forming m x K differences.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics import _kernels
from forecast.metrics._kernel_views import kernel_array, result_dtype, whole_member_axis

_OTHER_MEMBER = "__other_member"


def _energy_distance_array(a: np.ndarray, b: np.ndarray, skipna: bool = False) -> np.ndarray:
    """Numpy form: members on the last axis of ``a`` (..., m) and ``b`` (..., K); returns (...)."""
    a, b = kernel_array(a), kernel_array(b)
    shape = a.shape[:-1]
    flat_a = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    flat_b = np.ascontiguousarray(b.reshape(-1, b.shape[-1]))
    out = np.empty(flat_a.shape[0], dtype=result_dtype(a, b))
    _kernels.energy_distance_kernel(flat_a, flat_b, bool(skipna), out)
    return out.reshape(shape)


def energy_distance(
    ens: xr.DataArray,
    other: xr.DataArray,
    member_dim: str = "member",
    other_member_dim: str | None = None,
    skipna: bool = False,
) -> xr.DataArray:
    """Energy distance between the ensembles ``ens`` and ``other`` at every point; reduces the member dims.

    The two may differ in size (``other_member_dim`` defaults to ``member_dim``); every other dim must match
    in name, size and coordinates. Lazy on dask-backed input. See the module docstring.
    """
    other_member_dim = other_member_dim or member_dim
    for name, da, dim in (("ensemble", ens, member_dim), ("other ensemble", other, other_member_dim)):
        if dim not in da.dims:
            raise ForecastError(f"the {name} has no member dimension {dim!r} (its dims are {da.dims})")
    other = other.rename({other_member_dim: _OTHER_MEMBER})
    rest, other_rest = set(ens.dims) - {member_dim}, set(other.dims) - {_OTHER_MEMBER}
    if rest != other_rest:
        raise ForecastError(
            f"the ensembles' dims differ apart from their members: {sorted(map(str, rest))} and "
            f"{sorted(map(str, other_rest))}"
        )
    try:
        xr.align(ens, other, join="exact", copy=False)
    except ValueError as exc:
        raise ForecastError(f"the two ensembles' coordinates differ: {str(exc).splitlines()[0]}") from None
    ens = whole_member_axis(ens, member_dim)
    other = whole_member_axis(other, _OTHER_MEMBER)
    result = xr.apply_ufunc(
        _energy_distance_array,
        ens,
        other,
        input_core_dims=[[member_dim], [_OTHER_MEMBER]],
        kwargs={"skipna": skipna},
        dask="parallelized",
        output_dtypes=[result_dtype(ens, other)],
    )
    result.attrs = {
        "long_name": "energy distance between two ensembles",
        "estimator": "unbiased (pairs i != j within each ensemble)",
    }
    if "units" in ens.attrs:
        result.attrs["units"] = ens.attrs["units"]
    return result
