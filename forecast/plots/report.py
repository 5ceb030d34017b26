"""`forecast plot`: a folder of figures from any mix of scores files and forecast files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import xarray as xr

from forecast.atomic import atomic_output
from forecast.claims import claim_output
from forecast.errors import ForecastError
from forecast.forecast_file import forecast_variables, model_name, open_netcdf
from forecast.io_errors import writing
from forecast.plots import scores as figures
from forecast.plots.samples import animate_rollout, plot_sample_grid
from forecast.scores_file import is_scores_file, score_name, score_variables


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _save(fig, path: Path, written: list[Path], dpi: int = 120) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    written.append(path)


def _name_models(
    datasets: list[xr.Dataset], kinds: list[str], stems: list[str], labels: list[str] | None
) -> None:
    """Set each dataset's ``model_name`` attribute: its label, or its model name made unique among its kind."""
    if labels is not None:
        for ds, label in zip(datasets, labels):
            ds.attrs["model_name"] = label
        return
    names = [model_name(ds, stem) for ds, stem in zip(datasets, stems)]
    for ds, name, kind, stem in zip(datasets, names, kinds, stems):
        clash = sum(n == name and k == kind for n, k in zip(names, kinds)) > 1
        ds.attrs["model_name"] = f"{name} ({stem})" if clash and name != stem else name


def classify(ds: xr.Dataset, name: str) -> str:
    """``"scores"`` or ``"forecast"``; anything else is a ForecastError."""
    if is_scores_file(ds):
        return "scores"
    forecast_variables(ds, name=name)  # raises a one-line error when it is not a forecast file either
    return "forecast"


def _check_index(index: int, size: int, what: str, option: str, path) -> None:
    if not -size <= index < size:
        raise ForecastError(
            f"{option} {index} is out of range: {path} has {size} {what} (0..{size - 1}, or -{size}..-1 from the end)"
        )


def _check_indices(
    scores, forecasts, paths, kinds, lead_index: int, init: int, n_members: int, dpi: int
) -> None:
    """One line for an index outside the files (before any figure or folder is made)."""
    for ds, path in zip(scores, [p for p, k in zip(paths, kinds) if k == "scores"]):
        _check_index(lead_index, ds.sizes.get("lead_time", 0), "lead times", "--lead-index", path)
    for ds, path in zip(forecasts, [p for p, k in zip(paths, kinds) if k == "forecast"]):
        _check_index(init, ds.sizes["init"], "inits", "--init", path)
    if n_members < 1:
        raise ForecastError(f"--members must be >= 1, got {n_members}")
    if dpi < 1:
        raise ForecastError(f"--dpi must be >= 1, got {dpi}")


def plot_files(
    paths: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    lead_index: int = -1,
    init: int = 0,
    n_members: int = 3,
    animation_format: str = "gif",
    variables: list[str] | None = None,
    dpi: int = 120,
    labels: list[str] | None = None,
) -> list[Path]:
    """Write every figure that the given files support into ``out_dir``; returns the written paths.

    ``variables`` limits the figures to those forecast variables (default: all that the files share).
    ``labels`` names each file's model in legends and file names (default: the file's model name; files
    whose model names collide, two RVD runs say, get their file name added).
    """
    out_dir = Path(out_dir)
    if not paths:
        raise ForecastError("no files to plot")
    if labels is not None and len(labels) != len(paths):
        raise ForecastError(f"{len(labels)} labels for {len(paths)} files; give one label per file")
    datasets = [open_netcdf(path) for path in paths]
    kinds = [classify(ds, str(path)) for ds, path in zip(datasets, paths)]
    _name_models(datasets, kinds, [Path(p).stem for p in paths], labels)
    scores = [ds for ds, kind in zip(datasets, kinds) if kind == "scores"]
    forecasts = [ds for ds, kind in zip(datasets, kinds) if kind == "forecast"]
    _check_indices(scores, forecasts, paths, kinds, lead_index, init, n_members, dpi)
    _check_variables(scores, forecasts, variables)
    written: list[Path] = []
    with claim_output(out_dir), writing(out_dir):  # one writer per folder; a failed write is one line
        out_dir.mkdir(parents=True, exist_ok=True)
        if scores:
            _plot_scores(scores, variables, lead_index, out_dir, written, dpi)
        for ds in forecasts:
            _plot_forecast(ds, variables, init, n_members, animation_format, out_dir, written, dpi)
    for ds in scores + forecasts:
        ds.close()
    return written


def _check_variables(
    scores: list[xr.Dataset], forecasts: list[xr.Dataset], variables: list[str] | None
) -> None:
    """One line for an asked-for variable that no file holds."""
    if not variables:
        return
    known = {v for ds in scores for v in score_variables(ds)} | {
        v for ds in forecasts for v in forecast_variables(ds)
    }
    unknown = sorted(set(variables) - known)
    if unknown:
        raise ForecastError(f"no variable {unknown} in the given files (they hold {sorted(known)})")


def _plot_scores(
    scores: list[xr.Dataset],
    variables: list[str] | None,
    lead_index: int,
    out_dir: Path,
    written: list[Path],
    dpi: int,
) -> None:
    """The figures of the scores files, one curve or panel per file, for the variables they all hold."""
    common = [v for v in score_variables(scores[0]) if all(v in score_variables(s) for s in scores[1:])]
    for var in [v for v in common if variables is None or v in variables]:
        _save(figures.plot_crps_vs_lead(scores, var), out_dir / f"crps_lead_time_{var}.png", written, dpi)
        _save(figures.plot_crps_maps(scores, var, lead_index), out_dir / f"crps_map_{var}.png", written, dpi)
        _save(figures.plot_spread_skill(scores, var), out_dir / f"spread_skill_{var}.png", written, dpi)
        for ds in scores:
            name = _slug(model_name(ds))
            _save(
                figures.plot_rank_histograms(ds, var),
                out_dir / f"rank_histogram_{var}_{name}.png",
                written,
                dpi,
            )
        if all(score_name("crps_oracle_mean", var) in s for s in scores):
            _save(figures.plot_truth_scores(scores, var), out_dir / f"truth_scores_{var}.png", written, dpi)
            truth_hist = figures.plot_rank_histograms(scores[0], var, truth=True)
            _save(truth_hist, out_dir / f"truth_rank_histogram_{var}.png", written, dpi)
    if all("ke_spectrum" in s for s in scores):
        _save(figures.plot_ke_spectra(scores, lead_index), out_dir / "ke_spectrum.png", written, dpi)


def _plot_forecast(
    ds: xr.Dataset,
    variables: list[str] | None,
    init: int,
    n_members: int,
    animation_format: str,
    out_dir: Path,
    written: list[Path],
    dpi: int,
) -> None:
    """The sample grid and the rollout animation of each variable of one forecast file."""
    name = _slug(model_name(ds))
    for var in [v for v in forecast_variables(ds) if variables is None or v in variables]:
        _save(
            plot_sample_grid(ds, var, init, n_members),
            out_dir / f"samples_{var}_{name}.png",
            written,
            dpi,
        )
        target = out_dir / f"rollout_{var}_{name}.{animation_format}"
        with atomic_output(target) as tmp:
            made = animate_rollout(ds, var, tmp, init, n_members)
        if made.suffix != target.suffix:  # no ffmpeg: the animation fell back to GIF
            final = target.with_suffix(made.suffix)
            os.replace(made, final)
            target.unlink(missing_ok=True)
            written.append(final)
        else:
            written.append(target)
