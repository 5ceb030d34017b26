"""experiments/calibration.py at the `smoke` scale: the whole chain against a truth ensemble (not the numbers)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import calibration  # noqa: E402
import calibration_tables  # noqa: E402
import paper_tables  # noqa: E402

from forecast.pipeline import ORACLE  # noqa: E402
from forecast.spread_calibration import SpreadCalibration  # noqa: E402


@pytest.mark.parametrize("row", calibration.ROWS + calibration.ABLATIONS, ids=lambda r: r.slug)
def test_every_row_config_builds_at_every_scale(row):
    """Each scale builds the row's model kind with the scale's window and seed; at cpu-small the networks are
    CPU_SMALL_WIDTH channels wide (twice the paper tables'), so bigger than the paper tables' build there; a
    smaller scale builds a smaller network; VD trains with RVD's calibrated diffusion settings."""
    from forecast.models import build_model
    from forecast.training.config import load_config, resolve_config

    kind = load_config(paper_tables.CONFIGS / f"{row.config}.yaml")["model"]["kind"]
    sizes = {}
    for scale in calibration.SCALES.values():
        config = resolve_config(calibration.row_config(row, scale))
        model = build_model(config, 3)
        assert model.name == kind
        assert config["training"]["seed"] == 0
        for key, value in {**calibration.DATA[scale.name], **row.data}.items():
            assert config["data"][key] == value
        sizes[scale.name] = sum(p.numel() for p in model.parameters())
        if (
            scale.name == "cpu-small" and row in calibration.ROWS[:3]
        ):  # RVD, VD, ConvGRU: the width they run at
            assert (
                config["model"]["dim"]
                == calibration.CPU_SMALL_WIDTH
                == 2 * paper_tables.SCALES[scale.name].rvd_model["dim"]
            )
            narrow = build_model(resolve_config(row.build(paper_tables.SCALES[scale.name])), 3)
            assert sizes[scale.name] > sum(p.numel() for p in narrow.parameters())
        if row.label == "VD":
            for key, value in calibration.CALIBRATED_DIFFUSION.items():
                assert config["diffusion"][key] == value
    if kind in ("persistence", "climatology"):
        assert set(sizes.values()) == {0}
    else:
        assert sizes["smoke"] < sizes["cpu-small"] < sizes["paper"], sizes


def test_rows_are_chosen_by_label_and_seeded_by_seed():
    rows = calibration.select_rows(calibration.ROWS, ["VD", "RVD"])
    assert [r.label for r in rows] == ["RVD", "VD"]  # the table's order
    with pytest.raises(calibration.ForecastError, match="no row 'SVD'"):
        calibration.select_rows(calibration.ROWS, ["RVD", "SVD"])
    scale = calibration.SCALES["smoke"]
    assert calibration.row_config(rows[0], scale, seed=3)["training"]["seed"] == 3
    assert calibration.row_config(rows[0], scale)["training"]["seed"] == 0


def test_lever_rows_change_one_option_each_and_build_at_every_scale():
    from forecast.models import build_model
    from forecast.training.config import resolve_config

    for scale in calibration.SCALES.values():
        bases = {label: calibration.row_config(row, scale) for label, row in (("RVD", calibration.ROWS[0]),
                                                                             ("VD", calibration.ROWS[1]))}  # fmt: skip
        levers = {r.label: calibration.row_config(r, scale) for r in calibration.lever_rows(scale)}
        assert levers["RVD (2x steps)"]["training"]["steps"] == 2 * bases["RVD"]["training"]["steps"]
        assert levers["VD (2x steps)"]["training"]["steps"] == 2 * bases["VD"]["training"]["steps"]
        for label in ("RVD", "VD"):
            frames = bases[label]["data"]["future_frames"]
            assert levers[f"{label} (2x frames)"]["data"]["future_frames"] == 2 * frames
            assert levers[f"{label} (2x channels)"]["model"]["dim"] == 2 * bases[label]["model"]["dim"]
        assert levers["RVD (min-SNR)"]["diffusion"]["loss_weighting"] == "min_snr"
        assert levers["RVD (eps)"]["diffusion"]["prediction"] == "eps"
        assert levers["RVD (sigma per pixel)"]["model"]["sigma"] == "auto_pixel"
        assert levers["RVD (detached mu)"]["model"]["detach_mu"] is True
        assert levers["RVD (denoiser sees mu)"]["model"]["condition_on_mu"] is True
        sampled = {r.label: r.rollout for r in calibration.lever_rows(scale) if r.rollout}
        assert sampled == {"RVD (DDPM)": calibration.PAPER_SAMPLER, "VD (DDPM)": calibration.PAPER_SAMPLER}
        for label, config in levers.items():
            base = bases[label.split(" (")[0]]
            if label in sampled:  # sampled differently, trained the same
                assert config == base, label
                continue
            changed = {
                (section, key)
                for section in ("model", "diffusion", "training", "data")
                for key in set(config[section]) | set(base[section])
                if config[section].get(key) != base[section].get(key)
            }
            assert len(changed) == 1, (label, changed)
            build_model(resolve_config(config), 3)


def test_sampler_rows_share_the_trained_run_and_sample_with_ddpm_over_all_steps(tmp_path):
    scale = calibration.SCALES["cpu-small"]
    rows = calibration.select_rows(
        calibration.ROWS + calibration.lever_rows(scale), ["RVD", "RVD (DDPM)", "VD"]
    )
    chain = calibration.pipeline.Pipeline(
        tmp_path, store=tmp_path / "s.zarr", rollout=calibration.truth_starts(scale, 0)
    )
    rvd, vd, rvd_ddpm = calibration.pipeline_rows(rows, scale)  # the table's order
    assert (rvd.title, vd.title, rvd_ddpm.title) == ("RVD", "VD", "RVD (DDPM)")
    assert chain.run_dir(rvd_ddpm) == chain.run_dir(rvd) != chain.run_dir(vd)
    assert chain.forecast_file(rvd_ddpm) != chain.forecast_file(rvd)
    paper, table = chain.rollout_settings(rvd_ddpm), chain.rollout_settings(rvd)
    assert (paper.sampler, paper.steps) == ("ddpm", None)
    assert (table.sampler, table.sampling_steps()) == ("dpmpp2m", 10)  # the rollout's default sampler
    assert paper.starts == table.starts == "truth" and paper.members == table.members


def test_validation_store_and_command_line():
    scale = calibration.SCALES["cpu-small"]
    assert calibration.simulation_config(scale).noise_seed == 0
    validation = calibration.simulation_config(scale, noise_seed=7)
    assert validation.noise_seed == 7 and validation.reynolds == calibration.simulation_config(scale).reynolds
    with pytest.raises(calibration.ForecastError, match="not both"):
        calibration.run_calibration("smoke", "out", data="store.zarr", noise_seed=1)
    rows = calibration.select_rows(calibration.ROWS + calibration.lever_rows(scale), ["RVD", "RVD (eps)"])
    line = calibration.command_line(scale, Path("o"), rows, noise_seed=7, seed=2)
    assert line == (
        "python experiments/calibration.py --scale cpu-small --out o --noise-seed 7 --seed 2 --levers "
        "--rows RVD 'RVD (eps)'"
    )
    assert calibration.command_line(scale, Path("o"), calibration.ROWS).endswith("--out o")
    assert calibration.main(["--out", "o", "--data", "x.zarr", "--noise-seed", "1"]) == 2


def test_cpu_small_networks_are_twice_as_wide_as_the_paper_tables_and_width_sets_another():
    tables, scale = calibration.paper_tables.SCALES["cpu-small"], calibration.SCALES["cpu-small"]
    narrow = calibration.scale_of("cpu-small", width=16)
    for row in calibration.ROWS[:3]:  # RVD, VD, ConvGRU
        assert calibration.row_config(row, scale)["model"]["dim"] == calibration.CPU_SMALL_WIDTH
        assert calibration.row_config(row, narrow)["model"]["dim"] == 16
    assert calibration.CPU_SMALL_WIDTH == 2 * tables.rvd_model["dim"] == 2 * tables.convgru_model["dim"]
    # the default rows are the "(2x channels)" rows of the earlier width, measured over four seeds
    levers = {r.label: r for r in calibration.lever_rows(narrow)}
    for row in calibration.ROWS[:2]:
        doubled = levers[f"{row.label} (2x channels)"]
        assert calibration.row_config(row, scale) == calibration.row_config(doubled, narrow)
    assert calibration.scale_of("smoke") is calibration.SCALES["smoke"]
    for bad in (0, -8, 2.5):
        with pytest.raises(calibration.ForecastError, match="--width must be a positive"):
            calibration.scale_of("cpu-small", bad)
    with pytest.raises(calibration.ForecastError, match="--width 12: .*not divisible by model.groups"):
        calibration.scale_of("cpu-small", 12)  # 12 and 24 channels in groups of 8
    line = calibration.command_line(narrow, Path("o"), calibration.ROWS, width=16)
    assert line == "python experiments/calibration.py --scale cpu-small --out o --width 16"
    assert calibration.main(["--out", "o", "--width", "0", "--levers"]) == 2


def test_ablation_rows_are_opt_in():
    labels = [r.label for r in calibration.ROWS]
    assert "RVD (sigma 2)" not in labels and calibration_tables.TARGET_ROW in labels
    assert [r.label for r in calibration.ABLATIONS] == ["RVD (sigma 2)"]


def test_targets_follow_the_issue():
    lead = {
        "crps": [1.0, 2.0],
        "crps_oracle": [0.8, 1.6],
        "spread_skill": [0.7, 1.4],
        "outside_range": [0.4, 0.2],
        "members": 8,
    }
    assert calibration_tables.targets(lead, 2 / 9) == {
        "spread_skill_0.7_1.4_every_lead": True,
        "outside_at_most_2x_calibrated": True,  # 0.4 <= 2 x 2/9
        "crps_at_most_2x_oracle": True,
    }
    bad = {**lead, "spread_skill": [0.69, 1.0], "outside_range": [0.5, 0.1], "crps": [2.0, 3.0]}
    assert not any(calibration_tables.targets(bad, 2 / 9).values())


def test_the_baseline_target_is_not_measured_without_a_baseline_row():
    def row(crps: float) -> dict:
        return {"crps": [crps, crps], "crps_oracle": [0.8, 0.8], "spread_skill": [1.0, 1.0],
                "outside_range": [0.2, 0.2], "members": 8}  # fmt: skip

    options_only = {"RVD": row(1.0), "RVD (DDPM)": row(2.0), ORACLE: row(0.8)}
    assert calibration_tables.verdict(options_only)["crps_below_every_baseline"] is None
    assert calibration_tables.verdict({**options_only, "VD": row(1.1)})["crps_below_every_baseline"] is True
    assert calibration_tables.verdict({**options_only, "VD": row(0.9)})["crps_below_every_baseline"] is False


def test_summary_leaves_out_leads_where_a_score_is_undefined():
    # SM-MNIST: the truth ensemble has no spread before the first bounce, so its ratios are NaN at lead 1
    nan = float("nan")
    lead = {
        "crps": [0.0, 2.0, 4.0],
        "crps_oracle": [0.0, 2.0, 2.0],
        "spread_skill": [nan, 0.8, 1.2],
        "spread_ratio_truth": [nan, 1.0, 2.0],
        "outside_range": [0.1, 0.2, 0.3],
        "members": 8,
    }
    (row,) = calibration_tables.summarize({"RVD": lead})
    assert row["spread_skill"] == pytest.approx(1.0) and row["spread_ratio_truth"] == pytest.approx(1.5)
    assert (row["spread_skill_min"], row["spread_skill_max"]) == (0.8, 1.2)
    assert row["crps_oracle_ratio"] == pytest.approx(1.5) and row["outside_range"] == pytest.approx(0.2)
    (undefined,) = calibration_tables.summarize({"X": {**lead, "spread_skill": [nan] * 3}})
    assert all(math.isnan(undefined[k]) for k in ("spread_skill", "spread_skill_min", "spread_skill_max"))


@pytest.mark.slow  # a stochastic store with truth, four tiny trainings, six rollouts: about a minute when quiet
@pytest.mark.long(seconds=45)  # its wall seconds in a CI run: orders the files (conftest)
def test_smoke_benchmark_writes_tables_figures_and_resumes(tmp_path):
    out = tmp_path / "cal"
    leads = calibration.run_calibration("smoke", out, progress=False, log=lambda _: None)
    labels = [r.label for r in calibration.ROWS] + [ORACLE]
    assert list(leads) == labels
    for row in calibration.ROWS:
        assert (out / "forecasts" / f"{row.slug}.nc").is_file()
    with open(out / "calibration.csv", newline="") as f:
        table = {r["model"]: r for r in csv.DictReader(f)}
    assert list(table) == labels
    oracle = table[ORACLE]
    # the truth ensemble scored against itself: its CRPS is the oracle CRPS and its spread the truth's
    assert float(oracle["crps_oracle_ratio"]) == pytest.approx(1.0)
    assert float(oracle["spread_ratio_truth"]) == pytest.approx(1.0)
    assert all(float(r["crps"]) > 0 for r in table.values())
    assert float(table["Persistence"]["outside_range"]) == 1.0  # a point forecast brackets nothing
    assert 0 <= float(table["RVD"]["outside_range"]) <= 1
    with open(out / "calibration_leads.csv", newline="") as f:
        per_lead = list(csv.DictReader(f))
    horizon = calibration.SCALES["smoke"].simulation["truth_horizon"]
    assert len(per_lead) == len(labels) * horizon
    markdown = (out / "calibration.md").read_text()
    assert "| Oracle |" in markdown and "Targets for RVD" in markdown and "--scale smoke" in markdown
    assert (out / "figures" / "crps_lead_time_vorticity.png").is_file()
    # issue 31's columns: the fair CRPS (at most the standard one), like with like against the oracle's
    assert float(oracle["crps_fair_oracle_ratio"]) == pytest.approx(1.0)
    assert 0 < float(table["RVD"]["crps_fair"]) <= float(table["RVD"]["crps"])
    assert table["ConvGRU"]["crps_fair"] == "nan"  # one member: the fair CRPS is undefined
    assert "Issue 31's targets for RVD" in markdown and "| lead | spread-skill (0.9-1.1)" in markdown
    assert (out / "figures" / "calibration_targets.png").is_file()
    # issue 31: each diffusion row's spread is calibrated on its own run's forecast of a validation store made
    # here (the next noise seed), and the table's row is the calibrated forecast: the raw members widened about
    # their mean by the fitted factor
    validation = out / calibration.VALIDATION_DIR
    for name in ("RVD", "VD"):
        assert (validation / "forecasts" / f"{name}.nc").is_file()
        saved = SpreadCalibration.load(out / "spread_calibration" / f"{name}.json")
        assert saved.fitted_on and all(k > 0 for ks in saved.factors.values() for k in ks)
    assert not (validation / "forecasts" / "ConvGRU.nc").exists()  # one member: nothing to widen
    assert float(table["RVD"]["crps"]) == pytest.approx(
        _mean_crps(out / "scores" / "RVD__spread_calibrated.nc")
    )
    factors = np.asarray(SpreadCalibration.load(out / "spread_calibration" / "RVD.json").factors["u"])
    with (
        xr.open_dataset(out / "forecasts" / "RVD.nc") as raw,
        xr.open_dataset(out / "forecasts" / "RVD__spread_calibrated.nc") as widened,
    ):
        spread_raw, spread = (ds["u"].std("member") for ds in (raw, widened))
        others = [d for d in spread.dims if d != "lead_time"]
        np.testing.assert_allclose((spread / spread_raw).mean(others).values, factors, rtol=1e-4)
    # issue 32's physics columns: band errors against the truth ensemble (0 for the oracle itself), the long
    # rollouts' stability, and the Strouhal number's n/a with the scores file's reason (12 leads < 64)
    bands = [c for c in table[ORACLE] if c.startswith("ke_band_error_k")]
    assert bands == ["ke_band_error_k1", "ke_band_error_k2-3", "ke_band_error_k4-8"]  # 16 x 16 frames
    assert all(float(table[ORACLE][b]) == pytest.approx(0.0, abs=1e-9) for b in bands)
    assert all(math.isfinite(float(table["RVD"][b])) for b in bands) and bands[0] in per_lead[0]
    long = calibration.LONG_ROLLOUT["smoke"]["horizon"]
    for row in calibration.ROWS:
        assert (out / "long" / "scores" / f"{row.slug}.nc").is_file()
        assert table[row.label]["long_horizon"] == str(long) and table[row.label]["strouhal"] == "nan"
        horizon = table[row.label]["stability_horizon"]
        assert horizon == "none" or 1 <= float(horizon) <= long
    assert table["Persistence"]["stability_horizon"] == "none" and table[ORACLE]["stability_horizon"] == "n/a"
    assert (
        f"Strouhal: the forecast has {long} lead times" in markdown
        and "Oracle: stability and Strouhal" in markdown
    )
    assert (out / "figures" / "physics_scores.png").is_file()
    # rerunning skips every finished stage; without figures (--no-figures) the ones there are left as they are
    before = (out / "forecasts" / "RVD.nc").stat().st_mtime_ns
    figure = (out / "figures" / "calibration_targets.png").stat().st_mtime_ns
    calibration.run_calibration("smoke", out, progress=False, log=lambda _: None, figures=False)
    assert (out / "forecasts" / "RVD.nc").stat().st_mtime_ns == before
    assert (out / "figures" / "calibration_targets.png").stat().st_mtime_ns == figure
    # --no-spread-validation tables the raw ensembles (all of it exists: only the table is written again)
    calibration.run_calibration(
        "smoke", out, progress=False, log=lambda _: None, spread_validation=False, figures=False
    )
    with open(out / "calibration.csv", newline="") as f:
        raw_table = {r["model"]: r for r in csv.DictReader(f)}
    assert float(raw_table["RVD"]["crps"]) == pytest.approx(_mean_crps(out / "scores" / "RVD.nc"))
    assert raw_table["RVD"]["spread_skill"] != table["RVD"]["spread_skill"]
    assert raw_table["ConvGRU"] == table["ConvGRU"]
    assert "--no-spread-validation" in (out / "calibration.md").read_text()


def _mean_crps(scores_file) -> float:
    """The table's CRPS of a row: the mean over variables and leads of its scores file's mean CRPS."""
    from forecast.pipeline import summary_row

    return summary_row(scores_file)["crps"]


def test_kolmogorov_flow_option_chooses_the_simulation_and_the_command_line():
    scale = calibration.SCALES["cpu-small"]
    config = calibration.simulation_config(scale, flow="kolmogorov")
    assert type(config).__name__ == "KolmogorovConfig" and config.truth_members == 16
    assert calibration.simulation_config(scale, noise_seed=2, flow="kolmogorov").seeds == (3000, 3001, 3002)
    line = calibration.command_line(scale, Path("o"), calibration.ROWS, flow="kolmogorov")
    assert line == "python experiments/calibration.py --scale cpu-small --out o --flow kolmogorov"
    with pytest.raises(calibration.ForecastError, match="unknown flow"):
        calibration.run_calibration("smoke", "out", flow="lorenz")


@pytest.mark.slow  # Kolmogorov flow's smoke table: a tiny store with truth, the same rows (about a minute quiet)
def test_kolmogorov_smoke_benchmark_writes_the_same_table(tmp_path):
    out = tmp_path / "kol"
    leads = calibration.run_calibration("smoke", out, progress=False, log=lambda _: None, flow="kolmogorov")
    labels = [r.label for r in calibration.ROWS] + [ORACLE]
    assert list(leads) == labels
    assert (out / "data" / "kolmogorov.zarr").is_dir() and not (out / "data" / "karman.zarr").exists()
    assert (out / "figures" / "physics_scores.png").is_file()  # no Strouhal panel data: drawn all the same
    with open(out / "calibration.csv", newline="") as f:
        table = {r["model"]: r for r in csv.DictReader(f)}
    assert list(table) == labels
    assert float(table[ORACLE]["crps_oracle_ratio"]) == pytest.approx(1.0)
    assert all(float(r["crps"]) > 0 for r in table.values())
    markdown = (out / "calibration.md").read_text()
    assert "--flow kolmogorov" in markdown and "Targets for RVD" in markdown
    assert "Strouhal: not a vortex street" in markdown and "ke_band_error_k1" in table["RVD"]
    assert table["RVD"]["stability_horizon"] in ("none", *map(str, range(1, 13)))


def test_fair_crps_per_lead_matches_the_fair_formula_and_is_nan_for_one_member(tmp_path):
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(1)
    ens, obs = rng.normal(size=(3, 4, 2, 5, 6)), rng.normal(size=(3, 2, 5, 6))  # init, member, lead, y, x
    dims = ("init", "member", "lead_time", "y", "x")
    variables = {"u": (dims, ens), "u_obs": (dims[:1] + dims[2:], obs)}
    variables.update(v=(dims, 2 * ens), v_obs=(dims[:1] + dims[2:], 2 * obs))  # twice u: twice its CRPS
    xr.Dataset(variables).to_netcdf(tmp_path / "f.nc")
    # fair CRPS: mean |x_i - y| - sum_ij |x_i - x_j| / (2 m (m - 1)), by hand
    m = ens.shape[1]
    error = np.abs(ens - obs[:, None]).mean(axis=1)
    pairs = np.abs(ens[:, :, None] - ens[:, None, :]).sum(axis=(1, 2)) / (2 * m * (m - 1))
    u = (error - pairs).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(calibration_tables.fair_crps_per_lead(tmp_path / "f.nc"), 1.5 * u, rtol=1e-6)
    xr.Dataset({**variables, "u": (dims, ens[:, :1]), "v": (dims, ens[:, :1])}).to_netcdf(tmp_path / "one.nc")
    assert all(math.isnan(x) for x in calibration_tables.fair_crps_per_lead(tmp_path / "one.nc"))


def _leads(spread_skill, outside, fair, members=8) -> dict:
    n = len(spread_skill)
    return {"lead_time": list(range(1, n + 1)), "crps": [1.0] * n, "crps_oracle": [0.9] * n,
            "crps_oracle_ratio": [1.1] * n, "spread_skill": spread_skill, "spread_ratio_truth": [1.0] * n,
            "outside_range": outside, "members": members, "_fair": fair}  # fmt: skip


def test_issue_31_targets_fair_ratio_like_with_like_and_outer_excess():
    rvd = _leads([0.9, 1.1], [0.2, 0.2777], [1.08, 1.08])
    oracle = _leads([1.0, 1.0], [0.1, 0.1], [1.0, 1.0], members=16)
    leads = {"RVD": rvd, ORACLE: oracle}
    calibration_tables.add_fair_crps(leads, {k: v.pop("_fair") for k, v in leads.items()}, ORACLE)
    assert rvd["crps_fair_oracle_ratio"] == pytest.approx([1.08, 1.08])
    assert rvd["outer_excess"] == pytest.approx([0.2 - 2 / 9, 0.2777 - 2 / 9])
    assert oracle["outer_excess"] == pytest.approx([0.1 - 2 / 17] * 2)  # its own calibrated share: 16 members
    assert all(calibration_tables.calibration_targets(rvd).values())  # every bound is inclusive
    for change in ({"spread_skill": [0.89, 1.0]}, {"spread_skill": [1.0, 1.11]}, {"outside_range": [0.2, 0.28]},
                   {"crps_fair": [1.09, 1.09]}):  # fmt: skip
        assert not all(calibration_tables.calibration_targets({**rvd, **change}).values()), change
    (row, _) = calibration_tables.summarize(leads)
    assert row["crps_fair_oracle_ratio"] == pytest.approx(1.08)
    assert row["outer_excess"] == pytest.approx((0.2 + 0.2777) / 2 - 2 / 9)
    lines = calibration_tables.lead_table(rvd)
    assert len(lines) == 2 + 2 and lines[-1].startswith("| 2 | 1.1 | 0.2777 | 1.25 |")


def test_targets_figure_is_written(tmp_path):
    leads = {
        "RVD": _leads([0.8, 0.9], [0.3, 0.25], [1.0, 1.0]),
        ORACLE: _leads([1, 1], [0.1, 0.1], [1, 1], 16),
    }
    path = calibration_tables.plot_targets(leads, tmp_path / "figures" / "calibration_targets.png")
    assert path.is_file() and path.stat().st_size > 10_000


def test_spread_from_a_validation_run_calibrates_the_rows_it_has_forecasts_of(tmp_path):
    import json

    import numpy as np
    import xarray as xr
    import zarr

    from forecast.spread_calibration import SpreadCalibration

    def store(path, noise_seed):
        zarr.open_group(str(path), mode="w").attrs["karman_config"] = json.dumps({"noise_seed": noise_seed})
        return path

    def forecast(path, source_store, spread=0.5):
        rng = np.random.default_rng(0)
        centre = rng.normal(size=(40, 1, 3, 4, 4))
        dims = ("init", "member", "lead_time", "y", "x")
        ds = xr.Dataset({"u": (dims, centre + spread * rng.normal(size=(40, 8, 3, 4, 4))),
                         "u_obs": (dims[:1] + dims[2:], centre[:, 0] + rng.normal(size=(40, 3, 4, 4)))},
                        attrs={"source_store": str(source_store)})  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(path)

    bench, val = store(tmp_path / "bench.zarr", 0), store(tmp_path / "val.zarr", 1)
    forecast(tmp_path / "val_out" / "forecasts" / "RVD.nc", val)
    scale = calibration.SCALES["smoke"]
    chain = calibration.pipeline.Pipeline(
        tmp_path / "out", store=bench, rollout=calibration.truth_starts(scale, 0)
    )
    rows = calibration.pipeline_rows(calibration.ROWS[:3], scale)  # RVD, VD, ConvGRU
    forecast(chain.forecast_file(rows[0]), bench, spread=1.0)  # the uncalibrated rollout, made before
    lines = []
    rvd, vd, convgru = calibration.spread_calibrate(chain, rows, tmp_path / "val_out", log=lines.append)
    assert (vd, convgru) == tuple(rows[1:])  # no validation forecast of theirs: unchanged
    assert rvd.title == "RVD" and rvd.name == "RVD__spread_calibrated" and rvd.config == rows[0].config
    assert chain.run_dir(rvd) == chain.run_dir(rows[0]) == tmp_path / "out" / "runs" / "RVD"  # trained once
    saved = SpreadCalibration.load(rvd.rollout["spread_calibration"])
    assert saved.fitted_on["source_store"] == str(val) and all(k > 1.5 for k in saved.factors["u"])
    # made from the uncalibrated forecast, recorded in its attributes; the pipeline reuses it as it is
    made = xr.open_dataset(chain.forecast_file(rvd))
    assert SpreadCalibration.of_attributes(made.attrs) == saved
    raw = xr.open_dataset(chain.forecast_file(rows[0]))
    np.testing.assert_allclose(made["u"], saved.apply_dataset(raw)["u"])
    calibration.pipeline.roll_out(
        chain.run_dir(rvd), bench, chain.forecast_file(rvd), chain.rollout_settings(rvd), False
    )
    with pytest.raises(calibration.ForecastError, match="was made with a spread calibration"):
        calibration.pipeline.roll_out(chain.run_dir(rvd), bench, chain.forecast_file(rvd),
                                      chain.rollout_settings(rows[0]), False)  # fmt: skip
    with pytest.raises(calibration.ForecastError, match="was made with no spread calibration"):
        calibration.pipeline.roll_out(chain.run_dir(rvd), bench, chain.forecast_file(rows[0]),
                                      chain.rollout_settings(rvd), False)  # fmt: skip
    assert any("spread factors fitted on" in line for line in lines)
    # a "validation" run on the scored store itself is refused
    forecast(tmp_path / "same_out" / "forecasts" / "RVD.nc", bench)
    with pytest.raises(calibration.ForecastError, match="it is the scored store"):
        calibration.spread_calibrate(chain, rows, tmp_path / "same_out")
    line = calibration.spread_words(tmp_path / "v", "fair_crps", "all")
    assert line == f" --spread-from {tmp_path / 'v'} --spread-method fair_crps"
    assert calibration.spread_words(None, "spread_skill", "lead") == " --spread-pooling lead"
