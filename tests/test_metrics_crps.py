"""CRPS against properscoring and scoringrules, dtypes, NaN handling, member-dim errors, dask laziness."""

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics import crps_ensemble, crps_ensemble_array


def _pair(rng, shape=(3, 4, 5), m=7, dtype=np.float64, member_axis=1):
    ens = rng.normal(size=(shape[0], m, *shape[1:])).astype(dtype)
    obs = rng.normal(size=shape).astype(dtype)
    dims = ("init", "lead_time", "x")
    ens_da = xr.DataArray(ens, dims=(dims[0], "member", *dims[1:]))
    return xr.DataArray(obs, dims=dims), ens_da


@pytest.mark.parametrize("m", [1, 2, 7, 16, 33, 100])
def test_matches_properscoring(rng, m):
    obs, ens = _pair(rng, m=m)
    ours = crps_ensemble(obs, ens)
    reference = ps.crps_ensemble(obs.values, ens.transpose(..., "member").values)
    np.testing.assert_allclose(ours.values, reference, rtol=1e-6, atol=0)
    assert ours.dims == obs.dims


@pytest.mark.parametrize("m", [2, 5, 16, 40])
def test_fair_matches_scoringrules(rng, m):
    obs, ens = _pair(rng, m=m)
    ours = crps_ensemble(obs, ens, fair=True)
    reference = sr.crps_ensemble(obs.values, ens.transpose(..., "member").values, estimator="fair")
    # the fair score is exactly 0 (up to rounding) when m = 2 and the truth lies between the members
    np.testing.assert_allclose(ours.values, reference, rtol=1e-6, atol=1e-13)
    assert ours.attrs["estimator"] == "fair"


def test_large_offset_does_not_cancel(rng):
    # values ~1e6 with spread ~1e-3: the centred form keeps full relative precision
    obs, ens = _pair(rng, m=9)
    obs, ens = 1e6 + 1e-3 * obs, 1e6 + 1e-3 * ens
    reference = ps.crps_ensemble(obs.values, ens.transpose(..., "member").values)
    np.testing.assert_allclose(crps_ensemble(obs, ens).values, reference, rtol=1e-6)


def test_member_axis_anywhere_and_numpy_form(rng):
    ens = rng.normal(size=(4, 6, 5, 3))
    obs = rng.normal(size=(4, 5, 3))
    reference = ps.crps_ensemble(obs, ens, axis=1)
    np.testing.assert_allclose(crps_ensemble_array(obs, ens, axis=1), reference, rtol=1e-6)
    last = np.ascontiguousarray(np.moveaxis(ens, 1, -1))
    np.testing.assert_allclose(crps_ensemble_array(obs, last), reference, rtol=1e-6)
    with pytest.raises(ForecastError, match="does not match"):
        crps_ensemble_array(obs[:2], ens, axis=1)


def test_float32_stays_float32(rng):
    obs, ens = _pair(rng, dtype=np.float32)
    ours = crps_ensemble(obs, ens)
    assert ours.dtype == np.float32
    reference = ps.crps_ensemble(obs.values.astype(float), ens.transpose(..., "member").values.astype(float))
    np.testing.assert_allclose(ours.values, reference, rtol=1e-5)


def test_integer_video_frames_score_as_float(rng):
    ens = xr.DataArray(rng.integers(0, 256, size=(2, 5, 4), dtype=np.uint8), dims=("init", "member", "x"))
    obs = xr.DataArray(rng.integers(0, 256, size=(2, 4), dtype=np.uint8), dims=("init", "x"))
    ours = crps_ensemble(obs, ens)
    assert ours.dtype == np.float64
    reference = ps.crps_ensemble(obs.values.astype(float), ens.transpose(..., "member").values.astype(float))
    np.testing.assert_allclose(ours.values, reference, rtol=1e-6)


def test_nan_handling(rng):
    obs, ens = _pair(rng, m=6)
    ens_values = ens.values.copy()
    ens_values[0, 2, 1, 3] = np.nan  # one missing member at one point
    ens_values[1, :, 2, 2] = np.nan  # every member missing at another
    obs_values = obs.values.copy()
    obs_values[2, 0, 0] = np.nan
    ens, obs = ens.copy(data=ens_values), obs.copy(data=obs_values)
    strict = crps_ensemble(obs, ens).values
    assert np.isnan(strict[0, 1, 3]) and np.isnan(strict[1, 2, 2]) and np.isnan(strict[2, 0, 0])
    assert np.isfinite(strict).sum() == strict.size - 3
    lenient = crps_ensemble(obs, ens, skipna=True).values
    reference = ps.crps_ensemble(obs.values, ens.transpose(..., "member").values)  # ignores NaN members
    finite = np.isfinite(reference)
    np.testing.assert_allclose(lenient[finite], reference[finite], rtol=1e-6)
    assert np.isfinite(lenient[0, 1, 3])
    assert np.isnan(lenient[1, 2, 2]) and np.isnan(lenient[2, 0, 0])


def test_member_dimension_errors(rng):
    obs, ens = _pair(rng)
    with pytest.raises(ForecastError, match="no member dimension 'realization'"):
        crps_ensemble(obs, ens, member_dim="realization")
    with pytest.raises(ForecastError, match="ambiguous"):
        crps_ensemble(obs.expand_dims(member=ens.sizes["member"]), ens)
    with pytest.raises(ForecastError, match="do not match"):
        crps_ensemble(obs.isel(init=0), ens)  # would broadcast obs over init
    with pytest.raises(ForecastError, match="do not match"):
        crps_ensemble(obs, ens.isel(init=0))
    with pytest.raises(ForecastError, match="size"):
        crps_ensemble(obs.isel(x=slice(0, 3)), ens)
    shifted = obs.assign_coords(x=np.arange(obs.sizes["x"]) + 1)
    with pytest.raises(ForecastError, match="coordinates differ"):
        crps_ensemble(shifted, ens.assign_coords(x=np.arange(obs.sizes["x"])))


def test_dataset_in_dataset_out(rng):
    obs, ens = _pair(rng)
    result = crps_ensemble(xr.Dataset({"u": obs, "v": 2 * obs}), xr.Dataset({"u": ens, "v": 2 * ens}))
    assert set(result.data_vars) == {"u", "v"}
    np.testing.assert_allclose(result["v"].values, 2 * result["u"].values, rtol=1e-12)


def test_dask_is_lazy_and_matches(rng):
    obs, ens = _pair(rng, shape=(6, 4, 5), m=8)
    lazy = crps_ensemble(obs.chunk(init=2), ens.chunk(init=2, member=3), fair=True)
    assert lazy.chunks is not None  # still dask-backed: nothing computed yet
    np.testing.assert_allclose(lazy.compute().values, crps_ensemble(obs, ens, fair=True).values, rtol=1e-12)
