"""experiments/paper_tables.py: tables 1 and 2 at the `smoke` scale (the chain, not the numbers)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import paper_tables  # noqa: E402


@pytest.mark.parametrize(
    "name", sorted({row.config for rows in paper_tables.TABLES.values() for row in rows})
)
def test_every_row_config_builds_at_every_scale(name):
    from forecast.models import build_model
    from forecast.training.config import resolve_config

    row = paper_tables.Row(name, name)
    for scale in paper_tables.SCALES.values():
        config = resolve_config(row.build(scale))
        build_model(config, 3)


@pytest.mark.slow  # ten tiny trainings and rollouts: about a minute on a quiet machine
def test_smoke_tables_write_csv_markdown_figures_and_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_OFFLINE", "1")  # perceptual metrics: no download, "n/a" without weights
    out = tmp_path / "t2"
    rows = paper_tables.run_table(2, "smoke", out, progress=False, log=lambda _: None)
    assert [r["model"] for r in rows] == [r.label for r in paper_tables.TABLES[2]]
    with open(out / "table2.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert {"model", "crps", "crps_u", "crps_vorticity", "lpips", "fvd"} <= set(table[0])
    assert all(float(r["crps"]) > 0 for r in table)
    markdown = (out / "table2.md").read_text()
    assert "| RVD (2 + 3) |" in markdown and "--scale smoke" in markdown
    assert (out / "figures" / "crps_lead_time_vorticity.png").is_file()
    # the 2 + 3 row really trained on windows of 5 frames
    assert "future_frames: 3" in (out / "runs" / "RVD__2___3" / "config.yaml").read_text()
    # table 1 reuses the store; rerunning skips finished runs (the forecast file is not rewritten)
    data = out / "data" / "karman.zarr"
    paper_tables.run_table(
        1, "smoke", tmp_path / "t1", data=data, perceptual_metrics=False, progress=False, log=lambda _: None
    )
    forecast = tmp_path / "t1" / "forecasts" / "SVG-LP.nc"
    before = forecast.stat().st_mtime_ns
    rows1 = paper_tables.run_table(
        1, "smoke", tmp_path / "t1", data=data, perceptual_metrics=False, progress=False, log=lambda _: None
    )
    assert forecast.stat().st_mtime_ns == before
    assert {r["model"]: r["members"] for r in rows1}["ConvGRU"] == 1
