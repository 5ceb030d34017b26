"""The physics of Kolmogorov flow, measured: chaos (twin runs, Lyapunov exponent), the truth ensemble's spread
growth, the energy spectrum's slope, the energy balance. Figures and a JSON of the numbers into OUT.

    python experiments/kolmogorov_physics.py --out docs/results/kolmogorov [--size 32] [--scale 2]
                                             [--reynolds 100] [--samples 400] [--twins 3]

One lattice (seed 0) is spun up; ``--samples`` states one T/2 apart give the spectrum and the energy budget;
``--twins`` twin pairs (the state at successive points of the run, perturbed by 1e-6 U below a stored pixel)
give the separation curves and the Lyapunov exponent (fit between 1e-5 and 1e-2 of the RMS vorticity); a small
store with a truth group (8 members) gives the ensemble's spread growth, fitted over the same range.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulators.kolmogorov import KolmogorovConfig, analysis, generate  # noqa: E402
from simulators.kolmogorov.lattice import build_lattice  # noqa: E402

#: the twin runs' and truth members' separation is fitted between these fractions of the RMS vorticity
FIT_RANGE = (1e-5, 1e-2)
TWIN_AMPLITUDE = 1e-6


def twins(config: KolmogorovConfig, lattice, pairs: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """(times in T, separations (pairs, samples)) of ``pairs`` twin pairs started ``duration`` T apart."""
    every = int(round(config.time_unit / 4))
    steps = int(duration * config.time_unit)
    curves = []
    for pair in range(pairs):
        # on the lattice (not the stored frames); the next pair starts where this one's reference ended
        curves.append(
            analysis.twin_separation(config, pair, TWIN_AMPLITUDE, steps, every, lattice, stored=False)
        )
    times = np.arange(1, len(curves[0]) + 1) * every / config.time_unit
    return times, np.array(curves)


def paired_growth(config: KolmogorovConfig, seeds: tuple, members: int, horizon: int) -> dict:
    """Truth spread and twin separation from the same states: a store with one truth start per run (seeds
    ``seeds``, ``members`` members of ``horizon`` frames T/2 apart), and for each start a twin pair from the very
    state the members fork from (the run's deterministic trajectory up to there), both on the stored frames."""
    import xarray as xr

    store_config = KolmogorovConfig(
        seeds=seeds,
        size=config.size,
        scale=config.scale,
        reynolds=config.reynolds,
        frames=2,
        test_frames=horizon + 4,
        truth_members=members,
        truth_inits=1,
        truth_horizon=horizon,
        truth_context=2,
        perturbation=TWIN_AMPLITUDE,
    )
    every = store_config.every
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "k.zarr", store_config, scheduler="synchronous", progress=False)
        truth = xr.open_zarr(Path(tmp) / "k.zarr", group="truth")
        spread = analysis.ensemble_spread(truth["vorticity"].values)
        init_times = truth["init_time"].values
    twins = []
    for seed, init_time in zip(seeds, init_times):
        lattice = build_lattice(store_config, seed)
        lattice.advance(
            store_config.spinup_steps + int(init_time) * every
        )  # the state of frame init_time - 1
        twins.append(
            analysis.twin_separation(store_config, seed, TWIN_AMPLITUDE, horizon * every, every, lattice)
        )
    leads = np.arange(1, horizon + 1) * every / config.time_unit
    return {"leads": leads, "spread": spread, "twins": np.array(twins)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=32, help="stored pixels per side")
    parser.add_argument("--scale", type=int, default=2, help="cells per stored pixel")
    parser.add_argument("--reynolds", type=float, default=100.0)
    parser.add_argument("--samples", type=int, default=400, help="states for the spectrum and the budget")
    parser.add_argument("--twins", type=int, default=6, help="twin pairs on the lattice")
    parser.add_argument(
        "--starts", type=int, default=4, help="truth starts (one per seed) with a paired twin"
    )
    parser.add_argument("--duration", type=float, default=40.0, help="T per twin pair")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    config = KolmogorovConfig(size=(args.size, args.size), scale=args.scale, reynolds=args.reynolds)
    lattice = build_lattice(config, 0)
    lattice.advance(config.spinup_steps)
    stats = analysis.statistics(lattice, args.samples, int(round(config.time_unit / 2)))
    times, separations = twins(config, lattice, args.twins, args.duration)
    rates = [analysis.growth_rate(times, s, *FIT_RANGE)[0] for s in separations]
    lyapunov = analysis.lyapunov_exponent(times, separations, *FIT_RANGE)
    paired = paired_growth(config, tuple(range(args.starts)), members=8, horizon=int(2 * args.duration))
    leads, spread = paired["leads"], paired["spread"]
    common = [
        analysis.rates_over_a_common_window(leads, np.array([s, p]), *FIT_RANGE)[0]
        for s, p in zip(spread, paired["twins"])
    ]
    spread_rates = [float(c[0]) for c in common]
    paired_rates = [float(c[1]) for c in common]
    n = config.wavenumber
    fit = (n + 1, 3 * n)
    result = {
        "command": "python experiments/kolmogorov_physics.py " + " ".join(argv or sys.argv[1:]),
        "lattice": config.grid_size,
        "reynolds": config.reynolds,
        "time_unit_steps": config.time_unit,
        "finite_time_rates_per_T": rates,
        "lyapunov_per_T": lyapunov,
        "doubling_time_T": float(np.log(2) / lyapunov),
        "truth_spread_growth_per_T": spread_rates,
        "paired_twin_growth_per_T": paired_rates,
        "spread_over_twin_rate": [a / b for a, b in zip(spread_rates, paired_rates)],
        "truth_spread_growth_mean_per_T": float(np.mean(spread_rates)),
        "paired_twin_growth_mean_per_T": float(np.mean(paired_rates)),
        "spectral_fit_range": fit,
        "spectral_slope": analysis.spectral_slope(stats.spectrum, *fit),
        "spectral_slope_k_f+1_to_L/4": analysis.spectral_slope(stats.spectrum, n + 1, config.grid_size // 4),
        "energy_balance_error": stats.balance_error,
        "injection": float(stats.injection.mean()),
        "dissipation": float(stats.dissipation.mean()),
        "energy_over_U2": float(stats.energy.mean() / config.velocity**2),
        "seconds": time.time() - start,
    }
    (out / "physics.json").write_text(json.dumps(result, indent=2))
    figures(out, config, stats, times, separations, leads, spread, paired["twins"], fit, result)
    print(json.dumps(result, indent=2))
    return 0


def figures(out, config, stats, times, separations, leads, spread, paired, fit, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    ax = axes[0]
    for s in separations:
        ax.semilogy(times, s, color="C0", alpha=0.7)
    t = np.linspace(0, times[-1], 50)
    lam = result["lyapunov_per_T"]
    geometric = np.exp(np.mean(np.log(separations), axis=0))
    ax.semilogy(times, geometric, "k", lw=2, label="geometric mean")
    anchor = np.argmin(np.abs(geometric - 1e-4))
    ax.semilogy(t, geometric[anchor] * np.exp(lam * (t - times[anchor])), "k--", label=f"exp({lam:.3f} t/T)")
    ax.plot([], [], color="C0", label=f"{len(separations)} twin pairs on the lattice")
    ax.axhspan(*FIT_RANGE, color="0.9", zorder=0)
    ax.set(xlabel="t / T", ylabel="RMS vorticity difference / RMS vorticity", title="Twin runs")
    ax.legend(fontsize=8)
    ax = axes[1]
    for i, (s, p) in enumerate(zip(spread, paired)):
        ax.semilogy(leads, s, color=f"C{i}", label=f"start {i}: truth spread" if i == 0 else None)
        ax.semilogy(
            leads, p, color=f"C{i}", ls="--", label="twin pair from the same state" if i == 0 else None
        )
    ax.axhspan(*FIT_RANGE, color="0.9", zorder=0)
    ratio = result["truth_spread_growth_mean_per_T"] / result["paired_twin_growth_mean_per_T"]
    ax.set(xlabel="lead / T", title=f"Truth ensemble (8 members) vs twins, stored frames: rates x{ratio:.2f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "error_growth.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    k = np.arange(1, stats.spectrum.size)
    ax.loglog(k, stats.spectrum[1:], "o-", ms=3, label="E(k), time mean")
    kf = np.arange(fit[0], fit[1] + 1)
    slope = result["spectral_slope"]
    ax.loglog(kf, stats.spectrum[fit[0]] * (kf / fit[0]) ** slope, "r-", lw=2, label=f"fit k^{slope:.2f}")
    ax.loglog(kf, stats.spectrum[fit[0]] * (kf / fit[0]) ** -3.0, "k--", label="k^-3")
    ax.axvline(config.wavenumber, color="0.5", ls=":", label="forcing wavenumber")
    ax.set(xlabel="k (2 pi / L)", ylabel="E(k)", title="Energy spectrum")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "spectrum.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    t = np.arange(1, stats.injection.size + 1) / 2
    ax.plot(t, stats.injection, label="injection <F u>")
    ax.plot(t, stats.dissipation, label="dissipation nu <|grad u|^2>")
    ax.set(
        xlabel="t / T",
        ylabel="power per cell (lattice units)",
        title=f"Energy balance: means differ by {100 * stats.balance_error:.1f}%",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "energy_balance.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
