"""How fast do members of the stochastic vortex street separate, and does shedding survive the noise?

For each inlet-noise amplitude, one store at the benchmark's geometry (frames of 32x32 block-averaged from a
64x192 lattice, D = 4, every 64 steps as in the demo) with a truth group; printed per amplitude:

* the truth ensemble's spread (std over members, RMS over pixels and starts) per lead, relative to the
  climatological std of the test frames (1 means members as different as two random frames), for ``v``
  and ``vorticity``;
* the Strouhal number from the train frames against Williamson's relation (the slow test's tolerance is 10%);
* the truth ensemble's cost relative to the main simulation.

    python experiments/benchmarks/karman_noise_divergence.py --amplitudes 0.05 0.1 0.2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.field_store import open_field_store
from simulators.karman import KarmanConfig, generate
from simulators.karman.analysis import strouhal_number, williamson_strouhal

LEADS = (1, 2, 4, 8, 12, 16)


def measure(amplitude: float, args: argparse.Namespace, workdir: Path) -> None:
    config = KarmanConfig(
        reynolds=(args.reynolds,),
        frames=args.frames,
        test_frames=args.test_frames,
        every=64,
        size=(32, 32),
        scale=2,
        inflow_noise=amplitude,
        noise_time=args.noise_time,
        noise_length=args.noise_length,
        truth_members=args.members,
        truth_inits=args.inits,
        truth_horizon=16,
        truth_context=4,
    )
    path = workdir / f"noise-{amplitude:g}.zarr"
    start = time.perf_counter()
    result = generate(path, config, scheduler="synchronous", progress=False, overwrite=True)
    seconds = time.perf_counter() - start
    run = result.runs[0]
    test = open_field_store(path, "test").load()
    truth = xr.open_zarr(str(path), group="truth", consolidated=False).load()
    line = [f"A = {amplitude:<5g}"]
    for name in ("v", "vorticity"):
        climate = float(test[name].std())
        spread = np.sqrt((truth[name].var("member", ddof=1)).mean(("init", "y", "x")))
        rel = [float(spread.sel(lead_time=lead)) / climate for lead in LEADS]
        line.append(f"{name} spread/std at leads {LEADS}: " + " ".join(f"{r:.2f}" for r in rel))
    train = open_field_store(path, "train")
    st = strouhal_number(train, 0)
    expected = williamson_strouhal(args.reynolds)
    line.append(f"St {st:.4f} (Williamson {expected:.4f}, {100 * (st / expected - 1):+.1f}%)")
    main_seconds = run.seconds - run.build_seconds - run.truth_seconds
    line.append(
        f"main run {main_seconds:.1f} s, truth {run.truth_seconds:.1f} s "
        f"({run.truth_seconds / main_seconds:.2f}x), kernel build {run.build_seconds:.0f} s, total {seconds:.0f} s"
    )
    print("\n   ".join(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--amplitudes", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--reynolds", type=float, default=150.0)
    parser.add_argument("--frames", type=int, default=200, help="train frames (the Strouhal number's)")
    parser.add_argument("--test-frames", type=int, default=64)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--inits", type=int, default=6)
    parser.add_argument("--noise-time", type=float, default=KarmanConfig.noise_time)
    parser.add_argument("--noise-length", type=float, default=KarmanConfig.noise_length)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for amplitude in args.amplitudes:
            measure(amplitude, args, Path(tmp))


if __name__ == "__main__":
    main()
