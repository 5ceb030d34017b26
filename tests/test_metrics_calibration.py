"""RMSE, spread, spread-skill (finite-ensemble correction), rank and PIT histograms."""

import warnings

import numpy as np
import pytest
import xarray as xr
from dask.array.core import PerformanceWarning

from forecast.errors import ForecastError
from forecast.metrics import (
    ensemble_mean_rmse,
    ensemble_spread,
    pit_histogram,
    rank_and_pit,
    rank_histogram,
    spread_skill_ratio,
)


def _gaussian(rng, n=20000, m=8, dispersion=1.0):
    obs = xr.DataArray(rng.normal(size=(n,)), dims="point")
    ens = xr.DataArray(dispersion * rng.normal(size=(n, m)), dims=("point", "member"))
    return obs, ens


def test_rmse_and_spread_by_hand():
    ens = xr.DataArray([[0.0, 2.0], [1.0, 1.0]], dims=("point", "member"))
    obs = xr.DataArray([3.0, 1.0], dims="point")
    # ensemble means 1 and 1: errors 2 and 0; member variances (ddof=1) 2 and 0
    assert ensemble_mean_rmse(obs, ens).item() == pytest.approx(np.sqrt(2.0))
    assert ensemble_spread(ens).item() == pytest.approx(1.0)
    assert spread_skill_ratio(obs, ens).item() == pytest.approx(np.sqrt(3 / 2) / np.sqrt(2.0))


def test_spread_skill_correction_is_exact_for_exchangeable_members():
    # Leave-one-out over m + 1 values: truth and members exchangeable by construction, so
    # E[(mean - truth)^2] = (1 + 1/m) E[s^2] holds exactly and the corrected ratio is 1.
    values = np.array([0.3, 1.7, -2.0, 0.9, 4.2, -0.6])
    m = values.size - 1
    obs = xr.DataArray(values, dims="point")
    ens = xr.DataArray(np.array([np.delete(values, i) for i in range(values.size)]), dims=("point", "member"))
    assert spread_skill_ratio(obs, ens).item() == pytest.approx(1.0, abs=1e-12)
    uncorrected = spread_skill_ratio(obs, ens, finite_ensemble_correction=False).item()
    assert uncorrected == pytest.approx(np.sqrt(m / (m + 1)), abs=1e-12)


def test_spread_skill_of_gaussian_ensembles(rng):
    obs, ens = _gaussian(rng, m=3)
    assert spread_skill_ratio(obs, ens).item() == pytest.approx(1.0, abs=0.03)
    assert spread_skill_ratio(obs, ens, finite_ensemble_correction=False).item() == pytest.approx(
        np.sqrt(3 / 4), abs=0.03
    )
    obs, ens = _gaussian(rng, m=3, dispersion=0.5)
    assert spread_skill_ratio(obs, ens).item() < 0.7


def _chi2(counts):
    counts = np.asarray(counts, dtype=float)
    expected = counts.sum() / counts.size
    return ((counts - expected) ** 2 / expected).sum()


def test_rank_histogram_flat_when_calibrated_and_u_shaped_when_not(rng):
    obs, ens = _gaussian(rng, m=8)
    counts = rank_histogram(obs, ens)
    assert counts.dims == ("rank",) and counts.sizes["rank"] == 9
    assert int(counts.sum()) == obs.size
    assert _chi2(counts) < 30  # 8 degrees of freedom: p ~ 2e-4 at 30
    obs, ens = _gaussian(rng, m=8, dispersion=0.5)
    counts = rank_histogram(obs, ens).values
    assert counts[0] > 2 * counts[4] and counts[-1] > 2 * counts[4]


def test_pit_histogram_flat_when_calibrated(rng):
    obs, ens = _gaussian(rng, m=8)
    counts = pit_histogram(obs, ens, bins=10)
    assert counts.sizes["pit_bin"] == 10 and int(counts.sum()) == obs.size
    assert _chi2(counts) < 35
    obs, ens = _gaussian(rng, m=8, dispersion=2.0)
    counts = pit_histogram(obs, ens, bins=10).values
    assert counts[4] > 2 * counts[0]  # over-dispersive: dome-shaped


def test_ties_are_broken_uniformly_and_reproducibly(rng):
    # 8-bit-like data: the truth equals every member, so its rank is decided by the tie-breaking alone
    n, m = 9000, 5
    obs = xr.DataArray(np.zeros((n // 30, 30)), dims=("init", "x"))
    ens = xr.DataArray(np.zeros((n // 30, m, 30)), dims=("init", "member", "x"))
    counts = rank_histogram(obs, ens, seed=3)
    assert _chi2(counts) < 25
    again = rank_histogram(obs, ens, seed=3)
    xr.testing.assert_identical(counts, again)
    chunked = rank_histogram(obs.chunk(init=7), ens.chunk(init=11), seed=3)
    assert chunked.chunks is not None
    xr.testing.assert_identical(counts, chunked.compute())
    # chunked along several dims: the same ranks, and no rechunking on the way (dask warns when it must)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        finely = rank_histogram(obs.chunk(init=7, x=3), ens.chunk(init=7, x=3), seed=3)
    xr.testing.assert_identical(counts, finely.compute())
    rank_a, _ = rank_and_pit(obs, ens, seed=3)
    rank_b, _ = rank_and_pit(obs, ens, seed=4)
    assert (rank_a != rank_b).mean() > 0.5


def test_partial_ties(rng):
    obs = xr.DataArray(np.ones(4000), dims="point")
    members = np.array([0.0, 1.0, 1.0, 2.0])  # one below, two tied: rank 1, 2 or 3 equally likely
    ens = xr.DataArray(np.broadcast_to(members, (4000, 4)), dims=("point", "member"))
    counts = rank_histogram(obs, ens).values
    assert counts[0] == 0 and counts[4] == 0
    assert np.all(np.abs(counts[1:4] - 4000 / 3) < 4 * np.sqrt(4000 / 3))


def test_missing_values_are_not_ranked(rng):
    obs, ens = _gaussian(rng, n=100, m=4)
    ens = ens.copy(data=ens.values.copy())
    ens.values[0, 1] = np.nan
    rank, pit = rank_and_pit(obs, ens)
    assert rank.values[0] == -1 and np.isnan(pit.values[0])
    rank, pit = rank_and_pit(obs, ens, skipna=True)
    assert rank.values[0] == -1 and np.isfinite(pit.values[0])
    assert int(rank_histogram(obs, ens).sum()) == 99


def test_reduce_over_some_dims_and_errors(rng):
    obs = xr.DataArray(rng.normal(size=(50, 3)), dims=("init", "lead_time"))
    ens = xr.DataArray(rng.normal(size=(50, 6, 3)), dims=("init", "member", "lead_time"))
    assert rank_histogram(obs, ens, dim="init").dims == ("lead_time", "rank")
    assert ensemble_mean_rmse(obs, ens, dim="init").dims == ("lead_time",)
    with pytest.raises(ForecastError, match="cannot reduce"):
        rank_histogram(obs, ens, dim="time")
    with pytest.raises(ForecastError, match="member"):
        ensemble_spread(obs)


def test_metrics_do_not_import_torch():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    code = "import sys, forecast.metrics; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
