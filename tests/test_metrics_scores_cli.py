"""The scores Dataset, streaming from a chunked file, and the `forecast score` / `forecast plot` commands."""

import numpy as np
import properscoring as ps
import pytest
import xarray as xr

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.metrics import build_scores, open_forecast, persistence_reference, score_forecast
from forecast.metrics.synthetic import synthetic_forecast


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    calibrated = synthetic_forecast(n_init=6, n_member=8, n_lead=4, ny=12, nx=16, model_name="calibrated")
    narrow = synthetic_forecast(
        n_init=6, n_member=8, n_lead=4, ny=12, nx=16, dispersion=0.3, model_name="narrow"
    )
    calibrated.to_netcdf(root / "a.nc")
    narrow.to_netcdf(root / "b.nc")
    return root, calibrated, narrow


def test_scores_follow_the_conventions(files):
    _, ds, _ = files
    scores = score_forecast(ds)
    for v in ("u", "v"):
        assert scores[f"crps_{v}"].dims == ("lead_time", "y", "x")
        for name in ("crps_mean", "rmse", "spread", "spread_skill"):
            assert scores[f"{name}_{v}"].dims == ("lead_time",)
        assert scores[f"rank_histogram_{v}"].dims == ("lead_time", "rank")
        assert scores[f"rank_histogram_{v}"].sizes["rank"] == 9
    assert scores.attrs["estimator"] == "ensemble" and scores.attrs["ensemble_size"] == 8
    assert scores.attrs["model_name"] == "calibrated"
    # crps_u is the init-mean of properscoring's CRPS
    reference = ps.crps_ensemble(ds["u_obs"].values, np.moveaxis(ds["u"].values, 1, -1)).mean(0)
    np.testing.assert_allclose(scores["crps_u"].values, reference, rtol=1e-6)
    np.testing.assert_allclose(scores["crps_mean_u"].values, reference.mean((1, 2)), rtol=1e-6)
    assert np.all(np.abs(scores["spread_skill_u"] - 1) < 0.15)
    assert {"ke_spectrum", "ke_spectrum_obs", "divergence_rms", "divergence_rms_obs"} <= set(scores.data_vars)
    assert scores["ke_spectrum"].dims == ("lead_time", "wavenumber")


def test_channel_variables_are_averaged_over_channel():
    ds = synthetic_forecast(n_init=2, n_member=4, n_lead=2, ny=6, nx=6, variables=("frames",), n_channel=3)
    scores = score_forecast(ds, fair=True)
    assert scores["crps_frames"].dims == ("lead_time", "y", "x")
    assert scores.attrs["estimator"] == "fair" and "ke_spectrum" not in scores


def test_chunked_file_is_lazy_and_gives_the_same_numbers(files):
    root, ds, _ = files
    chunked = open_forecast(root / "a.nc", chunks={"init": 1})
    lazy = build_scores(chunked)
    assert lazy["crps_u"].chunks is not None and lazy["rank_histogram_u"].chunks is not None
    streamed = score_forecast(chunked)
    xr.testing.assert_allclose(streamed, score_forecast(ds), rtol=1e-10)


def test_reference_skill(files):
    _, calibrated, narrow = files
    scores = score_forecast(narrow, reference=calibrated)
    expected = 1 - scores["crps_mean_u"] / scores["crps_reference_mean_u"]
    np.testing.assert_allclose(scores["crps_skill_u"].values, expected.values)
    np.testing.assert_allclose(
        scores["crps_reference_mean_u"].values, score_forecast(calibrated)["crps_mean_u"].values, rtol=1e-10
    )
    assert np.all(scores["crps_skill_u"] < 0)  # the under-dispersive ensemble is worse
    with pytest.raises(ForecastError, match="different truth"):
        score_forecast(
            narrow, reference=synthetic_forecast(n_init=6, n_member=8, n_lead=4, ny=12, nx=16, seed=9)
        )
    with pytest.raises(ForecastError, match="reference"):
        score_forecast(narrow, reference=calibrated.isel(x=slice(0, 8)))


def test_persistence_reference(files, tmp_path):
    root, ds, _ = files
    assert (
        main(
            [
                "score",
                str(root / "a.nc"),
                "--out",
                str(tmp_path / "p.nc"),
                "--reference",
                "persistence",
                "--quiet",
            ]
        )
        == 0
    )
    scores = xr.open_dataset(tmp_path / "p.nc")
    assert scores.attrs["reference_model_name"] == "persistence"
    last = ds["u_context"].isel(context_time=-1)
    mae = abs(ds["u_obs"] - last).mean(["init", "y", "x"])  # CRPS of a one-member forecast is its MAE
    np.testing.assert_allclose(scores["crps_reference_mean_u"].values, mae.values, rtol=1e-10)
    with pytest.raises(ForecastError, match="context"):
        persistence_reference(ds.drop_vars(["u_context", "v_context"]))


def test_nans_need_skipna(files):
    _, ds, _ = files
    broken = ds.copy(deep=True)
    broken["u"][0, 0, 0, 0, 0] = np.nan  # init 0, member 0, lead 0, y 0, x 0
    with pytest.raises(ForecastError, match="skipna"):
        score_forecast(broken)
    scores, clean = score_forecast(broken, skipna=True), score_forecast(ds)
    assert np.isfinite(scores["crps_mean_u"]).all()
    # the point with a missing member is scored over the seven members it has (properscoring, which drops NaN)
    members = ds["u"].values[:, :, 0, 0, 0]
    by_init = ps.crps_ensemble(ds["u_obs"].values[:, 0, 0, 0], members)
    by_init[0] = ps.crps_ensemble(ds["u_obs"].values[0, 0, 0, 0], members[0, 1:])
    assert scores["crps_u"].values[0, 0, 0] == pytest.approx(by_init.mean(), rel=1e-6)
    assert scores["crps_u"].values[0, 0, 0] != pytest.approx(clean["crps_u"].values[0, 0, 0], rel=1e-6)
    # every other point and lead is untouched, and only that point goes unranked (a rank needs all m members)
    changed = np.zeros(scores["crps_u"].shape, bool)
    changed[0, 0, 0] = True
    np.testing.assert_allclose(scores["crps_u"].values[~changed], clean["crps_u"].values[~changed], rtol=1e-6)
    np.testing.assert_allclose(scores["crps_mean_u"].values[1:], clean["crps_mean_u"].values[1:], rtol=1e-6)
    xr.testing.assert_equal(scores["crps_v"], clean["crps_v"])
    points = ds.sizes["init"] * ds.sizes["y"] * ds.sizes["x"]
    ranked = scores["rank_histogram_u"].sum("rank").values
    np.testing.assert_array_equal(ranked, [points - 1] + [points] * (ds.sizes["lead_time"] - 1))


def test_cli_score_then_plot(files, tmp_path, capsys):
    root, _, _ = files
    assert main(["score", str(root / "a.nc"), "--out", str(tmp_path / "sa.nc"), "--quiet"]) == 0
    assert (
        main(
            [
                "score",
                str(root / "b.nc"),
                "--out",
                str(tmp_path / "sb.nc"),
                "--fair",
                "--quiet",
                "--reference",
                str(root / "a.nc"),
            ]
        )
        == 0
    )
    scores = xr.open_dataset(tmp_path / "sb.nc")
    assert scores.attrs["estimator"] == "fair" and "crps_skill_u" in scores
    assert not list(tmp_path.glob(".*partial*"))
    out = tmp_path / "figs"
    assert (
        main(
            [
                "plot",
                str(tmp_path / "sa.nc"),
                str(tmp_path / "sb.nc"),
                str(root / "a.nc"),
                "--out",
                str(out),
                "--variables",
                "u",
                "--dpi",
                "40",
            ]
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    for expected in (
        "crps_lead_time_u.png",
        "crps_map_u.png",
        "spread_skill_u.png",
        "rank_histogram_u_narrow.png",
        "ke_spectrum.png",
        "samples_u_calibrated.png",
        "rollout_u_calibrated.gif",
    ):
        assert expected in names
    assert all((out / n).stat().st_size > 1000 for n in names)
    assert not any("_v" in n for n in names)  # --variables u
    assert not any(n.startswith("truth_") for n in names)  # scored without --truth: no truth figures


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_bad_input(files, tmp_path, capsys):
    root, ds, _ = files
    out = str(tmp_path / "s.nc")
    assert main(["score", str(tmp_path / "missing.nc"), "--out", out]) == 2
    assert "no such file" in _error_line(capsys)
    (tmp_path / "junk.nc").write_text("not netcdf")
    assert main(["score", str(tmp_path / "junk.nc"), "--out", out]) == 2
    assert "not a readable netCDF" in _error_line(capsys)
    xr.Dataset({"u": ds["u_obs"]}).to_netcdf(tmp_path / "plain.nc")
    assert main(["score", str(tmp_path / "plain.nc"), "--out", out]) == 2
    assert "not a forecast file" in _error_line(capsys)
    ds.rename(member="sample").to_netcdf(tmp_path / "nomember.nc")
    assert main(["score", str(tmp_path / "nomember.nc"), "--out", out]) == 2
    assert "'member'" in _error_line(capsys)
    broken = ds.copy(deep=True)
    broken["v_obs"][1, 1, 1, 1] = np.nan
    broken.to_netcdf(tmp_path / "nan.nc")
    assert main(["score", str(tmp_path / "nan.nc"), "--out", out, "--quiet"]) == 2
    assert "--skipna" in _error_line(capsys)
    ds.isel(lead_time=slice(0, 2)).to_netcdf(tmp_path / "short.nc")
    assert main(["score", str(root / "a.nc"), "--out", out, "--reference", str(tmp_path / "short.nc")]) == 2
    assert "reference" in _error_line(capsys)
    assert main(["plot", str(tmp_path / "plain.nc"), "--out", str(tmp_path / "f")]) == 2
    assert "not a forecast file" in _error_line(capsys)
    assert not (tmp_path / "s.nc").exists()


def test_cli_score_perceptual_adds_psnr_and_ssim(tmp_path):
    from forecast.metrics.perceptual import psnr

    video = synthetic_forecast(
        n_init=2, n_member=3, n_lead=2, ny=16, nx=16, variables=("frames",), n_channel=3
    )
    video = (video * 60 + 128).clip(0, 255)
    path = tmp_path / "video.nc"
    video.to_netcdf(path)
    out = tmp_path / "scores.nc"
    assert main(["score", str(path), "--out", str(out), "--perceptual", "psnr", "ssim", "--quiet"]) == 0
    scores = xr.open_dataset(out)
    assert scores["psnr_frames"].dims == ("lead_time",) and scores["ssim_frames"].dims == ("lead_time",)
    assert "crps_frames" in scores and scores.attrs["perceptual_metrics"] == "psnr ssim"
    expected = psnr(video["frames"], video["frames_obs"], data_range=255.0).mean(["init", "member"])
    np.testing.assert_allclose(scores["psnr_frames"].values, expected.values, rtol=1e-6)
    assert "lpips_frames" not in scores


def test_one_member_forecast_is_scored_as_a_point_forecast():
    point = synthetic_forecast(n_init=3, n_member=1, n_lead=2, ny=5, nx=6)
    scores = score_forecast(point)
    error = abs(point["u"].isel(member=0) - point["u_obs"]).mean("init")
    np.testing.assert_allclose(scores["crps_u"].values, error.values, rtol=1e-12)  # CRPS of a point = |error|
    assert float(abs(scores["spread_u"]).max()) == 0.0 and float(abs(scores["spread_skill_u"]).max()) == 0.0
    assert scores["rank_histogram_u"].sizes["rank"] == 2
    with pytest.raises(ForecastError, match="fair CRPS needs >= 2"):
        score_forecast(point, fair=True)


def test_plot_tells_apart_files_of_the_same_model(files, tmp_path):
    from forecast.plots import plot_files

    root, calibrated, _ = files
    wider = calibrated.copy()
    wider["u"] = wider["u"] * 1.5  # another run of the same model
    wider.to_netcdf(tmp_path / "wider.nc")
    for name, path in (("run1", root / "a.nc"), ("run2", tmp_path / "wider.nc")):
        assert main(["score", str(path), "--out", str(tmp_path / f"{name}.nc"), "--quiet"]) == 0
    paths = [tmp_path / "run1.nc", tmp_path / "run2.nc"]
    written = {p.name for p in plot_files(paths, tmp_path / "auto", variables=["u"], dpi=40)}
    assert {"rank_histogram_u_calibrated_run1.png", "rank_histogram_u_calibrated_run2.png"} <= written
    written = plot_files(
        paths, tmp_path / "named", variables=["u"], dpi=40, labels=["RVD (2 + 6)", "RVD (2 + 3)"]
    )
    assert {"rank_histogram_u_RVD_2_6.png", "rank_histogram_u_RVD_2_3.png"} <= {p.name for p in written}
    with pytest.raises(ForecastError, match="one label per file"):
        plot_files(paths, tmp_path / "bad", labels=["one"])
