"""The streamed, one-pass scoring (``forecast.metrics.streaming`` behind ``score_forecast``) against the registry.

The reference is the registry's own definition of every score: ``build_scores`` (each metric calling
``crps_ensemble``, ``ensemble_spread``, ``rank_histogram``, ``energy_distance``, ...) computed by dask, the path
``score_forecast`` took before issue 33; and properscoring for the CRPS. The streamed file must hold the same
variables, dims, coordinates, attributes and dtypes, and the same values to float rounding (histograms exactly),
whatever the block size.
"""

import dask
import numpy as np
import properscoring as ps
import pytest
import xarray as xr

from forecast.metrics import open_forecast, persistence_reference, score_forecast
from forecast.metrics.scores import build_scores
from forecast.metrics.synthetic import synthetic_forecast, synthetic_truth


def _registry(ds, **options) -> xr.Dataset:
    lazy = build_scores(ds, **options)
    return xr.Dataset(dask.compute(dict(lazy.data_vars))[0], attrs=lazy.attrs)


def _assert_same(streamed: xr.Dataset, registry: xr.Dataset, rtol: float) -> None:
    assert list(streamed.data_vars) == list(registry.data_vars)
    for name, expected in registry.data_vars.items():
        got = streamed[name]
        assert got.dims == expected.dims and got.dtype == expected.dtype, name
        assert got.attrs == expected.attrs, name
        xr.testing.assert_identical(got.coords.to_dataset(), expected.coords.to_dataset())
        if "histogram" in str(name):
            np.testing.assert_array_equal(got.values, expected.values, err_msg=str(name))
        else:
            np.testing.assert_allclose(got.values, expected.values, rtol=rtol, atol=1e-12, err_msg=str(name))
    for key in ("estimator", "ensemble_size", "n_init", "rank_tie_break_seed", "truth_ensemble_size"):
        assert streamed.attrs.get(key) == registry.attrs.get(key)


@pytest.mark.parametrize("fair", [False, True])
def test_every_score_equals_the_registry_with_reference_and_truth(fair):
    fc = synthetic_forecast(n_init=5, n_member=6, n_lead=3, ny=10, nx=12, dispersion=0.7, seed=3)
    truth = synthetic_truth(fc, n_member=9, seed=4)
    other = fc.isel(member=slice(0, 4))  # a smaller, biased reference of the same truth
    other = other.assign(u=other["u"] + 0.2, v=other["v"] - 0.1)
    options = {"fair": fair, "reference": other, "truth": truth, "seed": 7, "pit_bins": 7}
    streamed = score_forecast(fc, block_inits=2, **options)
    _assert_same(streamed, _registry(fc, **options), rtol=1e-10)
    # truth-ensemble scores are there, and the CRPS map is properscoring's (ensemble estimator)
    assert {"energy_distance_u", "rank_histogram_truth_v", "crps_skill_u"} <= set(streamed.data_vars)
    if not fair:
        expected = ps.crps_ensemble(fc["u_obs"].values, np.moveaxis(fc["u"].values, 1, -1)).mean(0)
        np.testing.assert_allclose(streamed["crps_u"].values, expected, rtol=1e-10)


def test_float32_file_streamed_in_any_block_size(tmp_path):
    fc = synthetic_forecast(n_init=7, n_member=5, n_lead=5, ny=9, nx=11, dtype=np.float32, seed=1)
    fc.to_netcdf(tmp_path / "fc.nc")
    lazy = open_forecast(tmp_path / "fc.nc")  # read block by block, never whole
    registry = _registry(fc, reference=persistence_reference(fc))
    results = [
        score_forecast(lazy, reference=persistence_reference(lazy), block_inits=n, progress=False)
        for n in (1, 3, 7)
    ]
    for streamed in results:
        _assert_same(streamed, registry, rtol=2e-5)  # float32 inputs: the registry sums in float32
        xr.testing.assert_allclose(streamed, results[0], rtol=1e-12)
    chunked = open_forecast(tmp_path / "fc.nc", chunks={"init": 2})  # dask-backed input: the same
    xr.testing.assert_allclose(score_forecast(chunked), score_forecast(lazy), rtol=1e-12)


@pytest.mark.parametrize("fair", [False, True])
def test_missing_and_infinite_values_with_skipna(fair):
    fc = synthetic_forecast(n_init=4, n_member=5, n_lead=3, ny=8, nx=8, seed=2)
    rng = np.random.default_rng(0)
    u = fc["u"].values
    u[rng.random(u.shape) < 0.05] = np.nan
    u[0, :4, 0, 0, 0] = np.nan  # a point with one member left
    u[1, :, 1, 2, 2] = np.nan  # a point with none
    fc["u_obs"].values[2, 0, 3, 3] = np.nan
    fc["v"].values[0, 1, 2, 4, 4] = np.inf
    truth = synthetic_truth(fc, n_member=6)
    options = {"skipna": True, "fair": fair, "truth": truth}
    _assert_same(score_forecast(fc, block_inits=3, **options), _registry(fc, **options), rtol=1e-10)


def test_channels_and_a_one_member_forecast():
    frames = synthetic_forecast(
        n_init=3, n_member=4, n_lead=2, ny=6, nx=7, variables=("frames",), n_channel=3
    )
    _assert_same(score_forecast(frames, fair=True, block_inits=2), _registry(frames, fair=True), rtol=1e-10)
    point = synthetic_forecast(n_init=3, n_member=1, n_lead=2, ny=6, nx=7)
    streamed = score_forecast(point, block_inits=2)
    _assert_same(streamed, _registry(point), rtol=1e-10)
    assert (streamed["spread_u"] == 0).all()


def test_same_numbers_on_one_thread_and_on_several(monkeypatch):
    from forecast.metrics import streaming

    fc = synthetic_forecast(n_init=6, n_member=4, n_lead=2, ny=8, nx=8)
    several = score_forecast(fc, block_inits=1)
    blocks = []
    original = streaming.run_blocks

    def one_thread(task, jobs, sizes, progress, threads=None):
        blocks.append(len(jobs))
        return original(task, jobs, sizes, progress, threads=1)

    monkeypatch.setattr(streaming, "run_blocks", one_thread)
    single = score_forecast(fc, block_inits=1)
    assert blocks == [6]
    xr.testing.assert_allclose(single, several, rtol=1e-12)


def test_a_metric_without_a_streamed_form_is_computed_by_the_registry(monkeypatch):
    from forecast.metrics import scores

    extra = scores.Metric(
        "mae",
        "MAE of the ensemble mean of {v}",
        lambda x, done: abs(x.ens.mean("member") - x.obs).mean(x.per_lead),
    )
    monkeypatch.setattr(scores, "METRICS", (*scores.METRICS, extra))
    fc = synthetic_forecast(n_init=3, n_member=4, n_lead=2, ny=6, nx=6)
    streamed = score_forecast(fc, block_inits=2)
    expected = abs(fc["u"].mean("member") - fc["u_obs"]).mean(["init", "y", "x"])
    np.testing.assert_allclose(streamed["mae_u"].values, expected.values, rtol=1e-12)
    assert streamed["mae_u"].attrs["long_name"] == "MAE of the ensemble mean of u"


def test_divergence_on_a_non_uniform_grid_equals_the_registry():
    fc = synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=6, nx=7)
    fc = fc.assign_coords(x=np.arange(7) ** 1.3, y=np.linspace(0, 1, 6))  # x non-uniform: numpy's gradient
    streamed = score_forecast(fc, block_inits=1)
    _assert_same(streamed, _registry(fc), rtol=1e-10)
    uniform = score_forecast(fc.assign_coords(x=np.arange(7.0)), block_inits=1)
    assert not np.allclose(uniform["divergence_rms"], streamed["divergence_rms"])
