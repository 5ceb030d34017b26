"""The scores-file reader beside its writer: ``forecast.open_scores`` and the naming rule it owns."""

import numpy as np
import pytest

import forecast
from forecast.errors import ForecastError
from forecast.metrics import score_forecast
from forecast.metrics.synthetic import synthetic_forecast
from forecast.scores_file import Scores, open_scores, score_name


@pytest.fixture(scope="module")
def scores_path(tmp_path_factory):
    # "u" and "vel_u": one variable's name ends the other's, so the reader must not take u's scores for vel_u's
    ds = synthetic_forecast(n_init=2, n_member=4, n_lead=3, ny=8, nx=8, variables=("u", "vel_u"))
    path = tmp_path_factory.mktemp("scores") / "s.nc"
    score_forecast(ds).to_netcdf(path)
    return path


def test_open_scores_reaches_each_variables_scores_by_name(scores_path):
    import xarray as xr

    assert forecast.open_scores is open_scores  # the public API
    raw = xr.open_dataset(scores_path)
    with open_scores(scores_path) as scores:
        assert scores.variables == ["u", "vel_u"] and "u" in scores and "w" not in scores
        u, vel_u = scores["u"], scores["vel_u"]
        np.testing.assert_array_equal(u["crps_mean"].values, raw["crps_mean_u"].values)
        np.testing.assert_array_equal(vel_u["crps_mean"].values, raw["crps_mean_vel_u"].values)
        assert not np.array_equal(u["crps_mean"].values, vel_u["crps_mean"].values)
        # every per-variable score, under its metric key, and nothing of the other variable
        assert set(u.data_vars) == set(vel_u.data_vars)
        assert {"crps", "crps_mean", "rmse", "spread", "spread_skill", "rank_histogram"} <= set(u.data_vars)
        assert u["crps"].dims == ("lead_time", "y", "x") and u.attrs["variable"] == "u"
        assert scores.get("u", "crps_oracle_mean") is None  # scored without a truth ensemble
        assert float(scores.get("u", "rmse").mean()) == float(raw[score_name("rmse", "u")].mean())
        with pytest.raises(KeyError, match="no scores of 'w'"):
            scores["w"]
    raw.close()


def test_scores_wraps_a_scores_dataset_in_memory():
    scores = Scores(score_forecast(synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=4)))
    assert scores.variables == ["u", "v"]
    assert scores["v"]["spread_skill"].dims == ("lead_time",)
    assert "ke_spectrum" in scores.dataset and "ke_spectrum" not in scores["u"]  # the velocity pair's own


def test_open_scores_refuses_what_is_not_a_scores_file(tmp_path):
    with pytest.raises(ForecastError, match="no scores file"):
        open_scores(tmp_path / "missing.nc")
    fc = tmp_path / "fc.nc"
    synthetic_forecast(n_init=1, n_member=2, n_lead=2, ny=4, nx=4).to_netcdf(fc)
    with pytest.raises(ForecastError, match="is a forecast file, not a scores file"):
        open_scores(fc)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ForecastError, match="not a scores file"):
        open_scores(text)
