"""Benchmark: `forecast score` on a forecast file against reading the file and against xskillscore, one run.

    python experiments/benchmarks/bench_score_file.py               # issue 33's file: 64 inits
    python experiments/benchmarks/bench_score_file.py --inits 8     # a quick run
    python experiments/benchmarks/bench_score_file.py --blocks 1 2 4 8 16   # also time --chunk-init values

The file is issue 33's: 64 inits x 16 members x 8 leads x 96x96 of u, v and vorticity, written through the
rollout's own writer (``forecast.forecast_file.ForecastFileWriter``: zlib 1 with byte shuffle, chunks of one
init, one member and four leads). Its values are smooth travelling waves (the truth) plus members that spread
around them with lead time, so the file compresses like a forecast, not like white noise.

Every contender runs in its own fresh Python process, after a warm-up on a small file (imports, numba's cache),
and reports its wall time and its peak resident memory (``getrusage``: ``ru_maxrss``) above the process's
resident memory before the work. The contenders:

* ``forecast score``: ``forecast score FC.nc --out S.nc`` at its defaults (all scores), in-process through
  ``forecast.cli.main``;
* plain read: xarray reading and decompressing every ``V`` and ``V_obs`` of the file, blocks of 8 inits, one
  thread: the floor any scorer of this file has to pay;
* xskillscore: the subset of the scores it can compute (CRPS per pixel and lead, rank histogram, RMSE of the
  ensemble mean per lead) and the spread per lead (xarray; xskillscore has none), on the file opened with dask
  chunks of 8 inits, all in one ``dask.compute``;
* the dask graph of the registry (``build_scores`` on the file opened with chunks of one init, the scoring path
  before issue 33), unless ``--no-dask-graph``.

The file sits in the page cache (it was just written, and the plain read runs first), so reading costs the
decompression, not the disk. The machine's other load disturbs wall times; ratios come from one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

VARIABLES = ("u", "v", "vorticity")
CONTEXT = 2


def _store(n_init: int, n_lead: int, size: int, seed: int) -> xr.Dataset:
    """A store group with one sequence per init: context + horizon frames of travelling waves."""
    rng = np.random.default_rng(seed)
    frames = CONTEXT + n_lead
    y, x, t = np.arange(size), np.arange(size), np.arange(frames)
    data = {}
    for k, name in enumerate(VARIABLES):
        phase = rng.uniform(0, 2 * np.pi, n_init)[:, None, None, None]
        wave = np.sin(
            2 * np.pi * (x[None, None, None, :] / size * (k + 1) - 0.05 * t[None, :, None, None]) + phase
        ) * np.cos(2 * np.pi * y[None, None, :, None] / size)
        data[name] = (("sequence", "time", "y", "x"), wave.astype(np.float32), {"units": "1"})
    coords = {"time": np.arange(frames), "y": np.arange(size, dtype=float), "x": np.arange(size, dtype=float)}
    return xr.Dataset(data, coords=coords)


def write_file(path: Path, n_init: int, members: int, n_lead: int, size: int, seed: int = 0) -> None:
    """Issue 33's forecast file, through the rollout's writer (its layout, chunks and compression)."""
    from forecast.forecast_file import ForecastFileWriter, ForecastSettings, Init
    from forecast.rollout_options import DEFAULTS as ROLLOUT_DEFAULTS

    source = _store(n_init, n_lead, size, seed)
    # the rollout's own defaults for every setting not given here (a field added to the writer's settings gets
    # its default, not an error); every member in one chunk
    settings = ForecastSettings.from_options(
        dataclasses.replace(ROLLOUT_DEFAULTS, batch_size=members),
        model="benchmark",
        variables=VARIABLES,
        inits=tuple(Init(i, 0) for i in range(n_init)),
        members=members,
        context=CONTEXT,
        horizon=n_lead,
        sampler="synthetic",
        steps=None,
        sampling_steps=0,
        eta=0.0,
        seed=seed,
        amp=False,
        device="cpu",
        source_store="synthetic (bench_score_file.py)",
    )
    writer = ForecastFileWriter(path, settings, source)
    rng = np.random.default_rng(seed + 1)
    spread = (0.05 * np.sqrt(np.arange(1, n_lead + 1, dtype=np.float32)))[None, :, None, None]
    for i in range(n_init):
        window = source.isel(sequence=i)
        writer.write_observed(i, window)
        fields = {}
        for name in VARIABLES:
            truth = window[name].values[CONTEXT:]
            noise = rng.standard_normal((members, n_lead, size, size), dtype=np.float32)
            fields[name] = (truth[None] + spread * noise).astype(np.float32)
        writer.write_members(i, 0, fields)
        writer.finish_init(i)
    writer.commit()


# ------------------------------------------------------------------------------------------ the contenders
def _plain_read(path: str, block: int) -> None:
    with xr.open_dataset(path) as ds:
        names = [n for n in ds.data_vars if f"{n}_obs" in ds.data_vars]
        for name in names:
            for var in (name, f"{name}_obs"):
                for start in range(0, ds.sizes["init"], block):
                    ds[var].isel(init=slice(start, start + block)).values  # noqa: B018


def _forecast_score(path: str, out: str, extra: list[str]) -> None:
    from forecast.cli import main

    if main(["score", path, "--out", out, "--overwrite", *extra]) != 0:
        raise SystemExit("forecast score failed")


def _xskillscore(path: str, block: int) -> None:
    import dask
    import xskillscore as xs

    # whole members and leads in a chunk (xskillscore needs one chunk along the member dim)
    with xr.open_dataset(path, chunks={"init": block, "member": -1, "lead_time": -1}) as ds:
        work = []
        for name in [n for n in ds.data_vars if f"{n}_obs" in ds.data_vars]:
            fc, obs = ds[name], ds[f"{name}_obs"]
            space = ["init", "y", "x"]
            work += [
                xs.crps_ensemble(obs, fc, member_dim="member", dim=["init"]),
                xs.rank_histogram(obs, fc, dim=space, member_dim="member"),
                # xskillscore's rmse needs the reduced dims in one chunk: the ensemble mean is small
                xs.rmse(obs.chunk({"init": -1}), fc.mean("member").chunk({"init": -1}), dim=space),
                np.sqrt(fc.var("member", ddof=1).mean(space)),
            ]
        dask.compute(*work)


def _dask_graph(path: str) -> None:
    import dask

    from forecast.metrics import build_scores, open_forecast

    ds = open_forecast(path, chunks={"init": 1})
    dask.compute(dict(build_scores(ds).data_vars))


def _rss_mb() -> float:
    """Resident memory now (Linux /proc), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def worker(kind: str, path: str, warm: str, out: str, block: int, extra: list[str]) -> None:
    """Run one contender (after a warm-up on the small file ``warm``) and print its figures as JSON."""
    runs = {
        "score": lambda p: _forecast_score(p, out, extra),
        "read": lambda p: _plain_read(p, block),
        "xskillscore": lambda p: _xskillscore(p, block),
        "dask_graph": _dask_graph,
    }
    run = runs[kind]
    run(warm)
    base = _rss_mb()
    start = time.perf_counter()
    cpu = time.process_time()
    run(path)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "base_rss_mb": base}))


def _contend(kind: str, path: Path, warm: Path, out: Path, block: int, extra: list[str] = ()) -> dict:
    command = [sys.executable, __file__, "--worker", kind, str(path), str(warm), str(out), str(block), *extra]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, path, warm, out, block, *extra = sys.argv[2:]
        worker(kind, path, warm, out, int(block), extra)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inits", type=int, default=64)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--leads", type=int, default=8)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender; the best is kept")
    parser.add_argument("--blocks", type=int, nargs="*", default=[], help="also time --chunk-init N")
    parser.add_argument("--no-xskillscore", action="store_true")
    parser.add_argument("--no-dask-graph", action="store_true", help="skip the old dask-graph path (slow)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the file (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        path, warm, out = tmp / "fc.nc", tmp / "warm.nc", tmp / "scores.nc"
        start = time.perf_counter()
        write_file(path, args.inits, args.members, args.leads, args.size)
        write_file(warm, 2, args.members, args.leads, 16)
        written = time.perf_counter() - start
        raw = args.inits * args.members * args.leads * args.size**2 * len(VARIABLES) * 4
        print(
            f"file: {args.inits} inits x {args.members} members x {args.leads} leads x {args.size}x{args.size} x "
            f"{', '.join(VARIABLES)}: members {raw / 1e6:.0f} MB uncompressed, {path.stat().st_size / 1e6:.0f} MB "
            f"on disk (written in {written:.1f} s)"
        )
        kinds = [("read", []), ("score", [])]
        kinds += [(f"score --chunk-init {b}", ["--chunk-init", str(b)]) for b in args.blocks]
        if not args.no_xskillscore:
            kinds.append(("xskillscore", []))
        if not args.no_dask_graph:
            kinds.append(("dask_graph", []))
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for label, extra in kinds:
                kind = label.split()[0]
                figures = _contend(kind, path, warm, out, 8, extra)
                print(f"  {label}: {figures['wall_s']:.2f} s", flush=True)
                if label not in best or figures["wall_s"] < best[label]["wall_s"]:
                    best[label] = figures
        read = best["read"]["wall_s"]
        score = best["score"]["wall_s"]
        names = {
            "read": "plain read (xarray, V and V_obs)",
            "score": "forecast score (defaults)",
            "xskillscore": "xskillscore subset",
            "dask_graph": "registry dask graph (chunks of 1 init)",
        }
        print(
            f"\n{'contender':<42} {'wall [s]':>9} {'CPU [s]':>8} {'MB/s':>7} {'/ read':>7} "
            f"{'score faster':>13} {'peak RSS':>9} {'above start':>12}"
        )
        for label, f in best.items():
            print(
                f"{names.get(label, label):<42} {f['wall_s']:9.2f} {f['cpu_s']:8.2f} {raw / 1e6 / f['wall_s']:7.0f} "
                f"{f['wall_s'] / read:7.2f} {f['wall_s'] / score:12.2f}x {f['peak_rss_mb']:7.0f}MB "
                f"{f['peak_rss_mb'] - f['base_rss_mb']:10.0f}MB"
            )
        print(
            "(/ read: wall time over the plain read's; score faster: this wall time over forecast score's; peak "
            "RSS: the process's resident-memory peak, 'above start' less what it held before the work)"
        )


if __name__ == "__main__":
    main()
