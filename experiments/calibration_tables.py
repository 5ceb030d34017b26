"""Calibration tables: rows scored against a truth ensemble, next to the oracle, with issue 11's targets.

Used by ``calibration.py`` (the stochastic vortex street) and by the tables with an SM-MNIST column
(``paper_tables.py``: SM-MNIST's truth ensembles). For a pipeline whose rows forecast exactly the truth starts,
``tabulate`` scores the truth ensemble itself as the ``Oracle`` row and writes, into the pipeline's folder:

- ``calibration.csv`` / ``.md``: one line per row (CRPS, CRPS / oracle, spread-skill ratio with the
  finite-ensemble correction, spread / truth spread, fraction of the truth outside the ensemble's range), each
  averaged over variables and leads; the ``.md`` ends with the verdict on the targets for ``TARGET_ROW``;
- ``calibration_leads.csv``: the same per lead time;
- ``figures/``: the figures of ``forecast plot``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from forecast import pipeline
from forecast.atomic import atomic_output
from forecast.pipeline import ORACLE, per_lead

#: the row whose targets (issue 11) the table checks
TARGET_ROW = "RVD"
#: per-lead columns of ``calibration_leads.csv``
LEAD_COLUMNS = ["crps", "crps_oracle_ratio", "spread_skill", "spread_ratio_truth", "outside_range"]


def targets(lead: dict, calibrated_outside: float) -> dict[str, bool]:
    """Issue 11's targets for one row (the comparison with other rows is made in ``verdict``)."""
    return {
        "spread_skill_0.7_1.4_every_lead": all(0.7 <= s <= 1.4 for s in lead["spread_skill"]),
        "outside_at_most_2x_calibrated": max(lead["outside_range"]) <= 2 * calibrated_outside,
        "crps_at_most_2x_oracle": sum(lead["crps"]) <= 2 * sum(lead["crps_oracle"]),
    }


def summarize(leads: dict[str, dict]) -> list[dict]:
    """One line per row: the per-lead scores of ``leads`` (``pipeline.per_lead``) averaged over leads."""
    rows = []
    for label, lead in leads.items():
        crps, oracle = _avg(lead["crps"]), _avg(lead["crps_oracle"])
        rows.append(
            {
                "model": label,
                "crps": crps,
                "crps_oracle_ratio": crps / oracle if oracle > 0 else math.nan,
                "spread_skill": _avg(lead["spread_skill"]),
                "spread_skill_min": min(_defined(lead["spread_skill"]), default=math.nan),
                "spread_skill_max": max(_defined(lead["spread_skill"]), default=math.nan),
                "spread_ratio_truth": _avg(lead["spread_ratio_truth"]),
                "outside_range": _avg(lead["outside_range"]),
                "outside_range_calibrated": 2 / (lead["members"] + 1) if lead["members"] > 1 else math.nan,
                "members": lead["members"],
            }
        )
    return rows


def _defined(values: list[float]) -> list[float]:
    """``values`` without the NaNs of leads where a score is undefined (a zero denominator: SM-MNIST's truth
    ensemble has no spread before the digits' first bounce)."""
    return [v for v in values if not math.isnan(v)]


def _avg(values: list[float]) -> float:
    """The mean over the leads where the score is defined (NaN if none)."""
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


def write_tables(leads: dict[str, dict], out: Path, heading: str) -> Path:
    """``calibration.csv``, ``calibration_leads.csv`` and ``calibration.md`` (``heading`` first) into ``out``."""
    table = summarize(leads)
    columns = list(table[0])
    with atomic_output(out / "calibration.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in table)
    with atomic_output(out / "calibration_leads.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "lead_time", *LEAD_COLUMNS])
        for label, lead in leads.items():
            for i, t in enumerate(lead["lead_time"]):
                writer.writerow([label, t, *(f"{lead[k][i]:.6g}" for k in LEAD_COLUMNS)])
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
    if TARGET_ROW in leads:
        checks = verdict(leads)
        lines += [
            "",
            f"Targets for {TARGET_ROW}: "
            + ", ".join(f"{k} {VERDICT_WORDS[v]}" for k, v in checks.items()),
        ]
    path = out / "calibration.md"
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
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
) -> dict[str, dict]:
    """The calibration table of ``chain``'s scored ``rows`` (forecast from the truth starts) and the oracle, into
    ``chain.out``, with the figures of ``variables``; returns the per-lead scores by row label."""
    oracle = chain.oracle(rows[0], name=ORACLE)
    files = [chain.scores_file(r) for r in [*rows, oracle]]
    labels = [r.title for r in rows] + [ORACLE]
    leads = {label: per_lead(f) for label, f in zip(labels, files)}
    md = write_tables(leads, chain.out, heading)

    from forecast.plots import plot_files

    plot_files(files, chain.out / "figures", variables=variables, labels=labels)
    log(md.read_text())
    written = [md, *(chain.out / name for name in ("calibration.csv", "calibration_leads.csv", "figures"))]
    log(f"wrote {', '.join(map(str, written))}")
    return leads
