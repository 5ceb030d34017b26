"""Kinetic-energy spectra, divergence, skill scores."""

import numpy as np
import pytest
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics import (
    crps_ensemble,
    crps_skill_score,
    divergence,
    kinetic_energy_spectrum,
    persistence_forecast,
    skill_score,
)


def _grid(n=32):
    x = np.arange(n)
    return np.meshgrid(x, x)  # X varies along x (last axis), Y along y


def test_spectrum_of_a_single_fourier_mode():
    n, k0, amplitude = 32, 5, 0.7
    X, Y = _grid(n)
    u = xr.DataArray(amplitude * np.cos(2 * np.pi * k0 * Y / n), dims=("y", "x"))
    v = xr.DataArray(amplitude * np.sin(2 * np.pi * k0 * X / n), dims=("y", "x"))
    spectrum = kinetic_energy_spectrum(u, v)
    assert spectrum.dims == ("wavenumber",) and spectrum.sizes["wavenumber"] == n // 2 + 1
    # all the energy (amplitude^2 / 2 per component, halved for KE) sits in shell k0
    assert spectrum.sel(wavenumber=k0).item() == pytest.approx(amplitude**2 / 2)
    assert spectrum.drop_sel(wavenumber=k0).max().item() < 1e-20
    assert spectrum.sum().item() == pytest.approx(float((0.5 * (u**2 + v**2)).mean()))


def test_spectrum_is_lazy_and_batched():
    rng = np.random.default_rng(0)
    u = xr.DataArray(rng.normal(size=(4, 3, 16, 16)), dims=("init", "member", "y", "x"))
    v = xr.DataArray(rng.normal(size=(4, 3, 16, 16)), dims=("init", "member", "y", "x"))
    lazy = kinetic_energy_spectrum(u.chunk(init=1), v.chunk(init=1))
    assert lazy.chunks is not None
    eager = kinetic_energy_spectrum(u, v)
    np.testing.assert_allclose(lazy.compute().values, eager.values)
    # Parseval per field: shells sum to the mean kinetic energy, up to the corners beyond the Nyquist circle
    assert np.all(eager.sum("wavenumber") <= (0.5 * (u**2 + v**2)).mean(("y", "x")) + 1e-12)


def _divergence_free(n):
    X, Y = _grid(n)
    a, b = 2 * np.pi * 2 / n, 2 * np.pi * 3 / n
    # u = d psi / dy, v = -d psi / dx for psi = sin(a x) sin(b y): divergence-free; x, y scaled to [0, 1)
    coords = {"x": np.arange(n) / n, "y": np.arange(n) / n}
    u = xr.DataArray(b * n * np.sin(a * X) * np.cos(b * Y), dims=("y", "x"), coords=coords)
    v = xr.DataArray(-a * n * np.cos(a * X) * np.sin(b * Y), dims=("y", "x"), coords=coords)
    return u, v


def test_divergence_free_field_has_small_divergence():
    errors = []
    for n in (64, 128):
        u, v = _divergence_free(n)
        scale = float(abs(u.differentiate("x")).max())  # size of each of the two cancelling terms
        errors.append(float(abs(divergence(u, v)).max()) / scale)
    assert errors[1] < 0.01
    assert errors[1] < errors[0] / 3  # second-order convergence to 0


def test_divergence_of_a_source_uses_coordinate_spacing():
    X, Y = _grid(16)
    spacing = 0.5
    coords = {"x": np.arange(16) * spacing, "y": np.arange(16) * spacing}
    u = xr.DataArray(X * spacing, dims=("y", "x"), coords=coords)  # u = x
    v = xr.DataArray(Y * spacing, dims=("y", "x"), coords=coords)  # v = y
    np.testing.assert_allclose(divergence(u, v).values, 2.0)
    with pytest.raises(ForecastError, match="plane dims"):
        divergence(u.rename(x="lon"), v)


def test_skill_score_closed_form():
    score = xr.DataArray([1.0, 2.0], dims="lead_time")
    reference = xr.DataArray([2.0, 2.0], dims="lead_time")
    np.testing.assert_allclose(skill_score(score, reference).values, [0.5, 0.0])
    with pytest.raises(ForecastError, match="dims"):
        skill_score(score, reference.rename(lead_time="t"))


def test_crps_skill_against_a_worse_ensemble_and_persistence(rng):
    obs = xr.DataArray(rng.normal(size=(200, 4)), dims=("init", "lead_time"))
    good = obs.expand_dims(member=4).transpose("init", "member", "lead_time") + 0.1 * rng.normal(
        size=(200, 4, 4)
    )
    bad = good + 1.0
    skill = crps_skill_score(obs, good, bad, dim="init")
    expected = 1 - crps_ensemble(obs, good).mean("init") / crps_ensemble(obs, bad).mean("init")
    np.testing.assert_allclose(skill.values, expected.values)
    assert np.all(skill > 0.5)
    last = xr.DataArray(rng.normal(size=(200,)), dims="init")
    persistence = persistence_forecast(
        last, obs["lead_time"] if "lead_time" in obs.coords else xr.DataArray(np.arange(4), dims="lead_time")
    )
    assert persistence.dims == ("init", "member", "lead_time") and persistence.sizes["member"] == 1
    np.testing.assert_allclose(crps_ensemble(obs, persistence).values, abs(obs - last).values)


@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 12, 17), (2, 17, 12), (1, 9, 9)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spectrum_of_real_ffts_equals_the_full_fft_shell_sums(shape, dtype):
    """The real-FFT spectrum (mirror columns weighted twice) against the definition on the full FFT."""
    from forecast.metrics.physics import _spectrum_array

    rng = np.random.default_rng(1)
    u, v = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    ny, nx = shape[-2:]
    energy = (np.abs(np.fft.fft2(u.astype(float))) ** 2 + np.abs(np.fft.fft2(v.astype(float))) ** 2) / (
        2.0 * (nx * ny) ** 2
    )
    side = min(nx, ny)
    kappa = np.hypot(np.fft.fftfreq(ny)[:, None] * side, np.fft.fftfreq(nx)[None, :] * side)
    shell = np.rint(kappa).astype(int)
    expected = np.stack([energy[..., shell == k].sum(-1) for k in range(side // 2 + 1)], axis=-1)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(_spectrum_array(u, v), expected, rtol=rtol, atol=rtol * expected.max())
