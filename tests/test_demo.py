"""`forecast demo`: the whole chain at a tiny scale (fast), and at its real scale (slow)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import xarray as xr
import yaml

from forecast.demo import DEMO_BASELINES, DEMO_CONFIG, DemoSettings, run_demo, rvd_config

MODELS = ["rvd", *DEMO_BASELINES]


def test_demo_trains_the_shipped_demo_config_with_its_budget():
    shipped = yaml.safe_load(open(DEMO_CONFIG))
    config = rvd_config(DemoSettings(train_seconds=30.0, seed=3))
    assert {k: config[k] for k in ("model", "diffusion", "data")} == {
        k: shipped[k] for k in ("model", "diffusion", "data")
    }
    assert config["training"] == {**shipped["training"], "steps": 3000, "time_budget_s": 30.0, "seed": 3}


def _read_summary(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_demo_writes_every_file_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    result = run_demo(out, DemoSettings.smoke(), progress=False)
    printed = capsys.readouterr().out
    # the summary: one row per model, with the columns model and crps, printed as a table
    rows = _read_summary(out / "summary.csv")
    assert [r["model"] for r in rows] == MODELS
    assert {"model", "crps"} <= set(rows[0])
    assert all(float(r["crps"]) > 0 for r in rows)
    assert {r["model"]: r["members"] for r in rows}["persistence"] == "1"
    for model in MODELS:
        assert any(line.startswith(model + " ") for line in printed.splitlines())
    assert "[6/6]" in printed
    # every stage's output exists
    assert (out / "data" / "karman.zarr" / "train").is_dir()
    for model in MODELS:
        assert (out / "runs" / model / "checkpoints" / "last.pt").is_file()
        assert (out / "configs" / f"{model}.yaml").is_file()
        forecast = xr.open_dataset(out / "forecasts" / f"{model}.nc")
        assert {"u", "u_obs", "vorticity"} <= set(forecast.data_vars)
        forecast.close()
        scores = xr.open_dataset(out / "scores" / f"{model}.nc")
        assert "crps_mean_vorticity" in scores and scores["crps_mean_vorticity"].sizes["lead_time"] == 3
        scores.close()
    names = {p.name for p in (out / "figures").iterdir()}
    for expected in (
        "crps_lead_time_vorticity.png",
        "crps_map_vorticity.png",
        "spread_skill_vorticity.png",
        "samples_vorticity_rvd.png",
        "rollout_vorticity_rvd.gif",
        "rank_histogram_vorticity_rvd.png",
    ):
        assert expected in names
    assert all(p.exists() for files in result.files.values() for p in files)
    # a second run finds everything done and only rewrites the summary
    before = (out / "forecasts" / "rvd.nc").stat().st_mtime_ns
    again = run_demo(out, DemoSettings.smoke(), progress=False)
    assert (out / "forecasts" / "rvd.nc").stat().st_mtime_ns == before
    assert [r["crps"] for r in again.summary] == [r["crps"] for r in result.summary]


@pytest.mark.slow
def test_full_demo_rvd_beats_persistence(tmp_path):
    result = run_demo(tmp_path / "demo", progress=False)
    crps = {r["model"]: r["crps"] for r in result.summary}
    assert crps["rvd"] < crps["persistence"]


def test_demo_command_is_registered_and_parses_its_options():
    from forecast.cli import build_parser
    from forecast.cli.common import output_path

    args = build_parser().parse_args(["demo", "out/demo", "--train-seconds", "30", "--members", "4"])
    assert args.command == "demo" and str(output_path(args)) == "out/demo"
    assert args.train_seconds == 30 and args.members == 4 and callable(args.handler)
