"""experiments/paired_crps.py: CRPS of two forecasts paired by start, with a bootstrap over starts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from properscoring import crps_ensemble
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import paired_crps  # noqa: E402


def _forecast(path: Path, error: float, seed: int, inits: int = 6) -> Path:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(inits, 3, 4, 4))
    ens = obs[:, None] + error * rng.normal(size=(inits, 5, 3, 4, 4)) + error
    dims = ("init", "member", "lead_time", "y", "x")
    coords = {"init": np.arange(inits), "lead_time": [1, 2, 3]}
    ds = xr.Dataset({"a": (dims, ens), "a_obs": (dims[:1] + dims[2:], obs)}, coords=coords)
    ds["b"], ds["b_obs"] = 2 * ds["a"], 2 * ds["a_obs"]
    ds.to_netcdf(path)
    return path


def test_crps_per_start_is_the_mean_over_variables_of_properscoring(tmp_path):
    path = _forecast(tmp_path / "f.nc", 0.5, 0)
    ds = xr.load_dataset(path)
    expected = [
        np.mean(
            [
                crps_ensemble(ds[f"{v}_obs"][i].values, np.moveaxis(ds[v][i].values, 0, -1)).mean()
                for v in "ab"
            ]
        )
        for i in range(ds.sizes["init"])
    ]
    np.testing.assert_allclose(paired_crps.crps_per_start(path).values, expected, rtol=1e-6)


def test_a_better_forecast_is_told_apart_and_a_copy_is_not(tmp_path):
    good = [_forecast(tmp_path / f"good{s}.nc", 0.2, s) for s in (0, 1)]
    bad = [_forecast(tmp_path / f"bad{s}.nc", 1.0, s) for s in (0, 1)]
    rows = paired_crps.compare([str(p) for p in good], [str(p) for p in bad], samples=500)
    assert [r["pair"] for r in rows][-1] == "all pairs" and len(rows) == 3
    assert all(r["ci95_low"] <= r["a_over_b_minus_1"] <= r["ci95_high"] < 0 for r in rows)
    (same,) = paired_crps.compare([str(good[0])], [str(good[0])], samples=100)
    assert same["a_over_b_minus_1"] == same["ci95_low"] == same["ci95_high"] == 0


def test_three_replicates_add_a_student_t_interval_over_the_pairs(tmp_path):
    a = [str(_forecast(tmp_path / f"a{s}.nc", 0.2 + 0.1 * s, s)) for s in range(3)]
    b = [str(_forecast(tmp_path / f"b{s}.nc", 0.4, s)) for s in range(3)]
    rows = paired_crps.compare(a, b, samples=200)
    assert [r["pair"] for r in rows][-2:] == ["all pairs", "over replicates"]
    assert rows[0]["over"] == "6 starts" and rows[-1]["over"] == "3 replicates"
    ratios = np.array([r["a_over_b_minus_1"] for r in rows[:3]])  # each pair's own A / B - 1
    expected = stats.ttest_1samp(ratios, 0).confidence_interval(0.95)
    assert rows[-1]["a_over_b_minus_1"] == pytest.approx(ratios.mean())
    assert (rows[-1]["ci95_low"], rows[-1]["ci95_high"]) == pytest.approx((expected.low, expected.high))
    assert "over replicates" not in [r["pair"] for r in paired_crps.compare(a[:2], b[:2], samples=50)]


def test_unpaired_files_are_one_line_errors(tmp_path, capsys):
    a = _forecast(tmp_path / "a.nc", 0.2, 0)
    other = _forecast(tmp_path / "o.nc", 0.2, 0, inits=4)
    assert paired_crps.main(["--a", str(a), "--b", str(other)]) == 2
    assert "do not share their starts" in capsys.readouterr().err
    with pytest.raises(paired_crps.ForecastError, match="as many files"):
        paired_crps.compare([str(a), str(a)], [str(a)])
