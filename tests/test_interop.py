"""Forecast files in the verification libraries: cf_xarray finds their axes, climpred verifies them.

climpred's ensembles load the CF standard-name table on first use (a download, through pooch); the test seeds
pooch's cache with the table the CF checker uses (tests/cf_check.py: the compliance-checker wheel's), the way
docs/guide/interop.md tells offline users to (``forecast.interop.seed_cf_standard_name_table``), and blocks
the network for the climpred calls, so a download attempt fails the test.
"""

import socket
import warnings

import numpy as np
import pytest
import xarray as xr
from test_rollout import RandomWalk, _dataset, _karman_like, _layout

from forecast.errors import ForecastError
from forecast.forecast_file import open_forecast
from forecast.interop import climpred_observations, for_climpred, seed_cf_standard_name_table
from forecast.metrics import crps_ensemble, score_forecast
from forecast.metrics.synthetic import synthetic_forecast, synthetic_truth
from forecast.rollout import Init, rollout


@pytest.fixture(scope="module")
def frame_forecast(tmp_path_factory):
    """A forecast file of a frame-count store (time = frame index, like the simulator's), starts in one sequence."""
    ds = _karman_like(_dataset())
    out = tmp_path_factory.mktemp("fc") / "fc.nc"
    inits = [Init(0, 0), Init(0, 3), Init(0, 5)]
    return rollout(RandomWalk(), _layout(ds), ds, out, members=4, context=2, horizon=4, inits=inits)


def test_cf_xarray_finds_the_member_reference_time_and_lead_axes(frame_forecast, tmp_path):
    pytest.importorskip("cf_xarray")
    for path in (frame_forecast, rollout(RandomWalk(), _layout(_dataset()), _dataset(), tmp_path / "s.nc",
                                         members=2, context=2, horizon=3, inits=2)):  # fmt: skip
        fc = open_forecast(path)
        names = fc.cf.standard_names
        assert names["realization"] == ["member"]
        assert names["forecast_period"] == ["lead_time"]
        assert names["forecast_reference_time"] == ["forecast_reference_time"]
        assert fc.cf["realization"].name == "member" and fc.cf["forecast_period"].name == "lead_time"
        assert fc.cf["u"].cf["forecast_reference_time"].dims == ("init",)
    # a store in seconds keeps its units; a frame count has none (no UDUNITS unit for a frame)
    assert open_forecast(path)["lead_time"].attrs["units"] == "s"
    assert "units" not in open_forecast(frame_forecast)["lead_time"].attrs


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def climpred(monkeypatch, tmp_path):
    climpred = pytest.importorskip("climpred")
    from cf_check import standard_name_table

    table = (
        standard_name_table()
    )  # the cached table (or the compliance-checker wheel's), before going offline
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty pooch cache
    _no_network(monkeypatch)
    seeded = seed_cf_standard_name_table(table)
    assert seeded.is_relative_to(tmp_path / "cache")
    return climpred


def test_seeding_is_what_makes_climpred_work_offline(monkeypatch, tmp_path):
    climpred = pytest.importorskip("climpred")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _no_network(monkeypatch)
    truth = for_climpred(synthetic_truth(synthetic_forecast(n_init=2, n_member=2, n_lead=2, ny=4, nx=4)))
    with climpred.set_options(warn_for_init_coords_int_to_annual=False):
        with pytest.raises(Exception, match="network access in a test|Connection|connect"):
            climpred.PerfectModelEnsemble(truth)  # an empty cache: climpred tries to download the table
    with pytest.raises(ForecastError, match="no CF standard-name table"):
        seed_cf_standard_name_table(tmp_path / "missing.xml")


def test_the_truth_group_is_a_perfect_model_ensemble_with_our_crps(climpred):
    forecast = synthetic_forecast(n_init=3, n_member=4, n_lead=3, ny=4, nx=5, variables=("u",))
    truth = synthetic_truth(forecast, n_member=6)
    with climpred.set_options(warn_for_init_coords_int_to_annual=False), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # climpred's notes on the conversions it makes
        ensemble = climpred.PerfectModelEnsemble(for_climpred(truth))
        skill = ensemble.verify(metric="crps", comparison="m2c", dim=["init", "member"])
    # m2c: member 0 is the control (verified), the others the forecast
    ours = crps_ensemble(truth["u"].isel(member=0), truth["u"].isel(member=slice(1, None)), "member")
    ours = ours.mean("init").rename(lead_time="lead")
    assert skill["u"].dims == ("lead", "y", "x")
    np.testing.assert_allclose(skill["u"].values, ours.values, rtol=1e-12, atol=1e-14)
    assert float(ours.mean()) > 0.01


def test_a_forecast_file_is_a_hindcast_ensemble_with_our_crps(climpred, frame_forecast):
    fc = open_forecast(frame_forecast)
    observations = climpred_observations(fc)
    assert observations["u"].dims == ("time", "y", "x") and observations.sizes["time"] == len(
        np.unique(fc["valid_time"].values)
    )
    with climpred.set_options(warn_for_init_coords_int_to_annual=False), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        hindcast = climpred.HindcastEnsemble(for_climpred(fc[["u"]])).add_observations(observations)
        skill = hindcast.verify(
            metric="crps", comparison="m2o", dim=["init", "member"], alignment="same_inits"
        )
    ours = score_forecast(fc)["crps_u"].rename(lead_time="lead")  # averaged over the inits
    np.testing.assert_allclose(skill["u"].transpose(*ours.dims).values, ours.values, rtol=1e-6)
    assert float(ours.mean()) > 0.01


def test_observations_need_one_sequence(tmp_path):
    ds = _karman_like(_dataset())
    out = rollout(RandomWalk(), _layout(ds), ds, tmp_path / "two.nc", members=2, context=2, horizon=3,
                  inits=[Init(0, 0), Init(1, 0)])  # fmt: skip
    with pytest.raises(ForecastError, match="several sequences"):
        climpred_observations(xr.open_dataset(out))


def test_xskillscore_gives_our_crps():
    xs = pytest.importorskip("xskillscore")
    fc = synthetic_forecast(n_init=3, n_member=5, n_lead=2, ny=4, nx=4, variables=("u",))
    theirs = xs.crps_ensemble(fc["u_obs"], fc["u"], member_dim="member", dim=[])
    ours = crps_ensemble(fc["u_obs"], fc["u"], "member")
    np.testing.assert_allclose(ours.transpose(*theirs.dims).values, theirs.values, rtol=1e-12, atol=1e-14)
    assert float(ours.mean()) > 0.01
