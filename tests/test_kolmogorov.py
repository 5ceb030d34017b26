"""Kolmogorov flow: options, the analysis functions on closed forms, and (slow) the store with its truth group."""

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from forecast.errors import ForecastError
from forecast.field_store import is_complete, open_field_store
from simulators.kolmogorov import KolmogorovConfig, analysis

TINY = dict(size=(16, 16), scale=2, frames=6, test_frames=7, every=32, spinup=64, write_batch=4, time_chunk=2)
TRUTH = dict(truth_members=3, truth_inits=2, truth_horizon=3, truth_context=1)


# ------------------------------------------------------------------------------------------------ options
def test_units_follow_chandler_and_kerswell():
    config = KolmogorovConfig(size=(32, 32), scale=2, reynolds=50.0, velocity=0.05)
    length = 64 / (2 * np.pi)
    assert config.length == pytest.approx(length)
    assert config.viscosity == pytest.approx(0.05 * length / 50.0)  # Re = U l / nu
    assert np.sqrt(config.amplitude * length) == pytest.approx(0.05)  # U = sqrt(A l)
    assert config.every == round(length / 0.05 / 2)  # default: half a time unit
    assert config.runs == 2 and config.grid_cells == 64 * 64


@pytest.mark.parametrize(
    "options, message",
    [
        ({"reynolds": -1.0}, "Reynolds"),
        ({"velocity": 0.3}, "Mach"),
        ({"wavenumber": 9, "size": (32, 32)}, "--wavenumber"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"size": (16, 32)}, "square"),
        ({"reynolds": 1e6}, "unstable"),
        ({"truth_members": 2, "scale": 1}, "below a"),
        ({"truth_members": 2, "truth_inits": 2000}, "--test-frames"),
        ({"perturbation": 1.0}, "--perturbation"),
    ],
)
def test_meaningless_options_are_one_line_errors(options, message):
    with pytest.raises(ForecastError, match=message) as info:
        KolmogorovConfig(**options)
    assert "\n" not in str(info.value)


def test_cli_bad_option_is_one_line(tmp_path, capsys):
    from forecast.cli import main

    assert main(["simulate", "kolmogorov", str(tmp_path / "k.zarr"), "--velocity", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--velocity" in err
    assert not (tmp_path / "k.zarr").exists()


# ------------------------------------------------------------------------------------------------ analysis
def test_spectrum_of_one_mode_and_its_dissipation():
    n, k0, nu = 32, 3, 0.01
    y = np.arange(n)[:, None] + np.zeros((1, n))
    u = np.sin(2 * np.pi * k0 * y / n)  # energy 1/4 per cell, all in shell k0
    v = np.zeros_like(u)
    spectrum = analysis.energy_spectrum(u, v)
    assert spectrum[k0] == pytest.approx(0.25) and spectrum.sum() == pytest.approx(0.25)
    # nu <|grad u|^2> = nu (2 pi k0 / n)^2 / 2
    assert analysis.dissipation(u, v, nu) == pytest.approx(nu * (2 * np.pi * k0 / n) ** 2 / 2)


def test_slope_of_a_synthetic_power_law_field(rng):
    n, slope = 128, -3.0
    ky, kx = np.fft.fftfreq(n, 1 / n)[:, None], np.fft.fftfreq(n, 1 / n)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1
    # E(k) ~ k^slope in 2-D shells: |u_hat|^2 ~ k^(slope - 1)
    amplitude = k ** ((slope - 1) / 2)
    fields = [np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((n, n))))) for _ in range(2)]
    measured = analysis.spectral_slope(analysis.energy_spectrum(*fields), 4, 40)
    assert measured == pytest.approx(slope, abs=0.15)


def test_growth_rate_recovers_an_exponential_and_refuses_no_range():
    t = np.linspace(0, 40, 161)
    errors = 1e-7 * np.exp(0.3 * t) / (1 + 1e-7 * np.exp(0.3 * t))  # logistic: exponential, then saturated
    rate, mask = analysis.growth_rate(t, errors, 1e-5, 1e-2)
    assert rate == pytest.approx(0.3, rel=0.01) and mask.sum() > 10
    with pytest.raises(ValueError, match="no exponential range"):
        analysis.growth_rate(t, np.full_like(t, 1e-8), 1e-5, 1e-2)


def test_ensemble_spread_equals_pair_separation_in_expectation(rng):
    base = rng.standard_normal((1, 1, 2, 64, 64))
    members = base + 0.01 * rng.standard_normal((1, 400, 2, 64, 64))
    members[:, :, 1] = base[:, :, 1] + 0.03 * rng.standard_normal(
        (1, 400, 64, 64)
    )  # lead 2: thrice the spread
    spreads = analysis.ensemble_spread(members)
    assert spreads.shape == (1, 2) and spreads[0, 1] / spreads[0, 0] == pytest.approx(3, rel=0.02)
    spread = spreads[0, 0]
    pair = analysis.separation({"vorticity": members[0, 0, 0]}, {"vorticity": members[0, 1, 0]})
    assert spread == pytest.approx(pair, rel=0.05)
    assert spread == pytest.approx(0.01 * np.sqrt(2), rel=0.05)


# ------------------------------------------------------------------------------------------------ the store
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from simulators.kolmogorov import generate

    path = tmp_path_factory.mktemp("kolmogorov") / "k.zarr"
    config = KolmogorovConfig(seeds=(0, 5), **TINY, **TRUTH)
    generate(path, config, scheduler="synchronous", progress=False)
    return path, config


@pytest.mark.slow
def test_store_layout_coordinates_and_whole_open_without_warnings(store):
    path, config = store
    assert is_complete(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(path, engine="zarr")
    assert set(tree.children) == {"train", "test", "truth"}
    train = open_field_store(path, "train")
    assert train["vorticity"].dims == ("sequence", "time", "y", "x")
    assert train["u"].shape == (2, 6, 16, 16)
    assert list(train["seed"].values) == [0, 5]
    assert float(train["reynolds"][0]) == config.reynolds
    assert train.attrs["frame_interval"] == 32 and train.attrs["downsampling"] == 2
    np.testing.assert_allclose(train["x"].values[:2], [0.5, 2.5])  # block centres on the 32-cell grid
    # runs differ by seed: different trajectories
    assert not np.allclose(train["u"][0].values, train["u"][1].values)
    truth = xr.open_zarr(path, group="truth").load()
    assert truth["vorticity"].dims == ("init", "member", "lead_time", "y", "x")
    assert truth["vorticity"].shape == (4, 3, 3, 16, 16)
    assert list(truth["init_time"].values) == config.truth_init_times * 2
    assert truth["perturbation_seed"].shape == (4, 3)
    assert "perturbation" in truth.attrs["truth_description"]


@pytest.mark.slow
def test_truth_members_start_below_a_pixel_from_the_verifying_run(store):
    """At lead 1 the members and the verifying test frame agree to far below the field's size (the
    perturbation has no pixel mean); they are distinct realisations, not copies."""
    path, config = store
    truth = xr.open_zarr(path, group="truth").load()
    test = open_field_store(path, "test")
    for i in range(truth.sizes["init"]):
        seq, t0 = int(truth["sequence"][i]), int(truth["init_time"][i])
        obs = test["u"].sel(time=t0).isel(sequence=seq).values
        members = truth["u"].isel(init=i, lead_time=0).values
        scale = np.abs(obs).max()
        assert np.abs(members - obs).max() < 1e-3 * scale
        assert np.abs(members[0] - members[1]).max() > 0  # perturbed, not identical


@pytest.mark.slow
def test_resume_skips_finished_runs_and_refuses_other_options(store, tmp_path):
    from simulators.kolmogorov import generate

    path, config = store
    before = zarr.open_group(str(path))["train"]["u"][:]
    result = generate(path, config, scheduler="synchronous", progress=False, resume=True)
    assert result.skipped == [0, 1] and not result.runs
    np.testing.assert_array_equal(zarr.open_group(str(path))["train"]["u"][:], before)
    with pytest.raises(ForecastError, match="different options"):
        generate(path, KolmogorovConfig(seeds=(0, 5), **{**TINY, "every": 16}, **TRUTH), resume=True)
