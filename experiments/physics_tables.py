"""The physical-consistency columns of the calibration tables, their notes and their figure.

For every row of a calibration table (``calibration_tables.tabulate``) this reads two scores files:

- the row's scores from the truth starts (``OUT/scores/ROW.nc``): ``ke_band_error``, the log ratio of the
  members' kinetic energy to the truth ensemble's per octave band of wave numbers and lead
  (``forecast.metrics.spectral_bands``); columns ``ke_band_error_k<first>-<last>`` (mean over leads; 0 = the
  truth's energy at those scales, -0.69 = half of it, +0.69 = twice);
- the scores of its long rollout (``OUT/long/scores/ROW.nc``, ``calibration.long_rollout``): from a few starts of
  the train group (the test sequences are too short), several times the training window. ``stability_horizon``:
  the first lead at which a member of any variable is not finite or leaves the data's range
  (``forecast.metrics.stability``; ``none`` where none did within ``long_horizon`` leads), ``stable_fraction``
  the share of rollouts still within it at the last lead (the strictest variable); on the vortex street the
  Strouhal number of every member at the probe (``forecast.metrics.shedding``): ``strouhal`` (mean over members
  and starts), ``strouhal_truth`` (the simulator's own run from the same starts) and ``strouhal_error`` (mean
  |St_member / St_truth - 1|).

Where a score cannot be defined the cell is ``n/a`` and ``notes`` says why, from the scores file's own
attributes (``strouhal_not_computed``) or from what is missing (no long rollout for the Oracle: the truth group
has only the benchmark's horizon).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: where a calibration run keeps its long rollouts and their scores (under OUT)
LONG_FOLDER = "long"
NOT_AVAILABLE = "n/a"


def long_files(out: Path, name: str) -> tuple[Path, Path]:
    """The long rollout's forecast file and scores file of the row named ``name`` in the run folder ``out``."""
    return out / LONG_FOLDER / "forecasts" / f"{name}.nc", out / LONG_FOLDER / "scores" / f"{name}.nc"


def band_label(first: int, last: int) -> str:
    return f"ke_band_error_k{first}" if first == last else f"ke_band_error_k{first}-{last}"


def band_errors(scores_file: Path) -> dict[str, list[float]]:
    """``ke_band_error`` of a scores file per band (by column name), per lead; {} where the file has none."""
    from forecast.scores_file import open_scores

    with open_scores(scores_file) as scores:
        if "ke_band_error" not in scores.dataset:
            return {}
        error = scores.dataset["ke_band_error"].load()
    first, last = error["band_first"].values, error["band_last"].values
    return {
        band_label(int(a), int(b)): error.isel(band=i).values.tolist()
        for i, (a, b) in enumerate(zip(first, last))
    }


def long_summary(scores_file: Path | None) -> dict:
    """The long rollout's columns (stability and Strouhal), ``stable_fraction`` per lead and the ``notes``."""
    from forecast.scores_file import open_scores

    empty = {"stability_horizon": NOT_AVAILABLE, "stable_fraction": math.nan, "long_horizon": NOT_AVAILABLE}
    empty.update(strouhal=math.nan, strouhal_truth=math.nan, strouhal_error=math.nan)
    if scores_file is None or not scores_file.is_file():
        reason = "no long rollout (the truth group holds only the benchmark's horizon)"
        return {"columns": empty, "stable_per_lead": [], "notes": [f"stability and Strouhal: {reason}"]}
    with open_scores(scores_file) as scores:
        ds = scores.dataset.load()
        names = scores.variables
    horizons = [float(ds[f"stability_horizon_{v}"]) for v in names]
    stable = np.min([ds[f"stable_fraction_{v}"].values for v in names], axis=0)
    left = [h for h in horizons if not math.isnan(h)]
    columns = {
        "stability_horizon": min(left) if left else "none",
        "stable_fraction": float(stable[-1]),
        "long_horizon": int(ds.sizes["lead_time"]),
    }
    strouhal, notes = _strouhal(ds)
    return {"columns": {**columns, **strouhal}, "stable_per_lead": stable.tolist(), "notes": notes}


def _strouhal(ds) -> tuple[dict, list[str]]:
    """``strouhal``, ``strouhal_truth``, ``strouhal_error`` of a long rollout's scores, and why where n/a."""
    nan = {"strouhal": math.nan, "strouhal_truth": math.nan, "strouhal_error": math.nan}
    if "strouhal_number" not in ds:
        return nan, [f"Strouhal: {ds.attrs.get('strouhal_not_computed', 'not in the scores file')}"]
    members, error = ds["strouhal_number"].values, ds["strouhal_relative_error"].values
    defined = np.isfinite(error)
    if not defined.any():
        return nan, ["Strouhal: no member's probe series has a shedding peak (constant or not finite)"]
    notes = []
    if not defined.all():
        notes.append(
            f"Strouhal: {int((~defined).sum())} of {defined.size} member series had no shedding peak"
        )
    values = {
        "strouhal": float(np.mean(members[defined])),
        "strouhal_truth": float(np.nanmean(ds["strouhal_number_obs"].values)),
        "strouhal_error": float(np.mean(np.abs(error[defined]))),
    }
    return values, notes


def physics_of_rows(
    scores_files: Mapping[str, Path], long_scores: Mapping[str, Path | None]
) -> dict[str, dict]:
    """Per row label: ``bands`` (per lead), ``columns`` (the table's), ``stable_per_lead`` and ``notes``."""
    return {
        label: {"bands": band_errors(path), **long_summary(long_scores.get(label))}
        for label, path in scores_files.items()
    }


def summary_columns(physics: dict) -> dict:
    """The table's physics columns of one row: band errors averaged over leads, then the long rollout's."""
    bands = {k: _mean(v) for k, v in physics["bands"].items()}
    return {**bands, **physics["columns"]}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def legend() -> str:
    """What ``calibration.md`` says of the physics columns, above the notes on its n/a cells."""
    from forecast.metrics.shedding import PROBE_DIAMETERS
    from forecast.metrics.stability import RANGE_MARGIN

    return (
        "Physical consistency: ke_band_error_kA-B = ln of the members' kinetic energy over the truth ensemble's in "
        "the octave band of wave numbers A..B (mean over leads; 0 = the truth's energy at those scales, -0.69 half "
        "of it); from each row's long rollout (a few starts of the train group, long_horizon leads): "
        "stability_horizon, the first lead at which a member of any variable is not finite or leaves the data's "
        f"range widened by {RANGE_MARGIN:g} of its span on each side ('none': none did), stable_fraction, the "
        "share of rollouts still within it at the last lead; on the vortex street, strouhal (members) and "
        f"strouhal_truth (the simulator from the same starts) at the probe {PROBE_DIAMETERS:g} D behind the "
        "cylinder, strouhal_error = mean |St / St_truth - 1|. Where a cell is n/a:"
    )


def note_lines(physics: Mapping[str, dict]) -> list[str]:
    """Markdown lines: why a physics cell is n/a, row by row (rows with the same reason named together)."""
    by_note: dict[str, list[str]] = {}
    for label, row in physics.items():
        for note in row["notes"]:
            by_note.setdefault(note, []).append(label)
    return [f"- {', '.join(labels)}: {note}" for note, labels in by_note.items()]


def plot_physics(physics: Mapping[str, dict], path: Path, oracle: str) -> Path | None:
    """``physics_scores.png``: each row's band error per lead (one panel per band) and the share of its long
    rollouts still within the data's range per lead; None where no row has either."""
    bands = next((list(row["bands"]) for row in physics.values() if row["bands"]), [])
    if not bands and not any(row["stable_per_lead"] for row in physics.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecast.atomic import atomic_output

    fig, axes = plt.subplots(
        1, len(bands) + 1, figsize=(3.2 * (len(bands) + 1), 3.4), constrained_layout=True, squeeze=False
    )
    axes = axes[0]
    for label, row in physics.items():
        style = {"color": "k", "linestyle": "--"} if label == oracle else {}
        for ax, band in zip(axes, bands):
            values = row["bands"].get(band, [])
            ax.plot(range(1, len(values) + 1), values, marker=".", label=label, **style)
        stable = row["stable_per_lead"]
        if stable:
            axes[-1].plot(range(1, len(stable) + 1), stable, label=label, **style)
    for ax, band in zip(axes, bands):
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set(xlabel="lead time", ylabel="ln(E / E_truth)", title=band.replace("ke_band_error_", "band "))
    axes[-1].set(
        xlabel="lead time (long rollouts)", ylabel="share within the data's range", ylim=(-0.05, 1.05)
    )
    axes[-1].set_title("stability")
    axes[0].legend(fontsize=7)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
