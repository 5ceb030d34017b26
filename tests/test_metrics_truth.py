"""Scores against a known answer (truth ensembles): energy distance, oracle CRPS, spread ratio, truth ranks.

Independent references: brute-force pairwise differences, closed forms for Gaussians (the energy distance of
two normals, the expected CRPS sigma / sqrt(pi) of a normal against its own draws), and synthetic ensembles
drawn from the truth's own distribution, which must score a ratio of ~1 and a flat truth rank histogram.
"""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.stats import chi2, norm

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.metrics import energy_distance, match_truth, open_forecast, open_truth, score_forecast
from forecast.metrics.scores import build_scores
from forecast.metrics.synthetic import synthetic_forecast, synthetic_truth


def _normal_energy_distance(mu1, s1, mu2, s2):
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| for X ~ N(mu1, s1^2), Y ~ N(mu2, s2^2)."""
    s, delta = np.hypot(s1, s2), mu2 - mu1
    cross = s * np.sqrt(2 / np.pi) * np.exp(-(delta**2) / (2 * s**2)) + delta * (1 - 2 * norm.cdf(-delta / s))
    return 2 * cross - 2 * s1 / np.sqrt(np.pi) - 2 * s2 / np.sqrt(np.pi)


def _pairwise(x):
    m = x.shape[-1]
    return np.abs(x[..., :, None] - x[..., None, :]).sum((-1, -2)) / (m * (m - 1)) if m > 1 else 0 * x[..., 0]


@pytest.mark.parametrize("m, k", [(1, 4), (2, 2), (5, 16), (40, 7)])
def test_energy_distance_matches_brute_force(rng, m, k):
    a, b = rng.normal(size=(6, 7, m)), 2.0 + 3.0 * rng.normal(size=(6, 7, k))
    ours = energy_distance(
        xr.DataArray(a, dims=("y", "x", "member")),
        xr.DataArray(b, dims=("y", "x", "truth")),
        "member",
        "truth",
    )
    cross = np.abs(a[..., :, None] - b[..., None, :]).mean((-1, -2))
    np.testing.assert_allclose(ours.values, 2 * cross - _pairwise(a) - _pairwise(b), rtol=1e-10, atol=1e-12)
    assert ours.dims == ("y", "x")


@pytest.mark.parametrize("mu2, s2", [(0.0, 1.0), (0.5, 1.0), (0.0, 0.5), (1.0, 2.0)])
def test_energy_distance_of_normal_samples_matches_closed_form(rng, mu2, s2):
    n = 20_000  # points, each its own pair of samples: the mean over points converges to the closed form
    a = xr.DataArray(rng.normal(size=(n, 8)), dims=("point", "member"))
    b = xr.DataArray(mu2 + s2 * rng.normal(size=(n, 16)), dims=("point", "member"))
    d = energy_distance(a, b).values
    standard_error = d.std() / np.sqrt(n)
    assert abs(d.mean() - _normal_energy_distance(0.0, 1.0, mu2, s2)) < 4 * standard_error


def test_energy_distance_missing_and_infinite_values_and_errors(rng):
    a = xr.DataArray(rng.normal(size=(3, 4)), dims=("p", "member"))
    b = xr.DataArray(rng.normal(size=(3, 5)), dims=("p", "member"))
    a[0, 1], a[1, 0], b[2, :] = np.nan, np.inf, np.inf
    d = energy_distance(a, b).values
    assert np.isnan(d[0]) and d[1] == np.inf and d[2] == np.inf
    skipped = energy_distance(a, b, skipna=True).values[0]
    assert skipped == pytest.approx(float(energy_distance(a.isel(member=[0, 2, 3]), b).values[0]))
    with pytest.raises(ForecastError, match="dims differ"):
        energy_distance(a, b.rename(p="q"))
    with pytest.raises(ForecastError, match="no member dimension"):
        energy_distance(a, b, other_member_dim="truth")


def _case(dispersion=1.0, n_member=8, seed=0):
    fc = synthetic_forecast(
        n_init=8, n_member=n_member, n_lead=3, ny=16, nx=16, dispersion=dispersion, seed=seed
    )
    return fc, synthetic_truth(fc, n_member=16, seed=seed + 100)


def test_forecast_drawn_from_the_truth_distribution_matches_the_oracle():
    fc, truth = _case()
    scores = score_forecast(fc, fair=True, truth=truth)
    sigma = 0.1 * np.sqrt(fc["lead_time"].values)  # the synthetic truth's standard deviation per lead
    for v in ("u", "v"):
        # the fair CRPS of a normal ensemble against its own draws has expectation sigma / sqrt(pi)
        np.testing.assert_allclose(scores[f"crps_oracle_mean_{v}"].values, sigma / np.sqrt(np.pi), rtol=0.05)
        np.testing.assert_allclose(scores[f"crps_oracle_ratio_{v}"].values, 1.0, atol=0.06)
        np.testing.assert_allclose(scores[f"spread_ratio_truth_{v}"].values, 1.0, atol=0.05)
        np.testing.assert_allclose(scores[f"spread_skill_truth_{v}"].values, 1.0, atol=0.1)
        assert (abs(scores[f"energy_distance_{v}"].values) < 0.03 * sigma).all()  # ~3 standard errors
        hist = scores[f"rank_histogram_truth_{v}"]
        assert hist.dims == ("lead_time", "truth_rank") and hist.sizes["truth_rank"] == 17
        counts = hist.values  # flat: a chi-square test per lead at the 0.1 % level
        expected = counts.sum(1, keepdims=True) / counts.shape[1]
        assert (((counts - expected) ** 2 / expected).sum(1) < chi2.ppf(0.999, counts.shape[1] - 1)).all()
    assert scores.attrs["truth_ensemble_size"] == 16


def test_under_dispersive_forecast_against_the_truth():
    fc, truth = _case(dispersion=0.5)
    scores = score_forecast(fc, fair=True, truth=truth)
    sigma = 0.1 * np.sqrt(fc["lead_time"].values)
    np.testing.assert_allclose(scores["spread_ratio_truth_u"].values, 0.5, atol=0.03)
    expected = sigma * _normal_energy_distance(0.0, 0.5, 0.0, 1.0)
    np.testing.assert_allclose(scores["energy_distance_u"].values, expected, rtol=0.15)
    assert (scores["crps_oracle_ratio_u"] > 1.05).all()
    ratio = scores["crps_mean_u"] / scores["crps_oracle_mean_u"]
    np.testing.assert_allclose(scores["crps_oracle_ratio_u"].values, ratio.values)


def test_truth_is_matched_by_sequence_and_init_time_not_by_position():
    fc, truth = _case()
    reference = score_forecast(fc, truth=truth)
    extra = truth.isel(init=[0]).assign_coords(sequence=("init", [99]), init_time=("init", [0]), init=[8])
    shuffled = xr.concat([truth, extra], "init").isel(init=[8, 3, 1, 7, 0, 2, 6, 5, 4])
    shuffled = shuffled.assign_coords(init=np.arange(9))
    xr.testing.assert_allclose(score_forecast(fc, truth=shuffled), reference)
    matched = match_truth(fc, shuffled, ["u"])
    np.testing.assert_array_equal(matched["u"].values, truth["u"].transpose(*fc["u"].dims).values)
    with pytest.raises(
        ForecastError, match=r"1 of the forecast's 8 starts are not in the truth group: \(sequence 0"
    ):
        score_forecast(fc, truth=truth.isel(init=slice(1, None)))
    with pytest.raises(ForecastError, match="lead times"):
        score_forecast(fc, truth=truth.isel(lead_time=slice(0, 2)))
    with pytest.raises(ForecastError, match="lacks the forecast variables"):
        score_forecast(fc, truth=truth.drop_vars("v"))


def test_truth_scores_are_lazy_from_a_store_and_on_the_command_line(tmp_path, capsys):
    fc, truth = _case()
    fc.to_netcdf(tmp_path / "fc.nc")
    truth.to_zarr(tmp_path / "store.zarr", group="truth", consolidated=True, zarr_format=2)
    chunked = open_forecast(tmp_path / "fc.nc", chunks={"init": 1})
    lazy = build_scores(chunked, truth=open_truth(tmp_path / "store.zarr"))
    assert lazy["energy_distance_u"].chunks is not None and lazy["crps_oracle_mean_u"].chunks is not None
    in_memory = score_forecast(fc, truth=truth)
    xr.testing.assert_allclose(lazy.compute(), in_memory)
    out = tmp_path / "s.nc"
    args = ["score", str(tmp_path / "fc.nc"), "--truth", str(tmp_path / "store.zarr"), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert "--fair compares them without that bias" in capsys.readouterr().out  # 8 members against 16
    written = xr.open_dataset(out)
    assert written.attrs["truth_store"] == str(tmp_path / "store.zarr")
    xr.testing.assert_allclose(written["crps_oracle_ratio_v"], in_memory["crps_oracle_ratio_v"])
    truth.to_zarr(
        tmp_path / "old.zarr", group="truth", consolidated=False
    )  # a store without consolidated metadata
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error"
        )  # opens without the "failed to open with consolidated metadata" warning
        xr.testing.assert_identical(
            open_truth(tmp_path / "old.zarr").load(), open_truth(tmp_path / "store.zarr").load()
        )
    capsys.readouterr()
    xr.Dataset({"u": ("x", [1.0])}).to_zarr(tmp_path / "empty.zarr", group="test", consolidated=False)
    assert (
        main(
            [
                "score",
                str(tmp_path / "fc.nc"),
                "--truth",
                str(tmp_path / "empty.zarr"),
                "--out",
                str(tmp_path / "x.nc"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no readable 'truth' group" in err
    assert not (tmp_path / "x.nc").exists()


def test_plot_draws_the_truth_scores(tmp_path):
    from forecast.plots import plot_files

    fc, truth = _case(dispersion=0.5)
    score_forecast(fc, fair=True, truth=truth).to_netcdf(tmp_path / "s.nc")
    written = {p.name for p in plot_files([tmp_path / "s.nc"], tmp_path / "figures", variables=["u"], dpi=30)}
    assert {"truth_scores_u.png", "truth_rank_histogram_u.png"} <= written


def test_twelve_models_get_twelve_distinct_curves():
    # table 1 has 11 rows and the oracle; matplotlib's colours repeat after ten
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from forecast.plots.scores import plot_truth_scores

    fc, truth = _case(dispersion=0.5)
    scores = score_forecast(fc, fair=True, truth=truth)
    models = [scores.assign_attrs(model_name=f"model {k}") for k in range(12)]
    fig = plot_truth_scores(models, "u")
    curves = [line for line in fig.axes[1].get_lines() if line.get_label().startswith("model")]
    assert len({(to_rgba(line.get_color()), line.get_marker()) for line in curves}) == 12
    plt.close(fig)


@pytest.mark.slow
def test_scores_files_pass_the_cf_checker(tmp_path):
    from cf_check import assert_cf_valid
    from test_rollout import RandomWalk, _dataset, _karman_like, _layout

    from forecast.rollout import rollout

    fc, truth = _case()
    fc.to_netcdf(tmp_path / "synthetic.nc")
    truth.to_zarr(tmp_path / "store.zarr", group="truth", consolidated=True, zarr_format=2)
    args = ["--truth", str(tmp_path / "store.zarr"), "--reference", "persistence", "--fair", "--quiet"]
    assert main(["score", str(tmp_path / "synthetic.nc"), "--out", str(tmp_path / "s1.nc"), *args]) == 0
    assert_cf_valid(tmp_path / "s1.nc")
    ds = _karman_like(
        _dataset()
    )  # a rollout's forecast file of lattice quantities (u, v: physics scores too)
    path = rollout(RandomWalk(), _layout(ds), ds, tmp_path / "fc.nc", members=2, context=2, horizon=3)
    assert main(["score", str(path), "--out", str(tmp_path / "s2.nc"), "--quiet"]) == 0
    assert_cf_valid(tmp_path / "s2.nc")


def test_verifying_truth_is_checked_against_the_stores_test_frames(tmp_path, capsys):
    fc, truth = _case()
    fc = fc.assign_coords(
        valid_time=(("init", "lead_time"), fc["init_time"].values[:, None] + fc["lead_time"].values - 1)
    )
    test = xr.Dataset(
        {v: (("sequence", "time", "y", "x"), np.zeros((3, 30, 16, 16))) for v in ("u", "v")},
        coords={"sequence": np.arange(3), "time": np.arange(30)},
    )
    for i in range(fc.sizes["init"]):
        where = {"sequence": int(fc["sequence"][i]), "time": fc["valid_time"].values[i]}
        for v in ("u", "v"):
            test[v].loc[where] = fc[f"{v}_obs"].values[i]
    store = tmp_path / "store.zarr"
    test.to_zarr(store, group="test", consolidated=False)
    truth.to_zarr(store, group="truth", consolidated=False)
    fc.to_netcdf(tmp_path / "fc.nc")
    args = ["--truth", str(store), "--quiet"]
    assert main(["score", str(tmp_path / "fc.nc"), "--out", str(tmp_path / "s.nc"), *args]) == 0
    other = fc.copy(deep=True)
    other["v_obs"][2, 1, 3, 3] += 1.0  # a forecast made from another store with the same starts
    other.to_netcdf(tmp_path / "other.nc")
    capsys.readouterr()
    assert main(["score", str(tmp_path / "other.nc"), "--out", str(tmp_path / "o.nc"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "v_obs is not the store's test frames" in err
    late = fc.assign_coords(valid_time=fc["valid_time"] + 100)  # frames the test group does not have
    late.to_netcdf(tmp_path / "late.nc")
    assert main(["score", str(tmp_path / "late.nc"), "--out", str(tmp_path / "l.nc"), *args]) == 2
    assert "lacks the frames" in capsys.readouterr().err
