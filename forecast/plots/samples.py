"""Figures from forecast files: a grid of context, truth and members (the paper's figure 2), and animations."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import animation
from matplotlib.figure import Figure

from forecast.forecast_file import CONTEXT_SUFFIX, OBS_SUFFIX, model_name


def _frame(da: xr.DataArray) -> np.ndarray:
    """An image array: RGB for 3 channels (scaled to [0, 1] from 0..255 if needed), else the first channel."""
    values = np.asarray(da.values, dtype=np.float64)
    if "channel" in da.dims:
        values = np.moveaxis(values, da.dims.index("channel"), -1)
        if values.shape[-1] == 3:
            scale = 255.0 if np.nanmax(values) > 1.5 else 1.0
            return np.clip(values / scale, 0, 1)
        return values[..., 0]
    return values


def _origin(da: xr.DataArray) -> str:
    """Video frames (with channels) have row 0 at the top; physical fields have y increasing upwards."""
    return "upper" if "channel" in da.dims else "lower"


def _limits(*arrays: xr.DataArray) -> tuple[float, float]:
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    return low, high


def plot_sample_grid(
    forecast: xr.Dataset, var: str, init: int = 0, n_members: int = 3, max_leads: int = 8
) -> Figure:
    """Rows: context (if stored), truth, then members; columns: frames. One init, shared colour scale."""
    ens = forecast[var].isel(init=init)
    obs = forecast[f"{var}{OBS_SUFFIX}"].isel(init=init)
    context = forecast.get(f"{var}{CONTEXT_SUFFIX}")
    context = context.isel(init=init) if context is not None else None
    n_lead = ens.sizes["lead_time"]
    leads = sorted(set(np.linspace(0, n_lead - 1, min(max_leads, n_lead)).round().astype(int)))
    members = list(range(min(n_members, ens.sizes["member"])))
    rows = (["context"] if context is not None else []) + ["truth"] + [f"member {m}" for m in members]
    vmin, vmax = _limits(obs, ens.isel(member=members))
    fig, axes = plt.subplots(
        len(rows),
        len(leads),
        figsize=(1.8 * len(leads) + 1.2, 1.8 * len(rows)),
        squeeze=False,
        constrained_layout=True,
    )
    image = None
    for r, row in enumerate(rows):
        for c, lead in enumerate(leads):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == "context":
                n_context = context.sizes.get("context_time", 0)
                if c >= n_context:
                    ax.axis("off")
                    continue
                frame = context.isel(context_time=n_context - min(len(leads), n_context) + c)
                ax.set_title(
                    f"context t={frame['context_time'].values}"
                    if "context_time" in frame.coords
                    else "context",
                    fontsize=8,
                )
            elif row == "truth":
                frame = obs.isel(lead_time=lead)
                ax.set_title(f"lead {obs['lead_time'].values[lead]}", fontsize=8)
            else:
                frame = ens.isel(member=members[r - len(rows) + len(members)], lead_time=lead)
            image = ax.imshow(_frame(frame), origin=_origin(frame), cmap="RdBu_r", vmin=vmin, vmax=vmax)
            if c == 0:
                ax.set_ylabel(row, fontsize=9)
    units = forecast[var].attrs.get("units", "")
    if image is not None and image.get_array().ndim == 2:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label=f"{var} [{units}]" if units else var)
    fig.suptitle(f"{model_name(forecast)}: {var}, init {init} (context, truth and members)")
    return fig


def animate_rollout(
    forecast: xr.Dataset, var: str, path: str | Path, init: int = 0, n_members: int = 3, fps: int = 4
) -> Path:
    """Animate truth and members over lead time; ``.mp4`` needs ffmpeg, otherwise write ``.gif`` (Pillow)."""
    path = Path(path)
    if path.suffix == ".mp4" and shutil.which("ffmpeg") is None:
        path = path.with_suffix(".gif")
    ens = forecast[var].isel(init=init)
    obs = forecast[f"{var}{OBS_SUFFIX}"].isel(init=init)
    members = list(range(min(n_members, ens.sizes["member"])))
    vmin, vmax = _limits(obs, ens.isel(member=members))
    fig, axes = plt.subplots(1, 1 + len(members), figsize=(2.6 * (1 + len(members)), 3), squeeze=False)
    panels = [obs] + [ens.isel(member=m) for m in members]
    titles = ["truth"] + [f"member {m}" for m in members]
    images = []
    for ax, panel, title in zip(axes[0], panels, titles):
        images.append(
            ax.imshow(
                _frame(panel.isel(lead_time=0)), origin=_origin(panel), cmap="RdBu_r", vmin=vmin, vmax=vmax
            )
        )
        ax.set(title=title, xticks=[], yticks=[])
    heading = fig.suptitle("")

    def update(i):
        for image, panel in zip(images, panels):
            image.set_data(_frame(panel.isel(lead_time=i)))
        heading.set_text(
            f"{model_name(forecast)}: {var}, init {init}, lead time {obs['lead_time'].values[i]}"
        )
        return images

    movie = animation.FuncAnimation(fig, update, frames=ens.sizes["lead_time"], blit=False)
    writer = animation.FFMpegWriter(fps=fps) if path.suffix == ".mp4" else animation.PillowWriter(fps=fps)
    movie.save(path, writer=writer)
    plt.close(fig)
    return path
