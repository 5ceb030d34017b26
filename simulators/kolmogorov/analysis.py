"""Physics checks of Kolmogorov flow: energy spectrum and its slope, energy balance, error growth (Lyapunov).

All on the simulation grid (``run.full_fields``), in lattice units; wavenumbers are integers ``k`` (in units of
``2 pi / L``), so the forcing sits at ``k = n``. Derivatives are spectral (the grid is periodic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.common.flow import block_mean
from simulators.kolmogorov.config import KolmogorovConfig
from simulators.kolmogorov.lattice import Lattice, build_lattice
from simulators.kolmogorov.run import full_fields


def _wavenumbers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ky, kx) integer wavenumbers of an n x n grid, broadcastable to (n, n)."""
    k = np.fft.fftfreq(n, 1.0 / n)
    return k[:, None], k[None, :]


def energy_spectrum(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shell-summed kinetic energy spectrum ``E[k]``, k = 0 .. n/2 (integer shells |k| in [k - 1/2, k + 1/2)),
    normalised so that ``E.sum()`` is the mean kinetic energy per cell (up to the corners beyond n/2)."""
    n = u.shape[0]
    ky, kx = _wavenumbers(n)
    density = 0.5 * (np.abs(np.fft.fft2(u)) ** 2 + np.abs(np.fft.fft2(v)) ** 2) / n**4
    shells = np.rint(np.hypot(ky, kx)).astype(int)
    spectrum = np.bincount(shells.ravel(), weights=density.ravel())
    return spectrum[: n // 2 + 1]


def spectral_slope(spectrum: np.ndarray, k_min: int, k_max: int) -> float:
    """The least-squares slope of log E against log k over k_min <= k <= k_max."""
    k = np.arange(k_min, k_max + 1)
    return float(np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0])


def dissipation(u: np.ndarray, v: np.ndarray, viscosity: float) -> float:
    """Mean viscous dissipation per cell, nu <|grad u|^2> (= nu <omega^2> on a periodic grid), spectrally."""
    n = u.shape[0]
    ky, kx = _wavenumbers(n)
    k2 = (2 * np.pi / n) ** 2 * (kx**2 + ky**2)
    power = (np.abs(np.fft.fft2(u)) ** 2 + np.abs(np.fft.fft2(v)) ** 2) / n**4
    return float(viscosity * np.sum(k2 * power))


def injection(u: np.ndarray, config: KolmogorovConfig) -> float:
    """Mean power of the forcing per cell, <F_x u> (rows of ``u`` are y)."""
    y = np.arange(u.shape[0]) + 0.5
    force = config.amplitude * np.sin(2 * np.pi * config.wavenumber * y / config.grid_size)
    return float(np.mean(force[:, None] * u))


@dataclass
class Statistics:
    """Time series of the statistically steady state, one sample per ``every`` steps."""

    energy: np.ndarray  # mean kinetic energy per cell
    injection: np.ndarray
    dissipation: np.ndarray
    spectrum: np.ndarray  # time-mean E[k]

    @property
    def balance_error(self) -> float:
        """|<injection> - <dissipation>| / <injection> over the series."""
        return float(abs(self.injection.mean() - self.dissipation.mean()) / self.injection.mean())


def statistics(lattice: Lattice, samples: int, every: int) -> Statistics:
    """Sample energy, injection, dissipation and the spectrum ``samples`` times, ``every`` steps apart."""
    config = lattice.config
    energy, inject, dissipate, spectra = [], [], [], []
    for _ in range(samples):
        lattice.advance(every)
        fields = full_fields(lattice)
        u, v = fields["u"], fields["v"]
        energy.append(0.5 * float(np.mean(u * u + v * v)))
        inject.append(injection(u, config))
        dissipate.append(dissipation(u, v, config.viscosity))
        spectra.append(energy_spectrum(u, v))
    return Statistics(np.array(energy), np.array(inject), np.array(dissipate), np.mean(spectra, axis=0))


def separation(a: dict, b: dict) -> float:
    """RMS vorticity difference of two states, relative to the RMS vorticity of ``a``."""
    return float(np.sqrt(np.mean((a["vorticity"] - b["vorticity"]) ** 2) / np.mean(a["vorticity"] ** 2)))


def twin_separation(
    config: KolmogorovConfig,
    seed: int,
    amplitude: float,
    steps: int,
    every: int,
    lattice: Lattice | None = None,
    stored: bool = True,
) -> np.ndarray:
    """``separation`` every ``every`` steps (``steps // every`` values) between the lattice's trajectory from its
    current state (default: ``build_lattice(config, seed)`` after ``config.spinup_steps``) and a twin that starts
    from the same state perturbed by ``amplitude`` x U below a stored pixel (``Lattice.perturb`` with ``seed``),
    measured on the stored frames' coarse-graining (in double precision), or on the lattice with
    ``stored=False``. The lattice is left where the unperturbed trajectory ends."""

    def observe() -> dict:
        fields = full_fields(lattice)
        return {k: block_mean(f, config.scale) for k, f in fields.items()} if stored else fields

    if lattice is None:
        lattice = build_lattice(config, seed)
        lattice.advance(config.spinup_steps)
    start = lattice.save_state()
    lattice.perturb(seed, amplitude)
    twin = []
    for _ in range(steps // every):
        lattice.advance(every)
        twin.append(observe())
    lattice.restore_state(start)
    out = []
    for state in twin:
        lattice.advance(every)
        out.append(separation(observe(), state))
    return np.array(out)


def growth_rate(times: np.ndarray, errors: np.ndarray, low: float, high: float) -> tuple[float, np.ndarray]:
    """The exponential growth rate (per unit of ``times``) of ``errors`` fitted over their first passage from
    ``low`` to ``high`` (log-linear least squares), and the mask of the samples used."""
    errors = np.asarray(errors)
    above = np.nonzero(errors >= high)[0]
    end = above[0] if above.size else errors.size
    mask = np.zeros(errors.size, bool)
    mask[:end] = errors[:end] >= low
    if mask.sum() < 3:
        raise ValueError(f"fewer than 3 samples between {low:g} and {high:g}: no exponential range")
    return float(np.polyfit(times[mask], np.log(errors[mask]), 1)[0]), mask


def ensemble_spread(values: np.ndarray) -> np.ndarray:
    """The spread of a truth group's ``(init, member, lead_time, y, x)`` field per (init, lead): sqrt(2) times
    the members' RMS standard deviation (ddof 1), over the field's RMS, so that in expectation it equals the
    ``separation`` of two members (and grows at the same exponential rate as a twin pair)."""
    variance = values.var(axis=1, ddof=1).mean(axis=(-2, -1))
    scale = np.sqrt(np.mean(values**2, axis=(1, 2, 3, 4)))[:, None]
    return np.sqrt(2 * variance) / scale


def rates_over_a_common_window(
    times: np.ndarray, curves: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """The growth rates of several error curves (rows of ``curves``) fitted over one window: the samples where
    every curve is within its first passage from ``low`` to ``high`` (finite-time rates vary along a
    trajectory, so curves compared over different windows differ by that, not by their growth). Returns
    the rates and the window's mask."""
    mask = np.logical_and.reduce([growth_rate(times, c, low, high)[1] for c in curves])
    if mask.sum() < 3:
        raise ValueError(f"the curves share fewer than 3 samples between {low:g} and {high:g}")
    rates = np.array([np.polyfit(times[mask], np.log(c[mask]), 1)[0] for c in curves])
    return rates, mask


def lyapunov_exponent(times: np.ndarray, separations: np.ndarray, low: float, high: float) -> float:
    """The leading Lyapunov exponent from twin pairs (rows of ``separations``): the growth rate of their mean
    log-separation (the geometric mean over pairs, the average that defines the exponent) over its first
    passage from ``low`` to ``high``."""
    return growth_rate(times, np.exp(np.mean(np.log(separations), axis=0)), low, high)[0]
