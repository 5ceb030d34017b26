"""Physics: the simulated shedding frequency matches Williamson's empirical Strouhal relation."""

import numpy as np
import pytest

from forecast.field_store import open_field_store
from simulators.karman import KarmanConfig, generate
from simulators.karman.analysis import strouhal_number, williamson_strouhal


@pytest.mark.slow
@pytest.mark.long(seconds=40)  # its wall seconds in a CI run: orders the files (conftest)
def test_strouhal_number_matches_williamson_at_re_100_and_150(tmp_path):
    # The default geometry at 128x128 (D = 8, 6% blockage), after its 3 flow-throughs of spin-up: 80 frames
    # every 128 steps, ~9 shedding periods (240 frames gave St 0.1695 / 0.1831, these 0.1696 / 0.1832).
    config = KarmanConfig(reynolds=(100.0, 150.0), frames=80, test_frames=8, size=(128, 128))
    generate(tmp_path / "karman.zarr", config, scheduler="synchronous", progress=False)
    ds = open_field_store(tmp_path / "karman.zarr", "train")
    for index, reynolds in enumerate(config.reynolds):
        measured = strouhal_number(ds, index)
        expected = williamson_strouhal(reynolds)
        print(
            f"Re = {reynolds:g}: St = {measured:.4f}, Williamson {expected:.4f}, {100 * (measured / expected - 1):+.1f}%"
        )
        assert abs(measured / expected - 1) < 0.10, (reynolds, measured, expected)


@pytest.mark.slow
def test_cumulant_collision_is_stable_from_re_50_to_1000_at_the_default_resolution(tmp_path):
    # Re = 1000 at D = 8 means omega = 1.9976, where SRT diverges; the run checks for divergence every frame.
    config = KarmanConfig(reynolds=(50.0, 1000.0), frames=40, test_frames=10, size=(128, 128))
    generate(tmp_path / "range.zarr", config, scheduler="synchronous", progress=False)
    ds = open_field_store(tmp_path / "range.zarr", "test")
    u = ds["u"].values
    assert np.isfinite(u).all() and np.abs(u).max() < 0.2
    # the high-Re wake is unsteady: the probe's v changes sign within the stored frames
    v = ds["v"].isel(sequence=1).sel(x=64, y=63.5, method="nearest").values
    assert v.min() < 0 < v.max()


@pytest.mark.slow
def test_shedding_persists_under_inlet_noise_at_the_benchmark_amplitude(tmp_path):
    # The demo's geometry (32x32 frames block-averaged from a 64x192 lattice, D = 4, every 64 steps) with the
    # inlet noise recommended for the calibration benchmark (A = 0.1): 200 frames, ~30 shedding periods.
    # Deterministic, this geometry gives St = 0.1674 at Re 150 (Williamson 0.1834: -8.7%, the coarse D = 4);
    # measured with noise: 0.1665. The noise must leave the shedding (and its frequency) in place.
    config = KarmanConfig(
        reynolds=(150.0,), frames=200, test_frames=8, every=64, size=(32, 32), scale=2, inflow_noise=0.1
    )
    generate(tmp_path / "noisy.zarr", config, scheduler="synchronous", progress=False)
    ds = open_field_store(tmp_path / "noisy.zarr", "train")
    measured = strouhal_number(ds, 0)
    print(f"Re = 150, inlet noise 0.1: St = {measured:.4f}")
    assert abs(measured / williamson_strouhal(150.0) - 1) < 0.10
    assert abs(measured / 0.1674 - 1) < 0.03  # the deterministic street's frequency at this resolution
