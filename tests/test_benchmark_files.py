"""The benchmarks' own forecast files: written through the rollout's writer, they must stay readable by the
scorer as the writer's settings grow (bench_score_file's writer call broke once unnoticed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"))

import bench_score_file  # noqa: E402


def test_bench_score_files_forecast_file_has_the_asked_layout_and_scores(tmp_path):
    from forecast.metrics.scores import score_forecast

    path = tmp_path / "fc.nc"
    bench_score_file.write_file(path, n_init=2, members=3, n_lead=2, size=8)
    with xr.open_dataset(path) as fc:
        assert fc.sizes["init"] == 2 and fc.sizes["member"] == 3 and fc.sizes["lead_time"] == 2
        assert {"u", "u_obs", "vorticity", "vorticity_obs"} <= set(fc.data_vars)
        # the members spread about the truth: an ensemble, not copies
        assert float(fc["u"].std("member").mean()) > 0
        scores = score_forecast(fc)
    assert np.isfinite(scores["crps_mean_u"].values).all()
