"""The continuous ranked probability score (CRPS) of an ensemble forecast.

For a forecast CDF F and an observation y, ``CRPS(F, y) = int (F(z) - 1{y <= z})^2 dz`` (appendix A of the
RVD paper). For an ensemble x_1..x_m two estimators are offered:

* ``fair=False`` (default): F is the ensemble's empirical CDF, ``CRPS = E|X - y| - E|X - X'| / 2`` with both
  expectations over the members, ``E|X - X'| = sum_ij |x_i - x_j| / m^2``. This is the quantity of
  ``properscoring.crps_ensemble`` (and scoringrules' ``qd``, ``nrg`` and ``int`` estimators) and of the RVD paper.
* ``fair=True``: the unbiased ("fair") estimator of the CRPS of the distribution the members are drawn from,
  ``E|X - X'| = sum_ij |x_i - x_j| / (m (m - 1))`` (Ferro 2014; scoringrules' ``fair`` and, in scoringrules 0.10, ``pwm``). It does not reward a
  small ensemble for being under-dispersive, so it compares ensembles of different sizes fairly.

Both are computed from the sorted members, without forming the m x m differences (see ``_kernels.crps_kernel``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics import _kernels
from forecast.metrics._kernel_views import (
    as_kernel_views,
    check_member_dim,
    kernel_array,
    per_variable,
    result_dtype,
    whole_member_axis,
)


def crps_ensemble_array(
    obs: np.ndarray, ens: np.ndarray, axis: int = -1, fair: bool = False, skipna: bool = False
) -> np.ndarray:
    """Numpy form of :func:`crps_ensemble`: ``ens`` has the members along ``axis``, ``obs`` the other axes.

    NaN: without ``skipna`` a point with a missing member or observation scores NaN; with ``skipna`` missing
    members are left out of that point's ensemble (as properscoring does), a missing observation still scores
    NaN, and so does a point with no members left (or fewer than two for the fair estimator: the fair CRPS of
    a one-member ensemble is NaN). Infinity: an infinite member or observation gives +inf, the exact CRPS,
    except where the observation and every member are the same infinity (0). float16 is computed as float32.
    """
    obs = kernel_array(obs)
    ens = np.moveaxis(kernel_array(ens), axis, -1)
    if ens.shape[:-1] != obs.shape:
        raise ForecastError(
            f"observation shape {obs.shape} does not match the ensemble's shape {ens.shape[:-1]} "
            "without its member axis"
        )
    if ens.shape[-1] == 0:
        raise ForecastError("the ensemble has no members")
    out = np.empty(obs.shape, dtype=result_dtype(obs, ens))
    (obs_view, out_view), ens_view = as_kernel_views([obs, out], ens)  # out_view: a view, written in place
    m = ens.shape[-1]
    use_network = m <= _kernels.NETWORK_MAX_MEMBERS
    network = _kernels.sorting_network(m if use_network else 1)
    _kernels.crps_kernel(obs_view, ens_view, network, bool(fair), bool(skipna), out_view, use_network)
    return out


def crps_ensemble(
    obs: xr.DataArray | xr.Dataset,
    ens: xr.DataArray | xr.Dataset,
    member_dim: str = "member",
    fair: bool = False,
    skipna: bool = False,
) -> xr.DataArray | xr.Dataset:
    """CRPS of the ensemble ``ens`` against ``obs`` at every point; reduces ``member_dim`` only.

    ``obs`` must have exactly the dims of ``ens`` less ``member_dim`` (same sizes and coordinates): a missing
    or ambiguous member dimension is an error, never a silent broadcast. Datasets are scored variable by
    variable. Dask-backed input gives a lazy, dask-backed result. See the module docstring for the estimators
    and :func:`crps_ensemble_array` for NaN handling.
    """
    if isinstance(obs, xr.Dataset) or isinstance(ens, xr.Dataset):
        return per_variable(crps_ensemble, obs, ens, member_dim=member_dim, fair=fair, skipna=skipna)
    check_member_dim(obs, ens, member_dim)
    ens = whole_member_axis(ens, member_dim)
    result = xr.apply_ufunc(
        crps_ensemble_array,
        obs,
        ens,
        input_core_dims=[[], [member_dim]],
        kwargs={"axis": -1, "fair": fair, "skipna": skipna},
        dask="parallelized",
        output_dtypes=[result_dtype(obs, ens)],
    )
    result.attrs = {
        "long_name": "continuous ranked probability score",
        "estimator": "fair" if fair else "ensemble",
        "ensemble_size": int(ens.sizes[member_dim]),
    }
    if "units" in ens.attrs:
        result.attrs["units"] = ens.attrs["units"]
    return result.rename(obs.name)
