"""The physical-consistency scores against known answers: kinetic energy per octave band, the Strouhal number at
the street's probe and the long-rollout stability horizon; in the registry, the streamed pass and `forecast score`."""

import dask
import numpy as np
import pytest
import xarray as xr

from forecast.cli import main
from forecast.metrics import score_forecast, shedding, stability
from forecast.metrics.physics import kinetic_energy_spectrum
from forecast.metrics.scores import build_scores
from forecast.metrics.spectral_bands import band_energy, band_error, octave_bands
from forecast.metrics.synthetic import synthetic_forecast


def test_octave_bands_cover_every_shell_but_the_mean_once():
    assert octave_bands(9) == [(1, 1), (2, 3), (4, 8)]  # 16 x 16 frames: the Nyquist shell 8 joins 4-7
    assert octave_bands(17) == [(1, 1), (2, 3), (4, 7), (8, 16)]
    assert octave_bands(13) == [(1, 1), (2, 3), (4, 7), (8, 12)]
    assert octave_bands(2) == [(1, 1)] and octave_bands(1) == []


def _power_law_field(n: int, slope: float, seed: int) -> np.ndarray:
    """A real periodic field whose shell energies follow k^slope (random phases)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n) * n, np.fft.fftfreq(n) * n, indexing="ij"))
    amplitude = np.where(k > 0, np.maximum(k, 1) ** ((slope - 1) / 2), 0.0)
    return np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((n, n)))).real


def test_band_error_is_zero_against_itself_and_two_ln_c_for_a_scaled_copy():
    n, dims = 32, ("lead_time", "y", "x")
    u = xr.DataArray(np.stack([_power_law_field(n, -3.0, s) for s in (0, 1)]), dims=dims)
    v = xr.DataArray(np.stack([_power_law_field(n, -3.0, s) for s in (2, 3)]), dims=dims)
    spectrum = kinetic_energy_spectrum(u, v)
    # the field has the power law it was built with: the slope of the shell energies over the octaves is ~ -3
    energy = band_energy(spectrum).mean("lead_time")
    width = np.array([b - a + 1 for a, b in octave_bands(n // 2 + 1)])
    centre = np.array([np.sqrt(a * b) for a, b in octave_bands(n // 2 + 1)])
    slope = np.polyfit(np.log(centre[1:-1]), np.log(energy.values[1:-1] / width[1:-1]), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.5)
    np.testing.assert_allclose(band_error(spectrum, spectrum).values, 0.0, atol=1e-12)
    scaled = kinetic_energy_spectrum(1.5 * u, 1.5 * v)
    error = band_error(scaled, spectrum)
    assert error.dims == ("lead_time", "band") and error.sizes["band"] == 4
    np.testing.assert_allclose(error.values, 2 * np.log(1.5), rtol=1e-10)
    assert list(error["band_first"].values) == [1, 2, 4, 8] and list(error["band_last"].values) == [
        1,
        3,
        7,
        16,
    ]

    # too smooth: the small scales removed, their bands' energy far below the truth's
    def smoothed(f):  # a periodic 3-point mean along x and y
        f = (f.roll(x=1) + f + f.roll(x=-1)) / 3
        return (f.roll(y=1) + f + f.roll(y=-1)) / 3

    smooth = band_error(kinetic_energy_spectrum(smoothed(u), smoothed(v)), spectrum)
    assert (smooth.isel(band=-1) < -1.0).all() and (abs(smooth.isel(band=0)) < 0.05).all()
    assert (smooth.diff("band") < 0).all()  # the finer the scales, the more of their energy is lost


def test_peak_frequency_finds_a_sinusoid_and_refuses_a_constant():
    t = np.arange(64)
    for f in (0.07, 0.15, 0.23):
        assert shedding.peak_frequency(np.sin(2 * np.pi * f * t + 0.3)) == pytest.approx(f, rel=2e-3)
    noisy = np.sin(2 * np.pi * 0.15 * t) + 0.3 * np.random.default_rng(0).normal(size=64)
    assert shedding.peak_frequency(noisy) == pytest.approx(0.15, rel=0.02)  # noise adds no crossings here
    assert np.isnan(shedding.peak_frequency(np.full(64, 2.0)))
    assert np.isnan(shedding.peak_frequency(np.where(t == 5, np.nan, np.sin(t))))


#: the synthetic street: x, y in lattice cells (every other cell stored), D = 2, U = 0.05, 16 lattice steps a frame:
#: St = f D / (U frame_interval) = 2.5 f for f in cycles per frame
ST_PER_FREQUENCY = 2.0 / (0.05 * 16)


def _street_forecast(n_lead: int = 64, blow_up: tuple[int, int, int] | None = None) -> xr.Dataset:
    """A forecast of a small vortex street: v at the probe (5 D behind the cylinder) swings at 0.15 cycles per
    frame in the truth and at 0.14, 0.15, 0.16 in the three members; ``blow_up`` = (init, member, lead) sets
    that member's u to infinity from that lead (1-based) on."""
    fc = synthetic_forecast(n_init=2, n_member=3, n_lead=n_lead, ny=8, nx=16, dispersion=0.5, seed=5)
    fc = fc.assign_coords(x=2 * fc["x"], y=2 * fc["y"])
    fc = fc.assign_coords(
        cylinder_x=("init", [4.0, 4.0]), cylinder_y=("init", [8.0, 8.0]),
        cylinder_diameter=("init", [2.0, 2.0]), inflow_velocity=("init", [0.05, 0.05]),
    )  # fmt: skip
    fc.attrs["frame_interval"] = 16
    t = np.arange(1, n_lead + 1)
    v, v_obs = fc["v"].values.copy(), fc["v_obs"].values.copy()
    for m, f in enumerate((0.14, 0.15, 0.16)):
        v[:, m, :, 4, 7] = np.sin(2 * np.pi * f * t)  # the probe: x = 14 = 4 + 5 D, y = 8
    v_obs[:, :, 4, 7] = np.sin(2 * np.pi * 0.15 * t + 1.0)
    fc["v"].values[:], fc["v_obs"].values[:] = v, v_obs
    if blow_up is not None:
        i, m, lead = blow_up
        fc["u"].values[i, m, lead - 1 :] = np.inf
    return fc


def test_strouhal_number_of_each_member_at_the_probe_in_the_scores():
    scores = score_forecast(_street_forecast(), block_inits=1)
    assert scores["strouhal_number"].dims == ("init", "member")
    expected = ST_PER_FREQUENCY * np.array([0.14, 0.15, 0.16])
    np.testing.assert_allclose(scores["strouhal_number"].values, np.tile(expected, (2, 1)), rtol=3e-3)
    np.testing.assert_allclose(scores["strouhal_number_obs"].values, ST_PER_FREQUENCY * 0.15, rtol=3e-3)
    np.testing.assert_allclose(scores["strouhal_relative_error"].values[0], [-1 / 15, 0, 1 / 15], atol=3e-3)
    assert "strouhal_not_computed" not in scores.attrs and "5 D" in scores.attrs["strouhal_probe"]


def test_strouhal_is_not_computed_where_it_cannot_be_and_the_file_says_why():
    short = score_forecast(_street_forecast(n_lead=16))
    assert "strouhal_number" not in short
    assert (
        "has 16 lead times" in short.attrs["strouhal_not_computed"]
        and "64" in short.attrs["strouhal_not_computed"]
    )
    plain = score_forecast(synthetic_forecast(n_init=2, n_member=3, n_lead=3, ny=8, nx=8))
    assert plain.attrs["strouhal_not_computed"].startswith("not a vortex street")
    untimed = _street_forecast()
    del untimed.attrs["frame_interval"]
    assert "frame_interval" in shedding.unavailable(untimed)


@pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning"
)  # the spectra of an infinite member
def test_a_member_that_leaves_the_range_at_lead_k_gives_horizon_k():
    scores = score_forecast(_street_forecast(n_lead=64, blow_up=(1, 2, 23)), block_inits=1)
    assert float(scores["stability_horizon_u"]) == 23
    fraction = scores["stable_fraction_u"].values  # 6 rollouts, one of them out from lead 23 on
    np.testing.assert_allclose(fraction[:22], 1.0)
    np.testing.assert_allclose(fraction[22:], 5 / 6)
    assert np.isnan(float(scores["stability_horizon_v"]))
    assert scores.attrs["stability_note"].startswith(
        "no member of v left the data's range within the forecast's 64"
    )
    # a finite value beyond the widened range counts too; one within the margin does not
    fc = synthetic_forecast(n_init=2, n_member=2, n_lead=5, ny=6, nx=6, seed=1)
    low, high = (float(x) for x in stability.data_range(fc["u_obs"]))
    fc["u"].values[0, 1, 3, 2, 2] = high + 1e-6
    fc["u"].values[1, 0, 1, 0, 0] = low + 1e-6
    scores = score_forecast(fc)
    assert float(scores["stability_horizon_u"]) == 4
    assert (scores["stable_fraction_u"].values == [1, 1, 1, 0.75, 0.75]).all()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_the_physics_scores_stream_as_the_registry_computes_them():
    fc = _street_forecast(blow_up=(0, 1, 40))
    streamed = score_forecast(fc, block_inits=1)
    lazy = build_scores(fc)
    registry = dask.compute(dict(lazy.data_vars))[0]
    names = [
        "ke_band_error",
        "stable_fraction_u",
        "stability_horizon_u",
        "strouhal_number",
        "stable_fraction_v",
    ]
    for name in names:
        assert streamed[name].attrs == lazy[name].attrs, name
        np.testing.assert_allclose(
            streamed[name].values, np.asarray(registry[name]), rtol=1e-10, err_msg=name
        )
    assert streamed["ke_band_error"].attrs["reference"] == "verifying truth"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_forecast_score_writes_the_physics_scores(tmp_path):
    _street_forecast(blow_up=(0, 0, 30)).to_netcdf(tmp_path / "fc.nc")
    assert main(["score", str(tmp_path / "fc.nc"), "--out", str(tmp_path / "s.nc"), "--quiet"]) == 0
    with xr.open_dataset(tmp_path / "s.nc") as scores:
        assert {"ke_band_error", "strouhal_number", "strouhal_number_obs", "stable_fraction_u"} <= set(scores)
        assert float(scores["stability_horizon_u"]) == 30
        assert scores["ke_band_error"].dims == ("lead_time", "band") and "band_first" in scores.coords
        assert "widened by 0.25" in scores.attrs["stability_range"]
