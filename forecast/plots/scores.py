"""Figures from scores files: one curve (or panel) per model, labelled by the file's ``model_name``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from forecast.metrics.forecast_file import model_name


def _units(da: xr.DataArray) -> str:
    return f" [{da.attrs['units']}]" if da.attrs.get("units") else ""


def _lead_label(ds: xr.Dataset) -> str:
    units = ds["lead_time"].attrs.get("units", "frames") if "lead_time" in ds.coords else "frames"
    return f"lead time [{units}]"


def plot_crps_vs_lead(scores: list[xr.Dataset], var: str) -> Figure:
    """CRPS and 1/CRPS (the paper's figure 3, higher is better) against lead time, one curve per model."""
    fig, (ax_crps, ax_inv) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ds in scores:
        crps = ds[f"crps_mean_{var}"]
        label = f"{model_name(ds)} ({ds.attrs.get('estimator', 'ensemble')}, m={ds.attrs.get('ensemble_size', '?')})"
        ax_crps.plot(crps["lead_time"], crps, marker="o", label=label)
        ax_inv.plot(crps["lead_time"], 1 / crps, marker="o", label=label)
    units = _units(scores[0][f"crps_mean_{var}"])
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
    maps = [ds[f"crps_{var}"].isel(lead_time=lead_index) for ds in scores]
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


def plot_rank_histograms(scores: xr.Dataset, var: str, max_panels: int = 4) -> Figure:
    """Rank histograms (relative frequency) at a few lead times, with the flat line of a calibrated ensemble."""
    hist = scores[f"rank_histogram_{var}"]
    n_lead = hist.sizes["lead_time"]
    picks = sorted(set(np.linspace(0, n_lead - 1, min(max_panels, n_lead)).round().astype(int)))
    fig, axes = plt.subplots(
        1, len(picks), figsize=(3.2 * len(picks), 3), squeeze=False, constrained_layout=True
    )
    for ax, i in zip(axes[0], picks):
        counts = hist.isel(lead_time=i)
        freq = counts / max(int(counts.sum()), 1)
        ax.bar(counts["rank"], freq, width=1.0, color="tab:blue", edgecolor="white")
        ax.axhline(1 / counts.sizes["rank"], color="k", ls="--", lw=1, label="calibrated")
        ax.set(title=f"lead time {hist['lead_time'].values[i]}", xlabel="rank of truth among members")
    axes[0][0].set_ylabel("relative frequency")
    axes[0][0].legend(fontsize="small")
    fig.suptitle(
        f"Rank histograms of {var}: {model_name(scores)} (m={scores.attrs.get('ensemble_size', '?')})"
    )
    return fig


def plot_spread_skill(scores: list[xr.Dataset], var: str) -> Figure:
    """RMSE of the ensemble mean and spread against lead time, and their (corrected) ratio."""
    fig, (ax_err, ax_ratio) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for k, ds in enumerate(scores):
        colour = f"C{k}"
        rmse, spread = ds[f"rmse_{var}"], ds[f"spread_{var}"]
        ax_err.plot(rmse["lead_time"], rmse, color=colour, marker="o", label=f"{model_name(ds)}: RMSE")
        ax_err.plot(
            spread["lead_time"], spread, color=colour, ls="--", marker="x", label=f"{model_name(ds)}: spread"
        )
        ratio = ds[f"spread_skill_{var}"]
        ax_ratio.plot(ratio["lead_time"], ratio, color=colour, marker="o", label=model_name(ds))
    ax_err.set(
        xlabel=_lead_label(scores[0]),
        ylabel=f"{var}{_units(scores[0][f'rmse_{var}'])}",
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
    for ds in scores:
        spectrum = ds["ke_spectrum"].isel(lead_time=lead_index)
        ax.loglog(k[1:], spectrum.values[1:], marker=".", label=f"{model_name(ds)} members")
    lead = truth["lead_time"].values
    ax.set(
        xlabel=f"wave number [{truth['wavenumber'].attrs.get('units', 'cycles per domain')}]",
        ylabel=f"kinetic energy per shell{_units(truth)}",
        title=f"Kinetic-energy spectrum at lead time {lead}",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig
