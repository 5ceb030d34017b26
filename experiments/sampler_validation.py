"""Few-step samplers against DDIM-25 on a trained run: CRPS and spread-skill from the truth starts, and speed.

Rolls the run out from the store's truth starts with each sampler (the calibration benchmark's cpu-small rollout:
8 members, context 4, the truth's horizon; seed 0), scores every file against the verifying truth and the truth
ensemble (``forecast.pipeline.score``) and prints, per sampler, network evaluations per frame, CRPS and
spread-skill (vorticity, the benchmark table's variable, and the mean over variables), their differences to the
reference (the first sampler) and the rollout's frames per second, measured in the same run.

    python experiments/sampler_validation.py --run OUT/runs/RVD --data OUT/data/karman.zarr --out OUT2 \\
        --samplers ddim:25 dpmpp2m:10 dpmpp2m:8

A forecast file already under ``OUT2/forecasts`` is reused (its time is then not measured); ``--reference FC.nc``
copies a DDIM-25 file made elsewhere with the same settings (its attributes are checked) as the first sampler's.
Targets (issue 33): at <= 10 evaluations per frame, CRPS within 2% and spread-skill within 0.03 of DDIM-25.

``--partial``: while (or after) a rollout is interrupted, compare each sampler's finished inits of its partial
file with the same inits of the reference (paired: same starts, same noise), scored without the truth ensemble.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecast import pipeline  # noqa: E402
from forecast.errors import ForecastError  # noqa: E402


def settings(sampler: str, steps: int, seed: int) -> pipeline.RolloutSettings:
    """The calibration benchmark's cpu-small rollout (experiments/calibration.py) with this sampler."""
    import calibration

    options = {**calibration.SCALES["cpu-small"].rollout, "sampler": sampler, "steps": steps}
    return pipeline.RolloutSettings(**options, seed=seed, device="cpu").at_truth_starts()


def check_reference(path: Path, sampler: str, steps: int, members: int, seed: int) -> None:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        got = (
            ds.attrs["sampler"],
            int(ds.attrs["sampling_steps"]),
            int(ds.attrs["members"]),
            int(ds.attrs["seed"]),
        )
    if got != (sampler, steps, members, seed) or ds.attrs.get("starts") != "truth":
        raise ForecastError(f"--reference {path} was made with (sampler, steps, members, seed) = {got}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="trained run directory")
    parser.add_argument("--data", required=True, help="the store with a truth group (a validation store)")
    parser.add_argument("--out", required=True, help="output folder: forecasts/ and scores/")
    parser.add_argument("--samplers", nargs="+", default=["ddim:25", "dpmpp2m:10", "dpmpp2m:8"],
                        help="SAMPLER:STEPS; the first is the reference")  # fmt: skip
    parser.add_argument("--reference", help="an existing forecast file of the first sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partial", action="store_true", help="compare the finished inits of partial files")
    args = parser.parse_args(argv)
    if args.partial:
        return compare_partial(Path(args.out), args.samplers)
    out, store = Path(args.out), Path(args.data)
    rows = []
    for index, spec in enumerate(args.samplers):
        sampler, steps = spec.split(":")[0], int(spec.split(":")[1])
        chosen = settings(sampler, steps, args.seed)
        forecast, scores = (
            out / "forecasts" / f"{sampler}-{steps}.nc",
            out / "scores" / f"{sampler}-{steps}.nc",
        )
        if index == 0 and args.reference and not forecast.exists():
            check_reference(Path(args.reference), sampler, steps, chosen.members, args.seed)
            forecast.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.reference, forecast)
        made = not forecast.exists()
        start = time.perf_counter()
        pipeline.roll_out(Path(args.run), store, forecast, chosen, progress=False)
        wall = time.perf_counter() - start if made else None
        pipeline.score(forecast, scores, truth=store)
        row = {"sampler": sampler, "steps": steps, "wall": wall, **pipeline.summary_row(scores)}
        rows.append(row)
        print(f"{spec}: {row}", flush=True)
    print_table(rows)
    return 0


def subset_summary(path: Path, inits: list[int]) -> dict:
    """CRPS and spread-skill (means over leads) of ``inits`` of a forecast file, per variable."""
    import xarray as xr

    from forecast.metrics import score_forecast

    with xr.open_dataset(path) as ds:
        scores = score_forecast(ds.isel(init=inits).load())
    variables = [v[len("crps_mean_") :] for v in scores.data_vars if v.startswith("crps_mean_")]
    return {
        **{f"crps_{v}": float(scores[f"crps_mean_{v}"].mean()) for v in variables},
        **{f"spread_skill_{v}": float(scores[f"spread_skill_{v}"].mean()) for v in variables},
    }


def compare_partial(out: Path, specs: list[str]) -> int:
    """The finished inits of each sampler's (partial) file against the same inits of the first's."""
    import json
    import tempfile

    import xarray as xr

    files = {}
    for spec in specs:
        final = out / "forecasts" / f"{spec.replace(':', '-')}.nc"
        partial = final.parent / f".{final.name}.partial"
        files[spec] = final if final.exists() else partial
    reference = files[specs[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs[1:]:
            if not files[spec].exists():
                continue
            copy = Path(tmp) / f"{spec.replace(':', '-')}.nc"
            shutil.copy(files[spec], copy)  # a snapshot: the rollout may still be writing
            with xr.open_dataset(copy) as ds:
                marked = ds.attrs.get("rollout_completed_inits")  # only a partial file has it
                done = json.loads(marked) if marked is not None else list(range(ds.sizes["init"]))
            if not done:
                print(f"{spec}: no finished init yet")
                continue
            ref, got = subset_summary(reference, done), subset_summary(copy, done)
            for name in ref:
                diff = got[name] / ref[name] if name.startswith("crps") else got[name] - ref[name]
                kind = "ratio" if name.startswith("crps") else "difference"
                print(f"{spec} vs {specs[0]} on {len(done)} inits {done}: {name} {got[name]:.5g} vs {ref[name]:.5g}, "
                      f"{kind} {diff:.4f}")  # fmt: skip
    return 0


def print_table(rows: list[dict]) -> None:
    ref = rows[0]
    print(
        f"\n| sampler | evaluations/frame | CRPS vorticity | / {ref['sampler']}-{ref['steps']} | spread-skill "
        "vorticity | difference | CRPS (mean of variables) | ratio | spread-skill (mean) | difference | "
        "rollout (s) | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        speed = f"{ref['wall'] / r['wall']:.2f}x" if r["wall"] and ref["wall"] else "n/a"
        wall = f"{r['wall']:.0f}" if r["wall"] else "reused"
        print(
            f"| {r['sampler']} | {r['steps']} | {r['crps_vorticity']:.5f} | "
            f"{r['crps_vorticity'] / ref['crps_vorticity']:.4f} | {r['spread_skill_vorticity']:.3f} | "
            f"{r['spread_skill_vorticity'] - ref['spread_skill_vorticity']:+.3f} | {r['crps']:.5f} | "
            f"{r['crps'] / ref['crps']:.4f} | {r['spread_skill']:.3f} | {r['spread_skill'] - ref['spread_skill']:+.3f} "
            f"| {wall} | {speed} |"
        )


if __name__ == "__main__":
    sys.exit(main())
