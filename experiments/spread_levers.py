"""Spread calibration measured on a validation store, cross-validated over its starts (issue 31).

    python experiments/spread_levers.py --validation VAL_OUT [--row RVD] [--out DIR]

``VAL_OUT`` is a run of ``experiments/calibration.py --noise-seed S`` (a validation store: the benchmark's recipe
with another draw of the inlet turbulence), with the row's uncalibrated forecast ``VAL_OUT/forecasts/ROW.nc``
and the truth ensemble written as a forecast (``VAL_OUT/forecasts/Oracle.nc``, made by that run's table; made
here if missing). For each way of fitting the spread factors (``forecast.spread_calibration``: spread-skill 1 or
lowest fair CRPS, per lead or one for every lead), the starts are split in two (even and odd inits); the factors
fitted on one half calibrate the other, so every start is scored with factors that never saw it. Printed per
variant, with the same definitions as the calibration table: spread-skill per lead (min-max, and how many
leads lie in 0.9-1.1), the truth outside the ensemble's range over the calibrated 2/(m+1) (max over leads), the
fair CRPS over the oracle's fair CRPS and the standard CRPS over the oracle's, and the factors fitted on all
starts, with the two halves' factors (their difference: how stable a fit over 6 starts is).

``--across VAL2_OUT`` measures instead how factors fitted on all of ``VAL_OUT``'s starts transfer to a second
validation store of the same model (``VAL2_OUT``, for example ``calibration.validation_forecasts(...,
folder="validation2")``). Halves of one store share its runs (four starts per run), so the split above can
flatter a fit; the transfer between stores is what the benchmark meets.

Nothing here reads the benchmark's store: it measures the levers where they may be chosen. ``--out`` writes
``spread_levers.md`` / ``.csv`` (per variant) and ``spread_levers_leads.csv`` (per variant and lead).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from forecast.atomic import atomic_output  # noqa: E402
from forecast.errors import ForecastError  # noqa: E402
from forecast.forecast_file import OBS_SUFFIX, forecast_variables  # noqa: E402
from forecast.spread_calibration import SpreadCalibration, fit_spread  # noqa: E402

#: the variants measured: (method, pooling); None is the uncalibrated forecast
VARIANTS = [
    None,
    ("spread_skill", "lead"),
    ("spread_skill", "all"),
    ("fair_crps", "lead"),
    ("fair_crps", "all"),
]


def variant_name(variant) -> str:
    return "uncalibrated" if variant is None else f"{variant[0]}, per {variant[1]}"


def lead_scores(forecast: xr.Dataset, oracle: xr.Dataset) -> dict[str, np.ndarray]:
    """Per lead, averaged over variables as in the calibration table: spread-skill (finite-ensemble corrected),
    the share of the truth outside the members' range, the fair and the standard CRPS, and the oracle's two."""
    from forecast.metrics import crps_ensemble

    names = forecast_variables(forecast)
    m = forecast.sizes["member"]
    out: dict[str, list] = {
        k: [] for k in ("spread_skill", "outside", "fair", "crps", "oracle_fair", "oracle")
    }
    for v in names:
        ens, obs, truth = forecast[v], forecast[f"{v}{OBS_SUFFIX}"], oracle[v]
        rest = [d for d in obs.dims if d != "lead_time"]
        spread = np.sqrt(ens.var("member", ddof=1).mean(rest))
        rmse = np.sqrt(((ens.mean("member") - obs) ** 2).mean(rest))
        out["spread_skill"].append((math.sqrt((m + 1) / m) * spread / rmse).values)
        outside = (obs < ens.min("member")) | (obs > ens.max("member"))
        out["outside"].append(outside.mean(rest).values)
        for key, members, fair in (("fair", ens, True), ("crps", ens, False), ("oracle_fair", truth, True),
                                   ("oracle", truth, False)):  # fmt: skip
            out[key].append(crps_ensemble(obs, members, fair=fair).mean(rest).values)
    scores = {k: np.mean(v, axis=0) for k, v in out.items()}
    scores["outside_ratio"] = scores["outside"] / (2 / (m + 1))
    return scores


def cross_validated(forecast: xr.Dataset, method: str, pooling: str) -> tuple[xr.Dataset, list[dict]]:
    """The forecast with each half of its inits calibrated by factors fitted on the other half, and the two
    halves' factors."""
    halves = [np.arange(forecast.sizes["init"])[i::2] for i in (0, 1)]
    parts, fits = [], []
    for fit_on, apply_to in ((halves[0], halves[1]), (halves[1], halves[0])):
        calibration = fit_spread(forecast.isel(init=fit_on), method, pooling)
        fits.append(dict(calibration.factors))
        parts.append(calibration.apply_dataset(forecast.isel(init=apply_to)))
    order = np.concatenate([halves[1], halves[0]])  # the inits as calibrated; back to the file's order
    return xr.concat(parts, dim="init").isel(init=np.argsort(order)), fits


def across_stores(
    fit_on: xr.Dataset, forecast: xr.Dataset, method: str, pooling: str
) -> tuple[xr.Dataset, dict]:
    """``forecast`` calibrated by factors fitted on all of ``fit_on`` (the same model's forecast of another
    validation store), and those factors."""
    calibration = fit_spread(fit_on, method, pooling)
    return calibration.apply_dataset(forecast), dict(calibration.factors)


def measure(
    forecast: xr.Dataset, oracle: xr.Dataset, fit_on: xr.Dataset | None = None
) -> tuple[list[dict], list[dict]]:
    """One summary line per variant and its per-lead scores (see the module docstring); with ``fit_on``, the
    factors come from that forecast (another store) instead of the other half of ``forecast``'s starts."""
    summary, per_lead = [], []
    for variant in VARIANTS:
        if variant is None:
            scored, factors, halves = forecast, None, None
        elif fit_on is not None:  # one fit, on the other store: no halves
            (scored, factors), halves = across_stores(fit_on, forecast, *variant), None
        else:
            scored, halves = cross_validated(forecast, *variant)
            factors = dict(fit_spread(forecast, *variant).factors)
        s = lead_scores(scored, oracle)
        name = variant_name(variant)
        summary.append(
            {
                "variant": name,
                "spread_skill_min": float(s["spread_skill"].min()),
                "spread_skill_max": float(s["spread_skill"].max()),
                "leads_in_0.9_1.1": int(((s["spread_skill"] >= 0.9) & (s["spread_skill"] <= 1.1)).sum()),
                "outside_ratio_max": float(s["outside_ratio"].max()),
                "outside_ratio_mean": float(s["outside_ratio"].mean()),
                "fair_crps_oracle_ratio": float(s["fair"].mean() / s["oracle_fair"].mean()),
                "crps_oracle_ratio": float(s["crps"].mean() / s["oracle"].mean()),
                "factors": _factor_text(factors),
                "factors_halves": " / ".join(_factor_text(h) for h in halves) if halves else "",
            }
        )
        for i, lead in enumerate(np.asarray(forecast["lead_time"].values)):
            per_lead.append({"variant": name, "lead_time": lead, **{k: float(v[i]) for k, v in s.items()}})
    return summary, per_lead


def _factor_text(factors: dict | None) -> str:
    """The factors averaged over variables, first lead, then the range over the others."""
    if not factors:
        return ""
    k = np.mean([np.asarray(v) for v in factors.values()], axis=0)
    return f"{k[0]:.3f}; {k[1:].min():.3f}-{k[1:].max():.3f}" if len(k) > 1 else f"{k[0]:.3f}"


def markdown(summary: list[dict], heading: str) -> str:
    columns = list(summary[0])
    lines = [heading, "", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in summary:
        lines.append(
            "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |"
        )
    return "\n".join(lines) + "\n"


def _write_csv(rows: list[dict], path: Path) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)


def validation_store(validation: Path, forecast: xr.Dataset) -> Path:
    """The store that ``forecast`` (of the run in ``validation``) started from: its ``source_store`` attribute,
    or, where that path does not resolve from here, the one store of the run's ``data`` folder (any flow)."""
    recorded = Path(forecast.attrs.get("source_store", ""))
    if recorded.name and recorded.exists():
        return recorded
    stores = sorted((validation / "data").glob("*.zarr"))
    if len(stores) != 1:
        raise ForecastError(f"cannot tell the store of {validation}'s forecasts: {recorded} does not exist")
    return stores[0]


def open_validation(validation: Path, row: str) -> tuple[xr.Dataset, xr.Dataset]:
    """``validation``'s uncalibrated forecast of ``row`` and its truth ensemble as a forecast (made if missing)."""
    from forecast import pipeline
    from forecast.metrics import open_forecast

    source, oracle_file = validation / "forecasts" / f"{row}.nc", validation / "forecasts" / "Oracle.nc"
    if not source.is_file():
        raise ForecastError(
            f"no forecast {source}: run experiments/calibration.py --noise-seed S --out {validation}"
        )
    forecast = open_forecast(source).load()
    if SpreadCalibration.of_attributes(forecast.attrs) is not None:  # refused before the oracle file is made
        raise ForecastError(f"{source} is spread-calibrated already: measure on an uncalibrated forecast")
    pipeline.oracle_forecast(validation_store(validation, forecast), source, oracle_file)
    return forecast, open_forecast(oracle_file).load()


def run(
    validation: Path, row: str = "RVD", out: Path | None = None, log=print, across: Path | None = None
) -> list[dict]:
    """Measure every variant on ``validation``'s forecast of ``row`` (see the module docstring); with
    ``across`` (another validation store's run of the same model), fit on all of ``validation``'s starts and
    measure on ``across``'s."""
    forecast, oracle = open_validation(validation, row)
    store = forecast.attrs.get("source_store", "?")
    if across is None:
        summary, per_lead = measure(forecast, oracle)
        how = "each half of the starts calibrated with factors fitted on the other half"
        fits = "fitted on all starts; then on each half"
    else:
        fit_on, (forecast, oracle) = forecast, open_validation(across, row)
        summary, per_lead = measure(forecast, oracle, fit_on=fit_on)
        how = f"calibrated with factors fitted on all starts of {store}"
        store, fits = forecast.attrs.get("source_store", "?"), f"fitted on {validation}"
    heading = (
        f"Spread calibration of {row} on the validation store {store} ({forecast.sizes['init']} starts x "
        f"{forecast.sizes['member']} members; {how}). Factors: lead 1; the range over leads 2+ (mean over "
        f"variables), {fits}."
    )
    text = markdown(summary, heading)
    log(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(summary, out / "spread_levers.csv")
        _write_csv(per_lead, out / "spread_levers_leads.csv")
        with atomic_output(out / "spread_levers.md") as tmp:
            tmp.write_text(text)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--validation", required=True, help="a calibration.py output folder on a validation store"
    )
    parser.add_argument("--row", default="RVD", help="the row's file name in VAL_OUT/forecasts (default RVD)")
    parser.add_argument("--out", help="folder for spread_levers.md / .csv / _leads.csv")
    parser.add_argument(
        "--across",
        metavar="VAL2_OUT",
        help="fit on all of --validation's starts and measure on this second validation store's forecast of "
        "the same model (how factors transfer between stores, rather than between halves of one)",
    )
    args = parser.parse_args(argv)
    try:
        across = Path(args.across) if args.across else None
        run(Path(args.validation), args.row, Path(args.out) if args.out else None, across=across)
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
