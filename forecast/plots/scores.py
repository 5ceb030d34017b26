"""Figures from scores files: one curve (or panel) per model, labelled by the file's ``model_name``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from forecast.forecast_file import model_name
from forecast.scores_file import score_name

#: markers of the first ten models' curves, the next ten's, ...: matplotlib's ten colours repeat after ten
MARKERS = ("o", "s", "^", "D")


def series_style(k: int) -> dict[str, str]:
    """Colour and marker of the ``k``-th model's curves: distinct for up to 40 models (table 1 has 12)."""
    return {"color": f"C{k % 10}", "marker": MARKERS[k // 10 % len(MARKERS)]}


def _units(da: xr.DataArray) -> str:
    return f" [{da.attrs['units']}]" if da.attrs.get("units") else ""


def _lead_label(ds: xr.Dataset) -> str:
    """Lead times are in the store's time units; dimensionless leads 1, 2, ... count frames."""
    if "lead_time" not in ds.coords:
        return "lead time [frames]"
    lead = ds["lead_time"]
    units = lead.attrs.get("units", "frames")
    if units not in ("1", ""):
        return f"lead time [{units}]"
    counts = lead.dtype.kind in "iu" and np.array_equal(lead.values, np.arange(1, lead.size + 1))
    return "lead time [frames]" if counts else "lead time"


def plot_crps_vs_lead(scores: list[xr.Dataset], var: str) -> Figure:
    """CRPS and 1/CRPS (the paper's figure 3, higher is better) against lead time, one curve per model."""
    fig, (ax_crps, ax_inv) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for k, ds in enumerate(scores):
        crps = ds[score_name("crps_mean", var)]
        label = f"{model_name(ds)} ({ds.attrs.get('estimator', 'ensemble')}, m={ds.attrs.get('ensemble_size', '?')})"
        ax_crps.plot(crps["lead_time"], crps, **series_style(k), label=label)
        ax_inv.plot(crps["lead_time"], 1 / crps, **series_style(k), label=label)
    units = _units(scores[0][score_name("crps_mean", var)])
    ax_crps.set(
        xlabel=_lead_label(scores[0]), ylabel=f"CRPS{units}", title=f"CRPS of {var} (lower is better)"
    )
    ax_inv.set(
        xlabel=_lead_label(scores[0]), ylabel="1 / CRPS", title=f"1 / CRPS of {var} (higher is better)"
    )
    for ax in (ax_crps, ax_inv):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def plot_crps_maps(scores: list[xr.Dataset], var: str, lead_index: int = -1) -> Figure:
    """Spatial CRPS at one lead time, one panel per model on a shared colour scale (the paper's figure 4)."""
    maps = [ds[score_name("crps", var)].isel(lead_time=lead_index) for ds in scores]
    vmax = max(float(m.max()) for m in maps)
    fig, axes = plt.subplots(
        1, len(maps), figsize=(4 * len(maps) + 1, 4), squeeze=False, constrained_layout=True
    )
    for ax, ds, crps in zip(axes[0], scores, maps):
        image = ax.imshow(
            crps.values, origin=ds.attrs.get("image_origin", "lower"), cmap="magma_r", vmin=0, vmax=vmax
        )
        lead = crps["lead_time"].values if "lead_time" in crps.coords else lead_index
        ax.set(title=f"{model_name(ds)}: lead time {lead}", xlabel="x", ylabel="y")
    fig.colorbar(image, ax=axes[0].tolist(), label=f"CRPS of {var}{_units(maps[0])} (darker = worse)")
    return fig


def plot_rank_histograms(scores: xr.Dataset, var: str, max_panels: int = 4, truth: bool = False) -> Figure:
    """Rank histograms (relative frequency) at a few lead times, with the flat line of a calibrated ensemble.

    ``truth=True`` draws ``rank_histogram_truth_V`` instead: the verifying truth's rank within the truth
    ensemble of a known-answer store, the benchmark's own sanity check.
    """
    hist = scores[score_name("rank_histogram_truth" if truth else "rank_histogram", var)]
    rank_dim = "truth_rank" if truth else "rank"
    n_lead = hist.sizes["lead_time"]
    picks = sorted(set(np.linspace(0, n_lead - 1, min(max_panels, n_lead)).round().astype(int)))
    fig, axes = plt.subplots(
        1, len(picks), figsize=(3.2 * len(picks), 3.3), squeeze=False, constrained_layout=True
    )
    for ax, i in zip(axes[0], picks):
        counts = hist.isel(lead_time=i)
        freq = counts / max(int(counts.sum()), 1)
        ax.bar(
            counts[rank_dim], freq, width=1.0, color="tab:green" if truth else "tab:blue", edgecolor="white"
        )
        ax.axhline(1 / counts.sizes[rank_dim], color="k", ls="--", lw=1, label="calibrated")
        who = "truth ensemble" if truth else "members"
        ax.set(title=f"lead time {hist['lead_time'].values[i]}", xlabel=f"rank of truth among {who}")
    axes[0][0].set_ylabel("relative frequency")
    axes[0][0].legend(fontsize="small")
    if truth:
        size = scores.attrs.get("truth_ensemble_size", "?")
        fig.suptitle(
            f"Rank of the verifying truth of {var} within the truth ensemble (K={size}): the benchmark's own check.\n"
            "Flat = the truth ensemble is calibrated; U = it is too narrow. Says nothing about the model.",
            fontsize="medium",
        )
    else:
        fig.suptitle(
            f"Rank histograms of {var}: {model_name(scores)} (m={scores.attrs.get('ensemble_size', '?')}). "
            "Flat = calibrated, U = over-confident, dome = under-confident",
            fontsize="medium",
        )
    return fig


def plot_truth_scores(scores: list[xr.Dataset], var: str) -> Figure:
    """Scores against a known answer, one curve per model: CRPS beside the oracle CRPS, their ratio, the
    spread ratio to the truth ensemble and the energy distance to it, each against lead time."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    (ax_crps, ax_ratio), (ax_spread, ax_energy) = axes
    for k, ds in enumerate(scores):
        style, name = series_style(k), model_name(ds)
        lead = ds["lead_time"]
        ax_crps.plot(lead, ds[score_name("crps_mean", var)], **style, label=name)
        ax_ratio.plot(lead, ds[score_name("crps_oracle_ratio", var)], **style, label=name)
        ax_spread.plot(lead, ds[score_name("spread_ratio_truth", var)], **style, label=name)
        ax_energy.plot(lead, ds[score_name("energy_distance", var)], **style, label=name)
    oracle = scores[0][score_name("crps_oracle_mean", var)]
    size = scores[0].attrs.get("truth_ensemble_size", "?")
    ax_crps.plot(
        oracle["lead_time"], oracle, color="k", ls="--", lw=2, label=f"oracle (truth ensemble, K={size})"
    )
    for ax, level in ((ax_ratio, 1.0), (ax_spread, 1.0), (ax_energy, 0.0)):
        ax.axhline(level, color="k", ls="--", lw=1)
    units = _units(scores[0][score_name("crps_mean", var)])
    lead_label = _lead_label(scores[0])
    ax_crps.set(
        xlabel=lead_label,
        ylabel=f"CRPS{units}",
        title="CRPS and the oracle CRPS (dashed): the floor\nfor any forecast from the same frames",
    )
    ax_ratio.set(
        xlabel=lead_label,
        ylabel="CRPS / oracle CRPS",
        title="CRPS / oracle CRPS: 1 = as good as the perfect model,\n2 = twice its error (lower is better)",
    )
    ax_spread.set(
        xlabel=lead_label,
        ylabel="spread / truth-ensemble spread",
        title="Spread ratio to the truth ensemble: 1 = the right uncertainty,\n<1 over-confident, >1 too uncertain",
    )
    ax_energy.set(
        xlabel=lead_label,
        ylabel=f"energy distance{units}",
        title="Energy distance to the truth ensemble per pixel:\n0 = the same distribution (lower is better)",
    )
    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        f"{var} against the known answer (estimator: {scores[0].attrs.get('estimator', 'ensemble')})"
    )
    return fig


def plot_spread_skill(scores: list[xr.Dataset], var: str) -> Figure:
    """RMSE of the ensemble mean and spread against lead time, and their (corrected) ratio."""
    fig, (ax_err, ax_ratio) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for k, ds in enumerate(scores):
        style = series_style(k)
        rmse, spread = ds[score_name("rmse", var)], ds[score_name("spread", var)]
        ax_err.plot(rmse["lead_time"], rmse, **style, label=f"{model_name(ds)}: RMSE")
        ax_err.plot(
            spread["lead_time"],
            spread,
            color=style["color"],
            ls="--",
            marker="x",
            label=f"{model_name(ds)}: spread",
        )
        ratio = ds[score_name("spread_skill", var)]
        ax_ratio.plot(ratio["lead_time"], ratio, **style, label=model_name(ds))
    ax_err.set(
        xlabel=_lead_label(scores[0]),
        ylabel=f"{var}{_units(scores[0][score_name('rmse', var)])}",
        title="RMSE of the ensemble mean and spread",
    )
    ax_ratio.axhline(1, color="k", ls="--", lw=1)
    ax_ratio.set(
        xlabel=_lead_label(scores[0]),
        ylabel="sqrt((m+1)/m) spread / RMSE",
        title="spread-skill ratio (1 = calibrated, <1 over-confident)",
    )
    for ax in (ax_err, ax_ratio):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def plot_ke_spectra(scores: list[xr.Dataset], lead_index: int = -1) -> Figure:
    """Kinetic-energy spectra of the members and of the truth at one lead time (log-log)."""
    fig, ax = plt.subplots(figsize=(6, 4.5), constrained_layout=True)
    truth = scores[0]["ke_spectrum_obs"].isel(lead_time=lead_index)
    k = truth["wavenumber"].values
    ax.loglog(k[1:], truth.values[1:], color="k", lw=2, label="truth")
    for i, ds in enumerate(scores):
        spectrum = ds["ke_spectrum"].isel(lead_time=lead_index)
        ax.loglog(k[1:], spectrum.values[1:], **series_style(i), ms=3, label=f"{model_name(ds)} members")
    lead = truth["lead_time"].values
    ax.set(
        xlabel=f"wave number [{truth['wavenumber'].attrs.get('units', 'cycles per domain')}]",
        ylabel=f"kinetic energy per shell{_units(truth)}",
        title=f"Kinetic-energy spectrum at lead time {lead}",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig
