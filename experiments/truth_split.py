"""Is a known-answer store sound? Score half of its truth ensemble, as a forecast, against the other half.

    python experiments/truth_split.py DATA.zarr --out OUT [--variables u v vorticity]

The truth group's K members are split in two: members 0..K/2-1 become a "perfect" forecast (with the verifying
truth ``V_obs`` read from the test group at each start's frames), members K/2..K-1 the truth ensemble it is
scored against (``forecast.metrics.score_forecast(..., fair=True, truth=...)``). If the store is sound, the
verifying truth is exchangeable with the members, and every score shows it: CRPS / oracle CRPS ~1, spread
ratio ~1, energy distance ~0 (relative to the CRPS), spread-skill of the truth ensemble ~1, and truth outside
the truth ensemble's range at about the calibrated rate 2 / (K/2 + 1). Departures beyond the noise of a few
starts mean the test frames and the truth continuations are not draws of one distribution. Writes
``OUT/scores.nc``, ``OUT/summary.csv`` and the figures of ``forecast plot`` in ``OUT/figures``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.errors import ForecastError  # noqa: E402
from forecast.forecast_file import OBS_SUFFIX  # noqa: E402
from forecast.metrics import open_truth, score_forecast  # noqa: E402


def split_forecast(store: Path, variables: list[str] | None) -> tuple[xr.Dataset, xr.Dataset]:
    """(forecast of the first half of the truth members with V_obs from the test group, truth of the rest)."""
    truth = open_truth(store).load()
    test = xr.open_zarr(store, group="test", consolidated=False)  # reads either kind of store
    names = variables or [str(v) for v in truth.data_vars]
    k = truth.sizes["member"]
    if k < 4:
        raise ForecastError(f"the truth group has {k} members; splitting it needs at least 4")
    truth = truth[names].drop_vars([c for c in truth.coords if "member" in truth[c].dims and c != "member"])
    leads = truth["lead_time"].values
    obs = {v: [] for v in names}
    for i in range(truth.sizes["init"]):
        frames = test.sel(sequence=truth["sequence"].values[i])
        first = int(np.flatnonzero(frames["time"].values == truth["init_time"].values[i])[0])
        steps = first + np.arange(leads.size)  # lead 1 verifies against the frame at init_time
        for v in names:
            obs[v].append(frames[v].isel(time=steps).values)
    half = k // 2
    forecast = truth.isel(member=slice(0, half)).assign_coords(member=np.arange(half))
    for v in names:
        forecast[f"{v}{OBS_SUFFIX}"] = (("init", "lead_time", "y", "x"), np.stack(obs[v]), truth[v].attrs)
    forecast.attrs = {"model_name": f"truth members 0-{half - 1}"}
    return forecast, truth.isel(member=slice(half, 2 * half)).assign_coords(member=np.arange(half))


def summary(scores: xr.Dataset, names: list[str]) -> list[dict]:
    from forecast.scores_file import Scores

    by_name = Scores(scores)
    rows = []
    for v in names:
        s = by_name[v]
        ranks = s["rank_histogram_truth"]
        outside = (ranks.isel(truth_rank=0) + ranks.isel(truth_rank=-1)) / ranks.sum("truth_rank")
        for i, lead in enumerate(scores["lead_time"].values):
            rows.append(
                {
                    "variable": v,
                    "lead_time": int(lead),
                    "oracle_crps": float(s["crps_oracle_mean"][i]),
                    "crps_ratio": float(s["crps_oracle_ratio"][i]),
                    "spread_ratio": float(s["spread_ratio_truth"][i]),
                    "energy_distance_over_crps": float(s["energy_distance"][i] / s["crps_mean"][i]),
                    "spread_skill_truth": float(s["spread_skill_truth"][i]),
                    "outside_range": float(outside[i]),
                    "outside_range_calibrated": 2 / ranks.sizes["truth_rank"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="a field store with a truth group")
    parser.add_argument("--out", type=Path, required=True, help="folder for scores.nc, summary.csv, figures/")
    parser.add_argument("--variables", nargs="+", help="variables to score (default: all of the truth group)")
    args = parser.parse_args(argv)
    try:
        forecast, truth = split_forecast(args.store, args.variables)
    except ForecastError as exc:
        print(f"truth_split: {exc}", file=sys.stderr)
        return 2
    names = [str(v) for v in truth.data_vars]
    scores = score_forecast(forecast, fair=True, truth=truth)
    args.out.mkdir(parents=True, exist_ok=True)
    scores.to_netcdf(args.out / "scores.nc")
    rows = summary(scores, names)
    with open(args.out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    from forecast.plots import plot_files

    plot_files([args.out / "scores.nc"], args.out / "figures", dpi=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
