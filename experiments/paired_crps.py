"""Is forecast A better than forecast B on the same starts? Their CRPS, paired by start, with a bootstrap.

    python experiments/paired_crps.py --a OUT/forecasts/RVD.nc [SEED1/forecasts/RVD.nc ...] \\
                                      --b OUT/forecasts/VD.nc [SEED1/forecasts/VD.nc ...] [--samples 10000]

The i-th ``--a`` file is paired with the i-th ``--b`` file (one pair per replicate, e.g. per training seed); all
forecast the same starts (``init``) and leads. A start's CRPS is that of ``calibration.csv``: the mean over
variables of each variable's CRPS averaged over leads and pixels. Printed per pair and pooled over the pairs:
the mean CRPS of A and of B, A / B - 1, and a 95% percentile-bootstrap interval of that ratio of means, which
resamples starts (the unit of independence: the pixels and leads of one start are strongly correlated), the
same starts in every pair. An interval that holds 0 means the starts cannot tell A from B.

The bootstrap over starts does not see what varies between replicates: two trainings of one config differ by a
few percent (docs/results/calibration.md). With three pairs or more, one more line,
"over replicates", gives the mean of the pairs' A / B - 1 and its 95% Student-t interval over the pairs, the
interval for a claim about the configs rather than about one trained model each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast.errors import ForecastError  # noqa: E402
from forecast.forecast_file import forecast_variables  # noqa: E402
from forecast.metrics import crps_ensemble, open_forecast  # noqa: E402


def crps_per_start(path: str | Path) -> xr.DataArray:
    """The CRPS of one forecast file per start (``init``), averaged over leads and pixels, then variables."""
    with open_forecast(path) as ds:
        per_variable = [
            crps_ensemble(ds[f"{v}_obs"], ds[v]).mean([d for d in ds[f"{v}_obs"].dims if d != "init"])
            for v in forecast_variables(ds)
        ]
        return sum(per_variable[1:], per_variable[0]).load() / len(per_variable)


def ratio_interval(a: np.ndarray, b: np.ndarray, samples: int, seed: int = 0) -> tuple[float, float, float]:
    """A / B - 1 of the mean CRPS of (replicate, start) arrays, and its 95% bootstrap interval over starts."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, a.shape[-1], size=(samples, a.shape[-1]))
    ratios = a[:, starts].mean(axis=(0, 2)) / b[:, starts].mean(axis=(0, 2)) - 1
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(a.mean() / b.mean() - 1), float(low), float(high)


def replicate_interval(ratios: np.ndarray) -> tuple[float, float, float]:
    """The mean of the pairs' A / B - 1 and its 95% Student-t interval over the pairs (n - 1 degrees of freedom)."""
    low, high = stats.t.interval(0.95, len(ratios) - 1, loc=ratios.mean(), scale=stats.sem(ratios))
    return float(ratios.mean()), float(low), float(high)


def compare(a_files: list[str], b_files: list[str], samples: int = 10000) -> list[dict]:
    """One entry per pair and, with several pairs, one for all of them together (see the module docstring)."""
    if len(a_files) != len(b_files) or not a_files:
        raise ForecastError(f"--a and --b need as many files each, got {len(a_files)} and {len(b_files)}")
    a = [crps_per_start(f) for f in a_files]
    b = [crps_per_start(f) for f in b_files]
    for x in a[1:] + b:
        if not np.array_equal(x["init"].values, a[0]["init"].values):
            raise ForecastError("the forecasts do not share their starts (init); pair forecasts of one store")
    a_np, b_np = np.stack([x.values for x in a]), np.stack([x.values for x in b])
    pairs = [(f"{fa} vs {fb}", slice(i, i + 1)) for i, (fa, fb) in enumerate(zip(a_files, b_files))]
    if len(pairs) > 1:
        pairs.append(("all pairs", slice(None)))
    def entry(name: str, a: np.ndarray, b: np.ndarray, interval: tuple[float, float, float], over: str) -> dict:
        ratio, low, high = interval
        return {
            "pair": name, "crps_a": float(a.mean()), "crps_b": float(b.mean()),
            "a_over_b_minus_1": ratio, "ci95_low": low, "ci95_high": high, "over": over,
        }  # fmt: skip

    rows = [
        entry(name, a_np[w], b_np[w], ratio_interval(a_np[w], b_np[w], samples), f"{a_np.shape[1]} starts")
        for name, w in pairs
    ]
    if len(a_files) >= 3:
        per_pair = a_np.mean(axis=1) / b_np.mean(axis=1) - 1
        rows.append(entry("over replicates", a_np, b_np, replicate_interval(per_pair), f"{len(a_files)} replicates"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", nargs="+", required=True, help="forecast files of A, one per replicate")
    parser.add_argument("--b", nargs="+", required=True, help="forecast files of B, paired with --a in order")
    parser.add_argument("--samples", type=int, default=10000, help="bootstrap samples")
    args = parser.parse_args(argv)
    try:
        rows = compare(args.a, args.b, args.samples)
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| pair | CRPS A | CRPS B | A / B - 1 | 95% interval | over |\n|---|---:|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['pair']} | {r['crps_a']:.6g} | {r['crps_b']:.6g} | {r['a_over_b_minus_1']:+.2%} | "
            f"{r['ci95_low']:+.2%} to {r['ci95_high']:+.2%} | {r['over']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
