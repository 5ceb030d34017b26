"""Metrics on edge inputs: one member, float16, Datasets, infinities, bad bin counts; the score registry."""

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import xarray as xr

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.metrics import crps_ensemble, crps_ensemble_array, pit_histogram, rank_histogram
from forecast.metrics.scores import METRICS, build_scores
from forecast.metrics.skill import score_ratio, skill_score
from forecast.metrics.synthetic import synthetic_forecast
from forecast.scores_file import score_variables


def _pair(rng, m=5, dtype=np.float64):
    ens = xr.DataArray(rng.normal(size=(3, m, 4)).astype(dtype), dims=("init", "member", "x"))
    obs = xr.DataArray(rng.normal(size=(3, 4)).astype(dtype), dims=("init", "x"))
    return obs, ens


def test_fair_crps_of_one_member_is_nan(rng):
    obs, ens = _pair(rng, m=1)
    assert np.isnan(crps_ensemble(obs, ens, fair=True).values).all()
    assert np.isnan(crps_ensemble_array(obs.values, ens.values, axis=1, fair=True)).all()
    # the ensemble estimator of one member is its absolute error
    np.testing.assert_allclose(crps_ensemble(obs, ens).values, abs(ens.isel(member=0) - obs).values)


def test_float16_input_is_scored_as_float32(rng):
    obs, ens = _pair(rng, m=6, dtype=np.float16)
    crps = crps_ensemble(obs, ens)
    assert crps.dtype == np.float32
    expected = crps_ensemble(obs.astype(np.float32), ens.astype(np.float32))
    np.testing.assert_array_equal(crps.values, expected.values)
    hist = rank_histogram(obs, ens, dim=["init", "x"])
    xr.testing.assert_equal(
        hist, rank_histogram(obs.astype(np.float32), ens.astype(np.float32), dim=["init", "x"])
    )


def test_rank_and_pit_histograms_take_datasets(rng):
    obs_u, ens_u = _pair(rng)
    obs_v, ens_v = _pair(rng)
    obs, ens = xr.Dataset({"u": obs_u, "v": obs_v}), xr.Dataset({"u": ens_u, "v": ens_v})
    hist = rank_histogram(obs, ens, dim=["init"], seed=2)
    assert isinstance(hist, xr.Dataset) and set(hist.data_vars) == {"u", "v"}
    xr.testing.assert_equal(hist["v"], rank_histogram(obs_v, ens_v, dim=["init"], seed=2))
    pit = pit_histogram(obs, ens, bins=4)
    xr.testing.assert_equal(pit["u"], pit_histogram(obs_u, ens_u, bins=4))
    with pytest.raises(ForecastError, match="two Datasets"):
        rank_histogram(obs, ens_u)


@pytest.mark.parametrize("fair", [False, True])
def test_infinite_member_or_observation_gives_inf(rng, fair):
    obs, ens = _pair(rng, m=4)
    ens, obs = ens.copy(), obs.copy()
    ens[0, 1, 0] = np.inf  # one infinite member
    ens[1, :, 1] = -np.inf  # every member -inf, finite truth
    obs[2, 2] = np.inf  # infinite truth, finite members
    obs[2, 3] = -np.inf
    ens[2, :, 3] = -np.inf  # truth and members the same infinity: the CDFs agree, CRPS 0
    crps = crps_ensemble(obs, ens, fair=fair).values
    assert crps[0, 0] == np.inf and crps[1, 1] == np.inf and crps[2, 2] == np.inf
    assert crps[2, 3] == 0.0
    finite = np.isfinite(obs.values) & np.isfinite(ens.values).all(axis=1)
    clean = {"posinf": 0.0, "neginf": 0.0}  # properscoring only on the finite points
    reference = ps.crps_ensemble(
        np.nan_to_num(obs.values, **clean), np.nan_to_num(np.moveaxis(ens.values, 1, -1), **clean)
    )
    if fair:  # scoringrules' fair estimator, on the finite points
        reference = sr.crps_ensemble(
            np.nan_to_num(obs.values, **clean), np.nan_to_num(ens.values, **clean), m_axis=1, estimator="fair"
        )
    np.testing.assert_allclose(crps[finite], reference[finite], rtol=1e-6)
    # the per-point path is taken for the whole 256-point block: neighbours keep their values
    assert np.isfinite(crps[finite]).all()


def test_pit_bins_must_be_positive(rng, tmp_path, capsys):
    obs, ens = _pair(rng)
    with pytest.raises(ForecastError, match="bins >= 1"):
        pit_histogram(obs, ens, bins=0)
    path = tmp_path / "fc.nc"
    synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=4).to_netcdf(path)
    assert main(["score", str(path), "--out", str(tmp_path / "s.nc"), "--pit-bins", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bins" in err and "Traceback" not in err
    assert not (tmp_path / "s.nc").exists()


def test_score_ratio_and_skill_score_are_one_definition():
    a = xr.DataArray([1.0, 2.0], dims="lead_time", coords={"lead_time": [1, 2]})
    b = xr.DataArray([2.0, 8.0], dims="lead_time", coords={"lead_time": [1, 2]})
    np.testing.assert_allclose(score_ratio(a, b).values, [0.5, 0.25])
    np.testing.assert_allclose(skill_score(a, b).values, [0.5, 0.75])
    with pytest.raises(ForecastError, match="coordinates differ"):
        score_ratio(a, b.assign_coords(lead_time=[2, 3]))


def test_ratios_to_a_zero_reference_are_nan_without_a_warning():
    import warnings

    from forecast.metrics.calibration import spread_skill_ratio

    a = xr.DataArray([1.0, 0.0], dims="lead_time", coords={"lead_time": [1, 2]})
    zero = xr.DataArray([0.0, 0.0], dims="lead_time", coords={"lead_time": [1, 2]})
    obs = xr.DataArray(np.zeros((2, 3)), dims=("lead_time", "x"))
    ens = xr.DataArray(np.zeros((2, 3, 4)), dims=("lead_time", "x", "member"))
    ens[1, :, :2], ens[1, :, 2:] = 1.0, -1.0  # lead 2: the mean is right, the members spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "divide by zero" / "invalid value" would raise here
        assert np.isnan(score_ratio(a, zero).values).all()  # 1/0 and 0/0: undefined, not inf
        assert np.isnan(spread_skill_ratio(obs, ens, dim="x").values).all()  # RMSE 0 at both leads


def test_registry_builds_every_applicable_score_and_no_pseudo_variables():
    ds = synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=4)
    scores = build_scores(ds, reference=ds)
    per_variable = [m.key for m in METRICS if m.needs in (None, "reference")]
    assert [n for n in scores.data_vars if str(n).endswith("_u")] == [f"{k}_u" for k in per_variable]
    assert not [n for n in scores.data_vars if str(n).startswith("_")]
    assert score_variables(scores) == ["u", "v"]
    assert "crps_oracle_mean_u" not in scores  # truth scores need a truth ensemble


def test_plot_indices_out_of_range_give_one_line(tmp_path, capsys):
    fc = tmp_path / "fc.nc"
    synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=4).to_netcdf(fc)
    assert main(["score", str(fc), "--out", str(tmp_path / "s.nc"), "--quiet"]) == 0
    capsys.readouterr()
    for args in (
        [str(tmp_path / "s.nc"), "--lead-index", "99"],
        [str(tmp_path / "s.nc"), "--lead-index", "-3"],
        [str(fc), "--init", "5"],
    ):
        assert main(["plot", *args, "--out", str(tmp_path / "figures")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "out of range" in err and "Traceback" not in err
    assert not (tmp_path / "figures").exists()  # nothing made before the inputs were checked
