"""Benchmark: our ensemble CRPS against properscoring (numba) and scoringrules on the same arrays, one run.

    python experiments/benchmarks/bench_crps.py            # the issue's sizes
    python experiments/benchmarks/bench_crps.py --quick    # small sizes, to check that it runs

Cases (float64): 20 inits x 16 leads x 64 x 64 pixels x 16 members, and a large ensemble (m = 100, fewer
inits by default to bound memory). Every implementation gets the same values; properscoring and scoringrules
get them member-last and contiguous (their fastest layout); ours is timed on that array too, and on the
forecast file's layout (member second) through the xarray API. Results are checked to agree before timing.
Each time is the best of ``--repeat`` runs after a warm-up call (numba compilation is excluded).

The streamed case writes the same forecast to a netCDF file, opens it with dask chunks of one init and
scores it (CRPS per pixel and lead time, averaged over init) against the same computation in memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import dask
import numpy as np
import properscoring as ps
import scoringrules as sr
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
from forecast.metrics import crps_ensemble, crps_ensemble_array  # noqa: E402

# scoringrules estimators that compute the same quantity as ours (checked before timing)
SCORINGRULES_ENSEMBLE = ("qd", "nrg", "int")  # the empirical-CDF CRPS, as properscoring
SCORINGRULES_FAIR = ("fair", "pwm")  # the fair CRPS (pwm equals fair in scoringrules 0.10)
SCORINGRULES_QUADRATIC = ("nrg", "fair")  # O(m^2) per point: timed at small m only (minutes at m = 100)


def best_time(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU time (all threads) of ``repeat`` calls after a warm-up call."""
    fn()  # warm-up: numba compilation, caches
    walls, cpus = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus)


def make_case(n_init, n_lead, ny, nx, m, seed=0):
    rng = np.random.default_rng(seed)
    ens_file_layout = rng.standard_normal((n_init, m, n_lead, ny, nx))  # the forecast file's order
    obs = rng.standard_normal((n_init, n_lead, ny, nx))
    ens_member_last = np.ascontiguousarray(np.moveaxis(ens_file_layout, 1, -1))
    return obs, ens_file_layout, ens_member_last


def bench_in_memory(label, obs, ens_file_layout, ens_member_last, repeat, fair=False):
    m = ens_member_last.shape[-1]
    obs_da = xr.DataArray(obs, dims=("init", "lead_time", "y", "x"))
    ens_da = xr.DataArray(ens_file_layout, dims=("init", "member", "lead_time", "y", "x"))
    if fair:
        # pwm, not fair: scoringrules' fair estimator forms the m x m differences (24 GB at m = 100)
        expected = sr.crps_ensemble(obs, ens_member_last, estimator="pwm")
        candidates = {}
        estimators = SCORINGRULES_FAIR
    else:
        expected = ps.crps_ensemble(obs, ens_member_last)
        candidates = {"properscoring (numba)": lambda: ps.crps_ensemble(obs, ens_member_last)}
        estimators = SCORINGRULES_ENSEMBLE
    candidates.update(
        {
            f"scoringrules {e} (numba)": (lambda e=e: sr.crps_ensemble(obs, ens_member_last, estimator=e))
            for e in estimators
            if m <= 32 or e not in SCORINGRULES_QUADRATIC
        }
    )
    candidates["ours, member-last array"] = lambda: crps_ensemble_array(obs, ens_member_last, fair=fair)
    candidates["ours, xarray, file layout"] = lambda: crps_ensemble(obs_da, ens_da, fair=fair).values
    for name, fn in candidates.items():
        np.testing.assert_allclose(fn(), expected, rtol=1e-6, atol=1e-12, err_msg=name)
    times = {name: best_time(fn, repeat) for name, fn in candidates.items()}
    fastest_wall = min(t[0] for n, t in times.items() if not n.startswith("ours"))
    fastest_cpu = min(t[1] for n, t in times.items() if not n.startswith("ours"))
    points = obs.size
    estimator = "fair" if fair else "ensemble (empirical CDF)"
    print(
        f"\n{label}, {estimator} CRPS: {obs.shape} points x m={m}, float64, {points * m * 8 / 1e6:.0f} MB of members"
    )
    print(
        f"{'implementation':<30} {'wall [s]':>9} {'CPU [s]':>8} {'Mpoints/s':>10} {'speed-up wall':>14} {'speed-up CPU':>13}"
    )
    for name, (wall, cpu) in times.items():
        print(
            f"{name:<30} {wall:9.3f} {cpu:8.3f} {points / wall / 1e6:10.2f} {fastest_wall / wall:14.2f} "
            f"{fastest_cpu / cpu:13.2f}"
        )
    print("(speed-up: the fastest of properscoring/scoringrules divided by this; > 1 is faster)")
    return times


def bench_streamed(obs, ens_file_layout, repeat, chunk_init=1):
    ds = xr.Dataset(
        {
            "u": (("init", "member", "lead_time", "y", "x"), ens_file_layout),
            "u_obs": (("init", "lead_time", "y", "x"), obs),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forecast.nc"
        ds.to_netcdf(path)
        size_mb = path.stat().st_size / 1e6

        def in_memory():
            return crps_ensemble(ds["u_obs"], ds["u"]).mean("init").values

        def streamed():
            with xr.open_dataset(path, chunks={"init": chunk_init}) as fc:
                return crps_ensemble(fc["u_obs"], fc["u"]).mean("init").compute().values

        np.testing.assert_allclose(streamed(), in_memory(), rtol=1e-10)
        t_memory = best_time(in_memory, repeat)
        t_streamed = best_time(streamed, repeat)
        tracemalloc.start()
        with dask.config.set(scheduler="threads"):
            streamed()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    points = obs.size
    print(
        f"\nstreamed: {size_mb:.0f} MB netCDF file, dask chunks of {chunk_init} init(s), CRPS per pixel and lead time"
    )
    print(f"{'case':<34} {'wall [s]':>9} {'CPU [s]':>8} {'Mpoints/s':>10}")
    print(
        f"{'in memory (loaded arrays)':<34} {t_memory[0]:9.3f} {t_memory[1]:8.3f} {points / t_memory[0] / 1e6:10.2f}"
    )
    print(
        f"{'streamed from the chunked file':<34} {t_streamed[0]:9.3f} {t_streamed[1]:8.3f} "
        f"{points / t_streamed[0] / 1e6:10.2f}"
    )
    print(
        f"streamed / in-memory wall time: {t_streamed[0] / t_memory[0]:.2f}; peak traced memory while streaming: "
        f"{peak / 1e6:.0f} MB for a {size_mb:.0f} MB file (the file sits in the page cache after writing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (checks that the benchmark runs)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large-inits", type=int, default=5, help="inits of the m = 100 case (default 5)")
    args = parser.parse_args()
    if args.quick:
        small, large, large_m = (2, 4, 16, 16, 16), (1, 4, 16, 16), 100
    else:
        small, large, large_m = (20, 16, 64, 64, 16), (args.large_inits, 16, 64, 64), 100
    print(
        f"numpy {np.__version__}, properscoring numba gufunc: {ps._crps._crps_ensemble_core.__class__.__name__}, "
        f"scoringrules {sr.__version__}, dask threads"
    )
    obs, ens_file, ens_last = make_case(*small)
    bench_in_memory(f"m = {small[-1]}", obs, ens_file, ens_last, args.repeat)
    bench_in_memory(f"m = {small[-1]}", obs, ens_file, ens_last, args.repeat, fair=True)
    bench_streamed(obs, ens_file, args.repeat)
    del ens_file, ens_last
    obs, ens_file, ens_last = make_case(*large, large_m)
    bench_in_memory(f"m = {large_m}", obs, ens_file, ens_last, args.repeat)
    bench_in_memory(f"m = {large_m}", obs, ens_file, ens_last, args.repeat, fair=True)


if __name__ == "__main__":
    main()
