"""Spread calibration (forecast.spread_calibration): fitting, applying at rollout, the file, refusing the scored store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from forecast.errors import ForecastError
from forecast.metrics import crps_ensemble, spread_skill_ratio
from forecast.rollout import rollout
from forecast.spread_calibration import (
    CALIBRATION_FILE,
    SpreadCalibration,
    check_validation_store,
    fit_from_file,
    fit_spread,
)
from tests.test_rollout import RandomWalk, _dataset, _layout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import spread_levers  # noqa: E402


def _forecast(spreads=(0.5, 1.0, 2.0), members: int = 8, inits: int = 400, seed: int = 0) -> xr.Dataset:
    """Members N(c, s_lead^2) around a centre c; truth N(c, 1): calibrated where s = 1."""
    rng = np.random.default_rng(seed)
    spreads = np.asarray(spreads)
    leads, shape = len(spreads), (inits, 1, len(spreads), 3, 2)
    centre = rng.normal(size=shape)
    ens = centre + spreads[None, None, :, None, None] * rng.normal(size=(inits, members, leads, 3, 2))
    obs = centre[:, 0] + rng.normal(size=(inits, leads, 3, 2))
    dims = ("init", "member", "lead_time", "y", "x")
    return xr.Dataset(
        {"u": (dims, ens.astype("float32")), "u_obs": (dims[:1] + dims[2:], obs.astype("float32"))},
        coords={"lead_time": np.arange(1, leads + 1)},
        attrs={"source_store": "val.zarr", "model": "test"},
    )


def _ratio(ds: xr.Dataset) -> np.ndarray:
    return spread_skill_ratio(ds["u_obs"], ds["u"], dim=["init", "y", "x"]).values


def test_spread_skill_factors_make_the_ratio_one_at_every_lead_and_change_nothing_else():
    ds = _forecast()
    before = _ratio(ds)
    assert before[0] < 0.7 and before[2] > 1.5  # too narrow, then too wide
    calibration = fit_spread(ds, pooling="lead")
    np.testing.assert_allclose(calibration.factors["u"], 1 / before, rtol=1e-4)
    widened = calibration.apply_dataset(ds)
    np.testing.assert_allclose(_ratio(widened), 1.0, rtol=1e-4)
    # the ensemble mean and the truth are untouched
    np.testing.assert_allclose(widened["u"].mean("member"), ds["u"].mean("member"), atol=1e-5)
    np.testing.assert_array_equal(widened["u_obs"], ds["u_obs"])
    assert SpreadCalibration.of_attributes(widened.attrs) == calibration
    assert SpreadCalibration.of_attributes(ds.attrs) is None
    # pooled: one factor for every lead, the pooled ratio 1
    pooled = fit_spread(ds, pooling="all")
    assert len(set(pooled.factors["u"])) == 1
    assert fit_spread(ds).pooling == "all"  # the kept default: one factor for every lead
    assert fit_spread(_forecast(spreads=(1.0, 1.0, 1.0))).factors["u"] == pytest.approx([1, 1, 1], abs=0.05)


def fair_crps_optimum(s: float, m: int) -> float:
    """The k with the lowest expected fair CRPS for members N(c, s^2) widened about their mean and truth N(c, 1).

    X_i - y = (mean - y) + k (x_i - mean) has variance A + k^2 B (A = 1 + s^2/m, B = s^2 (m-1)/m) and
    X_i - X_j = k (x_i - x_j) variance 2 k^2 s^2; for Gaussians E|Z| = sqrt(2/pi) sd, so the fair CRPS is
    sqrt(2/pi) (sqrt(A + k^2 B) - k s / sqrt(2)), lowest where k^2 (B^2 - s^2 B / 2) = s^2 A / 2."""
    a, b = 1 + s * s / m, s * s * (m - 1) / m
    return float(np.sqrt(s * s * a / 2 / (b * b - s * s * b / 2)))


def test_fair_crps_factors_minimise_the_fair_crps_and_match_the_gaussian_closed_form():
    ds = _forecast(spreads=(0.5, 2.0), inits=600)
    fair = fit_spread(ds, method="fair_crps", pooling="lead")
    np.testing.assert_allclose(
        fair.factors["u"], [fair_crps_optimum(0.5, 8), fair_crps_optimum(2.0, 8)], rtol=0.05
    )
    # widened about a fixed mean, the members are no longer exchangeable draws: the fair CRPS asks for more
    # spread than a spread-skill ratio of 1 (1.92 and 0.57 here)
    assert all(f > k for f, k in zip(fair.factors["u"], fit_spread(ds, pooling="lead").factors["u"]))

    def mean_fair_crps(factors):
        calibration = SpreadCalibration({"u": tuple(factors)})
        return float(crps_ensemble(ds["u_obs"], calibration.apply_dataset(ds)["u"], fair=True).mean())

    best = mean_fair_crps(fair.factors["u"])
    for nudge in (0.9, 1.1):
        assert best < mean_fair_crps([k * nudge for k in fair.factors["u"]])
    assert best < mean_fair_crps([1.0, 1.0])


def test_fit_refuses_what_it_cannot_fit():
    ds = _forecast()
    with pytest.raises(ForecastError, match="already spread-calibrated"):
        fit_spread(fit_spread(ds).apply_dataset(ds))
    with pytest.raises(ForecastError, match="at least 2 members"):
        fit_spread(ds.isel(member=[0]))
    with pytest.raises(ForecastError, match="unknown spread calibration method"):
        fit_spread(ds, method="magic")
    nan = ds.copy()
    nan["u"] = nan["u"].where(nan["init"] != 3)
    with pytest.raises(ForecastError, match="NaN"):
        fit_spread(nan)


def test_the_file_round_trips_and_bad_files_are_one_line(tmp_path):
    calibration = fit_spread(_forecast(), fitted_on={"note": "validation store"})
    path = calibration.save(tmp_path / CALIBRATION_FILE)
    loaded = SpreadCalibration.load(tmp_path)  # a run directory: the file beside its checkpoints
    assert loaded == calibration and loaded.fitted_on["note"] == "validation store"
    assert loaded.fitted_on["source_store"] == "val.zarr" and loaded.fitted_on["members"] == 8
    path.write_text("{not json")
    with pytest.raises(ForecastError, match="not valid JSON"):
        SpreadCalibration.load(path)
    path.write_text(json.dumps({"factors": {"u": [1.0]}}))
    with pytest.raises(ForecastError, match="is not a spread calibration"):
        SpreadCalibration.load(path)
    with pytest.raises(ForecastError, match="no spread calibration at"):
        SpreadCalibration.load(tmp_path / "missing.json")
    with pytest.raises(ForecastError, match="positive numbers"):
        SpreadCalibration({"u": (1.0, -2.0)})
    with pytest.raises(ForecastError, match="fitted for 3 leads; this forecast has 4"):
        calibration.lead_factors("u", 4)
    with pytest.raises(ForecastError, match="no factors for 'v'"):
        calibration.lead_factors("v", 2)


def test_rollout_applies_the_calibration_exactly_as_post_processing_and_nothing_when_off(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    options = dict(members=6, context=2, horizon=4, inits=3, seed=5)
    raw = xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / "raw.nc", **options))
    again = xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / "again.nc", **options))
    assert "spread_calibration" not in raw.attrs
    np.testing.assert_array_equal(raw["u"], again["u"])  # off: the same file as before the option existed
    calibration = SpreadCalibration({"u": (2.0, 0.5, 1.0, 3.0)})
    fc = xr.open_dataset(
        rollout(RandomWalk(), layout, ds, tmp_path / "cal.nc", spread_calibration=calibration, **options)
    )
    assert SpreadCalibration.of_attributes(fc.attrs) == calibration
    # the members are widened about their mean, not fed back: exactly the raw file post-processed
    np.testing.assert_allclose(fc["u"], calibration.apply_dataset(raw)["u"], rtol=1e-5, atol=1e-4)
    spread = fc["u"].std("member").mean(["init", "y", "x"]) / raw["u"].std("member").mean(["init", "y", "x"])
    np.testing.assert_allclose(spread, [2.0, 0.5, 1.0, 3.0], rtol=1e-4)
    with pytest.raises(ForecastError, match="every member in one batch"):
        rollout(RandomWalk(), layout, ds, tmp_path / "x.nc", spread_calibration=calibration, batch_size=4,
                **options)  # fmt: skip
    with pytest.raises(ForecastError, match="fitted for 4 leads; this forecast has 5"):
        rollout(RandomWalk(), layout, ds, tmp_path / "x.nc", spread_calibration=calibration,
                **{**options, "horizon": 5})  # fmt: skip


def _store(path, noise_seed: int) -> str:
    group = zarr.open_group(str(path), mode="w")
    group.attrs["karman_config"] = json.dumps({"noise_seed": noise_seed, "reynolds": [150.0]})
    return str(path)


def test_fitting_refuses_the_scored_store_and_its_copies(tmp_path):
    scored = _store(tmp_path / "bench.zarr", noise_seed=0)
    copy = _store(tmp_path / "copy.zarr", noise_seed=0)
    validation = _store(tmp_path / "val.zarr", noise_seed=1)
    check_validation_store(validation, scored)  # another noise seed: a validation store
    with pytest.raises(ForecastError, match="it is the scored store"):
        check_validation_store(scored, tmp_path / "." / "bench.zarr")
    with pytest.raises(ForecastError, match="the scored store's configuration and noise seed"):
        check_validation_store(copy, scored)
    forecast = _forecast()
    forecast.attrs["source_store"] = scored
    forecast.to_netcdf(tmp_path / "bench.nc")
    with pytest.raises(ForecastError, match="it is the scored store"):
        fit_from_file(tmp_path / "bench.nc", scored)
    forecast.attrs["source_store"] = validation
    forecast.to_netcdf(tmp_path / "val.nc")
    fitted = fit_from_file(tmp_path / "val.nc", scored)
    assert fitted.fitted_on["source_store"] == validation
    assert fitted.fitted_on["forecast_file"] == str(tmp_path / "val.nc")


def test_spread_levers_cross_validate_over_starts_and_score_as_the_table():
    forecast = _forecast(spreads=(0.6, 0.7, 0.8), inits=160)
    oracle = _forecast(spreads=(1.0, 1.0, 1.0), inits=160, seed=1)  # any ensemble of the same layout
    raw = spread_levers.lead_scores(forecast, oracle)
    np.testing.assert_allclose(raw["spread_skill"], _ratio(forecast), rtol=1e-5)  # the table's definition
    summary, per_lead = spread_levers.measure(forecast, oracle)
    by_name = {row["variant"]: row for row in summary}
    assert list(by_name) == [spread_levers.variant_name(v) for v in spread_levers.VARIANTS]
    assert by_name["uncalibrated"]["leads_in_0.9_1.1"] == 0
    per_lead_fit, pooled = by_name["spread_skill, per lead"], by_name["spread_skill, per all"]
    # factors fitted on the other half of the starts: close to, not exactly, 1
    assert per_lead_fit["leads_in_0.9_1.1"] == 3 and " / " in per_lead_fit["factors_halves"]
    assert 0.95 < per_lead_fit["spread_skill_min"] <= per_lead_fit["spread_skill_max"] < 1.05
    # one factor for every lead cannot mend a spread error that changes with lead (0.6 to 0.8 here)
    assert pooled["spread_skill_min"] < 0.95 and pooled["spread_skill_max"] > 1.05
    assert (
        by_name["spread_skill, per lead"]["crps_oracle_ratio"] < by_name["uncalibrated"]["crps_oracle_ratio"]
    )
    assert len(per_lead) == len(spread_levers.VARIANTS) * 3


def test_spread_levers_find_the_validation_store_of_either_flow(tmp_path):
    validation = tmp_path / "val"
    store = validation / "data" / "kolmogorov.zarr"
    store.mkdir(parents=True)
    forecast = xr.Dataset(attrs={"source_store": str(store)})
    assert spread_levers.validation_store(validation, forecast) == store
    # a recorded path that does not resolve from here (a relative one, another machine): the run's one store
    moved = xr.Dataset(attrs={"source_store": "elsewhere/data/kolmogorov.zarr"})
    assert spread_levers.validation_store(validation, moved) == store
    (validation / "data" / "karman.zarr").mkdir()
    with pytest.raises(ForecastError, match="cannot tell the store"):
        spread_levers.validation_store(validation, moved)


def test_spread_levers_refuse_a_calibrated_forecast_before_making_its_oracle(tmp_path):
    from forecast.spread_calibration import ATTRIBUTE

    forecasts = tmp_path / "val" / "forecasts"
    forecasts.mkdir(parents=True)
    forecast = _forecast(spreads=(1.0, 1.0), inits=4)
    forecast.attrs[ATTRIBUTE] = SpreadCalibration({"u": (1.5, 1.5)}).to_json()
    forecast.to_netcdf(forecasts / "RVD.nc")
    with pytest.raises(ForecastError, match="spread-calibrated already"):
        spread_levers.open_validation(tmp_path / "val", "RVD")
    assert not (forecasts / "Oracle.nc").exists()


def test_cli_rollout_applies_a_spread_calibration_file(tmp_path, capsys, monkeypatch):
    import types

    from forecast.cli import main
    from tests.test_rollout import FakeRun, _write_store

    module = types.ModuleType("forecast.training")
    module.load_run = lambda run_dir, device="cpu", ema=True: FakeRun(RandomWalk(), _layout(_dataset()))
    monkeypatch.setitem(sys.modules, "forecast.training", module)
    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    calibration = SpreadCalibration({"u": (2.0, 2.0, 2.0)}).save(tmp_path / "run" / CALIBRATION_FILE)
    (tmp_path / "run" / "checkpoints").mkdir()  # what a run directory looks like (the run itself is faked)
    (tmp_path / "run" / "config.yaml").write_text("model: {}\n")
    args = [
        "rollout",
        str(tmp_path / "run"),
        str(store),
        "--members",
        "4",
        "--context",
        "2",
        "--horizon",
        "3",
    ]
    args += ["--inits", "2", "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "raw.nc")]) == 0
    assert main([*args, "--out", str(tmp_path / "run.nc"), "--spread-calibration", "run"]) == 0
    assert main([*args, "--out", str(tmp_path / "file.nc"), "--spread-calibration", str(calibration)]) == 0
    raw = xr.open_dataset(tmp_path / "raw.nc")
    for name in ("run.nc", "file.nc"):
        with xr.open_dataset(tmp_path / name) as fc:
            assert (
                fc.attrs["spread_calibration_file"] == str(calibration)
                and "--spread-calibration" in fc.attrs["history"]
            )
            np.testing.assert_allclose(fc["u"].std("member"), 2 * raw["u"].std("member"), rtol=1e-4)
    missing = [*args, "--out", str(tmp_path / "x.nc"), "--spread-calibration", str(tmp_path / "none.json")]
    assert main(missing) == 2
    assert "no spread calibration at" in capsys.readouterr().err
