"""Nothing gets slower: the same commands timed on an older tree and on this one, alternately, in one run.

    git worktree add --detach /tmp/base 8fed6d7
    python experiments/benchmarks/before_after.py --base /tmp/base [--repeat 3] [--only crps simulate]

Each command runs in a fresh process with ``PYTHONPATH`` and the working directory set to the tree it times, so
the code measured is that tree's (the installed packages are shared). The trees alternate (base, this, base,
this, ...) so that drifts of the machine's load hit both alike; the table gives the median wall time of each and
the ratio this / base (below 1: faster now).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

#: what is timed: a name and the command, run in the tree's root (``{tmp}``: a fresh scratch folder per run)
COMMANDS = {
    # the CRPS kernel on the array (20 inits x 16 leads x 64 x 64 x 16 members), in memory
    "crps": [
        sys.executable,
        "-c",
        "import time, numpy as np, xarray as xr\n"
        "from forecast.metrics import crps_ensemble\n"
        "rng = np.random.default_rng(0)\n"
        "ens = xr.DataArray(rng.normal(size=(20, 16, 16, 64, 64)), dims=('init', 'member', 'lead', 'y', 'x'))\n"
        "obs = ens.isel(member=0, drop=True) + 0.1\n"
        "crps_ensemble(obs, ens.isel(init=slice(0, 2)), member_dim='member')\n"
        "t = time.perf_counter(); crps_ensemble(obs, ens, member_dim='member').values\n"
        "print(time.perf_counter() - t)",
    ],
    # a small street simulated from the CLI (one run at Re 150, 40 + 10 frames of 64 x 32, both trees' defaults
    # otherwise): spin-up, the lbmpy kernel and the per-frame path
    "simulate": [
        sys.executable, "-m", "forecast", "simulate", "karman", "{tmp}/street.zarr", "--reynolds", "150",
        "--frames", "40", "--test-frames", "10", "--size", "32", "64", "--no-progress",
    ],  # fmt: skip
}


def time_once(tree: Path, command: list[str]) -> float:
    """Seconds of ``command`` run in ``tree`` (its code first on the path): the number it prints last where it
    prints one (its own timing of the work, imports left out), else its wall time. A failure stops the run."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as tmp:
        words = [w.replace("{tmp}", tmp) for w in command]
        start = time.perf_counter()
        done = subprocess.run(words, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(words[:4])} failed in {tree}: {done.stderr.strip().splitlines()[-1:]}")
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the older tree (a git worktree)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    args = parser.parse_args(argv)
    print(f"base {args.base}, this {HERE}; {args.repeat} alternating runs each; median seconds")
    print("| command | base [s] | this [s] | this / base |")
    print("|---|---:|---:|---:|")
    for name in args.only:
        walls = {"base": [], "this": []}
        for _ in range(args.repeat):
            for label, tree in (("base", args.base), ("this", HERE)):
                walls[label].append(time_once(tree, COMMANDS[name]))
        base, this = (statistics.median(walls[k]) for k in ("base", "this"))
        print(f"| {name} | {base:.2f} | {this:.2f} | {this / base:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
