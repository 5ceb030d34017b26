"""Calibration tables: rows scored against a truth ensemble, next to the oracle, with issue 11's targets.

Used by ``calibration.py`` (the stochastic vortex street) and by the tables with an SM-MNIST column
(``paper_tables.py``: SM-MNIST's truth ensembles). For a pipeline whose rows forecast exactly the truth starts,
``tabulate`` scores the truth ensemble itself as the ``Oracle`` row and writes, into the pipeline's folder:

- ``calibration.csv`` / ``.md``: one line per row (CRPS, CRPS / oracle, the fair CRPS and its ratio to the
  oracle's fair CRPS, spread-skill ratio with the finite-ensemble correction, spread / truth spread, fraction of
  the truth outside the ensemble's range and its excess over the calibrated share), each averaged over variables
  and leads; the ``.md`` ends with the verdicts on issue 11's and issue 31's targets for ``TARGET_ROW`` and its
  per-lead figures beside issue 31's targets;
- ``calibration_leads.csv``: the same per lead time;
- ``figures/``: the figures of ``forecast plot``, and ``calibration_targets.png`` (spread-skill and outside-range
  per lead of every ensemble row, with issue 31's bounds);
- where the forecasts have a velocity pair (u, v) or the rows have long rollouts, the physical-consistency
  columns of ``physics_tables`` (kinetic energy per octave band against the truth ensemble, per lead in the
  leads CSV; the long rollouts' stability horizon and, on the street, Strouhal number), their notes (why a cell
  is n/a) in ``calibration.md`` and ``figures/physics_scores.png``.

Like with like. The standard (empirical-CDF) CRPS of an m-member ensemble carries a finite-ensemble term: for
members drawn from the true (Gaussian) distribution its expectation is (1 + 1/m) times the true CRPS, so a perfect
8-member forecast scores about 6% above the 16-member truth ensemble (1.125 / 1.0625). The fair estimator (Ferro
2014) removes that term, so ``crps_fair_oracle_ratio`` (a row's fair CRPS over the truth ensemble's fair CRPS)
compares an 8-member row with the 16-member oracle fairly; both are reported.

Rank histograms: ``outer_excess`` = (share of the truth below or above every member) - 2/(m+1), the excess of the
two outer bins over a calibrated ensemble's share: 0 flat, > 0 U-shaped (too narrow), < 0 domed (too wide).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import physics_tables

from forecast import pipeline
from forecast.atomic import atomic_output
from forecast.pipeline import ORACLE, per_lead

#: the row whose targets (issue 11) the table checks
TARGET_ROW = "RVD"
#: per-lead columns of ``calibration_leads.csv``
LEAD_COLUMNS = [
    "crps",
    "crps_oracle_ratio",
    "crps_fair",
    "crps_fair_oracle_ratio",
    "spread_skill",
    "spread_ratio_truth",
    "outside_range",
    "outer_excess",
]
#: issue 31's targets: spread-skill within these bounds at every lead; the truth outside the range at most this
#: many times the calibrated share 2/(m+1) at every lead; the mean fair CRPS at most this many times the oracle's
SPREAD_SKILL_BOUNDS = (0.9, 1.1)
OUTSIDE_LIMIT = 1.25
FAIR_CRPS_LIMIT = 1.08


def targets(lead: dict, calibrated_outside: float) -> dict[str, bool]:
    """Issue 11's targets for one row (the comparison with other rows is made in ``verdict``)."""
    return {
        "spread_skill_0.7_1.4_every_lead": all(0.7 <= s <= 1.4 for s in lead["spread_skill"]),
        "outside_at_most_2x_calibrated": max(lead["outside_range"]) <= 2 * calibrated_outside,
        "crps_at_most_2x_oracle": sum(lead["crps"]) <= 2 * sum(lead["crps_oracle"]),
    }


def calibrated_outside(members: int) -> float:
    """The share of the truth outside a calibrated m-member ensemble's range: 2/(m+1) (NaN for one member)."""
    return 2 / (members + 1) if members > 1 else math.nan


def add_fair_crps(leads: dict[str, dict], fair: dict[str, list[float]], oracle: str) -> None:
    """Per lead, into ``leads``: each row's fair CRPS (``fair``, by label), its ratio to ``oracle``'s fair CRPS
    and the rank histogram's ``outer_excess`` (the outside-range share over the calibrated one)."""
    reference = fair[oracle]
    for label, lead in leads.items():
        lead["crps_fair"] = list(fair[label])
        lead["crps_fair_oracle"] = list(reference)
        lead["crps_fair_oracle_ratio"] = [
            f / o if o > 0 else math.nan for f, o in zip(lead["crps_fair"], reference)
        ]
        share = calibrated_outside(lead["members"])
        lead["outer_excess"] = [x - share for x in lead["outside_range"]]


def fair_crps_per_lead(forecast_file: Path) -> list[float]:
    """The fair CRPS of a forecast file per lead, averaged over variables (and inits, channels and pixels);
    NaN for a one-member forecast, whose fair CRPS is undefined."""
    import numpy as np

    from forecast.metrics import crps_ensemble, forecast_variables, open_forecast

    forecast = open_forecast(forecast_file)
    try:
        names = forecast_variables(forecast)
        if forecast.sizes.get("member", 1) < 2:
            return [math.nan] * forecast.sizes["lead_time"]
        per_var = []
        for v in names:
            crps = crps_ensemble(forecast[f"{v}_obs"], forecast[v], fair=True)
            per_var.append(crps.mean([d for d in crps.dims if d != "lead_time"]).values)
        return np.mean(per_var, axis=0).tolist()
    finally:
        forecast.close()


def calibration_targets(lead: dict) -> dict[str, bool]:
    """Issue 31's targets for one row: spread-skill within ``SPREAD_SKILL_BOUNDS``, outside-range at most
    ``OUTSIDE_LIMIT`` x calibrated, each at every lead; the mean fair CRPS at most ``FAIR_CRPS_LIMIT`` x the
    oracle's fair CRPS."""
    low, high = SPREAD_SKILL_BOUNDS
    limit = OUTSIDE_LIMIT * calibrated_outside(lead["members"])
    fair, oracle = _avg(lead.get("crps_fair", [math.nan])), _avg(lead.get("crps_fair_oracle", [math.nan]))
    return {
        f"spread_skill_{low}_{high}_every_lead": all(low <= s <= high for s in lead["spread_skill"]),
        f"outside_at_most_{OUTSIDE_LIMIT}x_calibrated_every_lead": max(lead["outside_range"]) <= limit,
        f"fair_crps_at_most_{FAIR_CRPS_LIMIT}x_oracle_fair": fair <= FAIR_CRPS_LIMIT * oracle,
    }


def summarize(leads: dict[str, dict]) -> list[dict]:
    """One line per row: the per-lead scores of ``leads`` (``pipeline.per_lead``) averaged over leads."""
    rows = []
    for label, lead in leads.items():
        crps, oracle = _avg(lead["crps"]), _avg(lead["crps_oracle"])
        fair, fair_oracle = _avg(lead.get("crps_fair", [])), _avg(lead.get("crps_fair_oracle", []))
        rows.append(
            {
                "model": label,
                "crps": crps,
                "crps_oracle_ratio": crps / oracle if oracle > 0 else math.nan,
                "crps_fair": fair,
                "crps_fair_oracle_ratio": fair / fair_oracle if fair_oracle > 0 else math.nan,
                "spread_skill": _avg(lead["spread_skill"]),
                "spread_skill_min": min(_defined(lead["spread_skill"]), default=math.nan),
                "spread_skill_max": max(_defined(lead["spread_skill"]), default=math.nan),
                "spread_ratio_truth": _avg(lead["spread_ratio_truth"]),
                "outside_range": _avg(lead["outside_range"]),
                "outside_range_calibrated": calibrated_outside(lead["members"]),
                "outer_excess": _avg(lead.get("outer_excess", [])),
                "members": lead["members"],
            }
        )
    return rows


def _defined(values: list[float]) -> list[float]:
    """``values`` without the NaNs of leads where a score is undefined (a zero denominator: SM-MNIST's truth
    ensemble has no spread before the digits' first bounce)."""
    return [v for v in values if not math.isnan(v)]


def _avg(values: list[float]) -> float:
    """The mean over the leads where the score is defined (NaN if none, or no leads)."""
    defined = _defined(values)
    return sum(defined) / len(defined) if defined else math.nan


def verdict(leads: dict[str, dict]) -> dict[str, bool | None]:
    """The four targets of issue 11 for ``TARGET_ROW`` (its CRPS against every row but the oracle and RVDs;
    None, not measured, where the table has no such row: a table of RVD's options alone compares nothing)."""
    lead = leads[TARGET_ROW]
    result: dict[str, bool | None] = dict(targets(lead, 2 / (lead["members"] + 1)))
    others = [k for k in leads if k not in (TARGET_ROW, ORACLE) and not k.startswith("RVD")]
    below = all(_avg(lead["crps"]) < _avg(leads[k]["crps"]) for k in others)
    result["crps_below_every_baseline"] = below if others else None
    return result


#: how ``calibration.md`` states a target's verdict
VERDICT_WORDS = {True: "met", False: "NOT met", None: "not measured (no baseline row in this table)"}


def write_tables(
    leads: dict[str, dict], out: Path, heading: str, physics: dict[str, dict] | None = None
) -> Path:
    """``calibration.csv``, ``calibration_leads.csv`` and ``calibration.md`` (``heading`` first) into ``out``;
    with ``physics`` (``physics_tables.physics_of_rows``, by row label) its columns and notes too."""
    table = summarize(leads)
    for row in table if physics else []:
        row.update(physics_tables.summary_columns(physics[row["model"]]))
    columns = list(dict.fromkeys(k for row in table for k in row))
    table = [{c: row.get(c, math.nan) for c in columns} for row in table]
    with atomic_output(out / "calibration.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in table)
    bands = list(dict.fromkeys(b for row in (physics or {}).values() for b in row["bands"]))
    with atomic_output(out / "calibration_leads.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "lead_time", *LEAD_COLUMNS, *bands])
        for label, lead in leads.items():
            per_band = [(physics or {}).get(label, {}).get("bands", {}).get(b, []) for b in bands]
            for i, t in enumerate(lead["lead_time"]):
                values = [lead[k][i] for k in LEAD_COLUMNS] + [
                    b[i] if i < len(b) else math.nan for b in per_band
                ]
                writer.writerow([label, t, *(f"{v:.6g}" for v in values)])
    lines = [
        f"{heading} Means over variables and leads (leads where a score is undefined, with a zero denominator, "
        "left out); spread_skill = sqrt((m+1)/m) spread / RMSE (1 = calibrated, "
        "min and max over leads); outside_range: fraction of the truth outside the ensemble's range "
        "(calibrated: 2/(m+1)).",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c == "model" else "---:" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in table]
    if physics:
        lines += ["", physics_tables.legend(), *physics_tables.note_lines(physics)]
    if TARGET_ROW in leads:
        checks = verdict(leads)
        lines += [
            "",
            f"Targets for {TARGET_ROW}: " + ", ".join(f"{k} {VERDICT_WORDS[v]}" for k, v in checks.items()),
            "",
            f"Issue 31's targets for {TARGET_ROW}: "
            + ", ".join(f"{k} {VERDICT_WORDS[v]}" for k, v in calibration_targets(leads[TARGET_ROW]).items()),
            "",
            *lead_table(leads[TARGET_ROW]),
        ]
    path = out / "calibration.md"
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def lead_table(lead: dict) -> list[str]:
    """Markdown lines: ``TARGET_ROW``'s per-lead figures beside issue 31's targets."""
    low, high = SPREAD_SKILL_BOUNDS
    share = calibrated_outside(lead["members"])
    lines = [
        f"| lead | spread-skill ({low}-{high}) | outside range (<= {OUTSIDE_LIMIT * share:.3f}) | outside / "
        f"calibrated (<= {OUTSIDE_LIMIT}) | outer excess | fair CRPS / oracle's fair | CRPS / oracle |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, t in enumerate(lead["lead_time"]):
        values = [
            lead["spread_skill"][i],
            lead["outside_range"][i],
            lead["outside_range"][i] / share,
            lead["outer_excess"][i],
            lead["crps_fair_oracle_ratio"][i],
            lead["crps_oracle_ratio"][i],
        ]
        lines.append(f"| {_cell(t)} | " + " | ".join(_cell(float(v)) for v in values) + " |")
    return lines


def plot_targets(leads: dict[str, dict], path: Path) -> Path:
    """``calibration_targets.png``: spread-skill and outside-range / calibrated per lead of every ensemble row,
    with issue 31's bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for label, lead in leads.items():
        if lead["members"] < 2:
            continue
        share = calibrated_outside(lead["members"])
        style = {"color": "k", "linestyle": "--"} if label == ORACLE else {}
        left.plot(lead["lead_time"], lead["spread_skill"], marker=".", label=label, **style)
        right.plot(
            lead["lead_time"], [x / share for x in lead["outside_range"]], marker=".", label=label, **style
        )
    left.axhspan(*SPREAD_SKILL_BOUNDS, color="green", alpha=0.12, label="target")
    left.axhline(1.0, color="grey", linewidth=0.8)
    right.axhline(OUTSIDE_LIMIT, color="green", linewidth=1.2, label="target (at most)")
    right.axhline(1.0, color="grey", linewidth=0.8)
    left.set(xlabel="lead time", ylabel="spread-skill ratio", title="spread-skill (1 = calibrated)")
    right.set(
        xlabel="lead time",
        ylabel="outside range / 2/(m+1)",
        title="truth outside the range, over the calibrated share",
    )
    left.legend(fontsize=7)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def _cell(v) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def tabulate(
    chain: pipeline.Pipeline,
    rows: Sequence[pipeline.Row],
    heading: str,
    variables: list[str] | None = None,
    log: Callable[[str], None] = print,
    long_scores: dict[str, Path] | None = None,
    figures: bool = True,
) -> dict[str, dict]:
    """The calibration table of ``chain``'s scored ``rows`` (forecast from the truth starts) and the oracle, into
    ``chain.out``, with the figures of ``variables`` unless ``figures`` is false; returns the per-lead scores by
    row label. ``long_scores``: the scores files of the rows' long rollouts, by row label (``physics_tables``)."""
    oracle = chain.oracle(rows[0], name=ORACLE)
    files = [chain.scores_file(r) for r in [*rows, oracle]]
    labels = [r.title for r in rows] + [ORACLE]
    leads = {label: per_lead(f) for label, f in zip(labels, files)}
    fair = {label: fair_crps_per_lead(chain.forecast_file(r)) for label, r in zip(labels, [*rows, oracle])}
    add_fair_crps(leads, fair, ORACLE)
    physics = physics_tables.physics_of_rows(dict(zip(labels, files)), long_scores or {})
    if not long_scores and not any(row["bands"] for row in physics.values()):
        physics = None  # no velocity pair and no long rollouts (SM-MNIST's tables): no physics columns
    md = write_tables(leads, chain.out, heading, physics)
    if figures:
        from forecast.plots import plot_files

        plot_files(files, chain.out / "figures", variables=variables, labels=labels)
        plot_targets(leads, chain.out / "figures" / "calibration_targets.png")
        if physics:
            physics_tables.plot_physics(physics, chain.out / "figures" / "physics_scores.png", ORACLE)
    log(md.read_text())
    names = ("calibration.csv", "calibration_leads.csv", *(("figures",) if figures else ()))
    written = [md, *(chain.out / name for name in names)]
    log(f"wrote {', '.join(map(str, written))}")
    return leads
