"""`forecast demo OUT_DIR`: the whole toolkit, small, on a CPU, in a few minutes.

The chain is ``forecast.pipeline``'s, one stage after the other (each stage is skipped when its output already
exists, so an interrupted demo continues where it stopped):

1. simulate a small von Karman vortex street (two Reynolds numbers, frames of 32x32) -> ``data/karman.zarr``
2. train a tiny RVD (the shipped config ``demo``) for a time budget -> ``runs/rvd``; fit persistence (plain and
   inflated) and climatology through the same trainer -> ``runs/<baseline>``
3. ensemble rollouts of the test group to netCDF -> ``forecasts/<model>.nc``
4. scores (CRPS per pixel and lead, RMSE, spread, rank histograms, spectra) -> ``scores/<model>.nc``
5. figures -> ``figures/*.png`` (and a GIF of the RVD rollout)
6. ``summary.csv``: one row per model, ``crps`` = mean over variables, leads and pixels (lower is better)

``DemoSettings`` holds the sizes; ``DemoSettings.smoke()`` is a tiny version for tests.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from forecast.atomic import atomic_output
from forecast.configs import CONFIG_DIR
from forecast.pipeline import Pipeline, RolloutSettings, Row, write_csv

#: the demo's RVD: a shipped config (the tiny architecture, N = 100, 2 + 3 frame windows, a learning rate high
#: enough for minutes of training and the deviations named in README "The RVD model")
DEMO_CONFIG = CONFIG_DIR / "demo.yaml"

#: The baselines of the demo: model sections of their configs (data and training are the RVD's).
DEMO_BASELINES: dict[str, dict] = {
    "persistence": {"kind": "persistence"},
    "persistence_inflated": {"kind": "persistence_inflated", "statistics_windows": 256},
    "climatology": {"kind": "climatology", "bank_size": 256},
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. The defaults take 5-6 minutes on two CPU cores."""

    reynolds: tuple[float, ...] = (150.0, 200.0)
    train_frames: int = 160  # per Reynolds number
    test_frames: int = 48
    frame_size: int = 32  # stored frames are frame_size x frame_size ...
    scale: int = 2  # ... block-averaged from a simulation grid twice as fine
    every: int = 64  # lattice steps between frames (about 7 frames per shedding period)
    train_seconds: float | None = 240.0  # time budget of the RVD's training (None: max_train_steps only)
    max_train_steps: int = 3000
    members: int = 8
    inits: int = 8
    context: int = 4
    horizon: int = 8
    sampler: str = "ddim"
    sampling_steps: int = 20
    eta: float = 0.0
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)  # merged into the RVD's model section
    plot_variables: tuple[str, ...] | None = None  # figures of these variables only (None: all)

    @classmethod
    def smoke(cls) -> DemoSettings:
        """A tiny demo for tests: seconds, not minutes (its forecasts mean nothing)."""
        return cls(
            reynolds=(150.0,),
            train_frames=16,
            test_frames=10,
            frame_size=16,
            every=32,
            train_seconds=None,
            max_train_steps=2,
            members=2,
            inits=2,
            context=2,
            horizon=3,
            sampling_steps=2,
            model_overrides={"dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
            plot_variables=("vorticity",),
        )

    def simulation(self):
        from simulators.karman import KarmanConfig

        return KarmanConfig(
            reynolds=tuple(self.reynolds),
            frames=self.train_frames,
            test_frames=self.test_frames,
            every=self.every,
            size=(self.frame_size, self.frame_size),
            scale=self.scale,
            write_batch=8,
        )

    def rollout(self) -> RolloutSettings:
        return RolloutSettings(
            members=self.members,
            inits=self.inits,
            context=self.context,
            horizon=self.horizon,
            sampler=self.sampler,
            steps=self.sampling_steps,
            eta=self.eta,
            seed=self.seed,
            device="cpu",
        )


@dataclass
class DemoResult:
    out_dir: Path
    summary: list[dict]
    files: dict[str, list[Path]]
    seconds: dict[str, float]


def rvd_config(settings: DemoSettings) -> dict:
    from forecast.training import load_config

    config = load_config(DEMO_CONFIG)
    config["model"].update(copy.deepcopy(settings.model_overrides))
    training = config["training"]
    training.update(steps=settings.max_train_steps, time_budget_s=settings.train_seconds, seed=settings.seed)
    if settings.max_train_steps < training["checkpoint_every"]:
        training.update(checkpoint_every=settings.max_train_steps, log_every=1)
    return config


def baseline_config(kind: str, settings: DemoSettings) -> dict:
    config = rvd_config(settings)
    config.pop("diffusion")
    config["model"] = copy.deepcopy(DEMO_BASELINES[kind])
    if kind == "persistence_inflated":
        config["model"]["max_lead"] = settings.horizon
    config["training"].update(
        {"steps": 1, "time_budget_s": None, "checkpoint_every": 1, "log_every": 1, "seed": settings.seed}
    )
    return config


def demo_rows(settings: DemoSettings) -> list[Row]:
    return [Row("rvd", rvd_config(settings))] + [Row(k, baseline_config(k, settings)) for k in DEMO_BASELINES]


def torch_threads() -> int:
    """All cores on an idle machine, one on a busy one: oversubscribed torch threads slow convolutions ~10x.

    Called before the demo's own work starts: the load average then measures other programs, not the demo.
    """
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return cores if load < 0.5 * cores else 1


def format_table(rows: list[dict]) -> str:
    """The summary as a fixed-width table (model, crps, spread-skill, per-variable CRPS), best CRPS first."""
    columns = ["model", "crps", "spread_skill", "members"] + [
        k for k in rows[0] if k.startswith("crps_") and k != "crps"
    ]
    ordered = sorted(rows, key=lambda r: r["crps"])

    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value if value is not None else "")

    cells = [[cell(r.get(c)) for c in columns] for r in ordered]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _write_configs(folder: Path, rows: list[Row]) -> None:
    """The configs, for the reader (and for `forecast train` by hand)."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        with atomic_output(folder / f"{row.name}.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(row.config, sort_keys=False))


class _Stages:
    """Numbered stage headers and their wall times."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total, self.log, self.number = total, log, 0
        self.seconds: dict[str, float] = {}
        self.clock = time.perf_counter()

    def begin(self, text: str) -> None:
        self.number += 1
        self.log(f"\n[{self.number}/{self.total}] {text}")

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.clock
        self.clock = now
        self.log(f"    done in {self.seconds[name]:.0f} s")


def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole chain into ``out_dir`` (see the module docstring); returns the summary rows and files."""
    import torch

    settings = settings or DemoSettings()
    threads = torch_threads()  # before the simulation raises the load average
    pipeline = Pipeline(
        out_dir, simulation=settings.simulation(), rollout=settings.rollout(), progress=progress, log=log
    )
    out, store = pipeline.out, pipeline.store
    rows = demo_rows(settings)
    rvd, baselines = rows[0], rows[1:]
    _write_configs(out / "configs", rows)
    stages = _Stages(6, log)

    reynolds = ", ".join(f"{r:g}" for r in settings.reynolds)
    size = f"{settings.frame_size}x{settings.frame_size}"
    stages.begin(f"simulating the vortex street (Re = {reynolds}, {size} frames) -> {store}")
    pipeline.data()
    stages.end("simulate")

    budget = f"for {settings.train_seconds:.0f} s" if settings.train_seconds is not None else ""
    stages.begin(f"training a tiny RVD {budget} and fitting the baselines -> {out / 'runs'}")
    torch.set_num_threads(threads)
    log(f"    torch uses {threads} thread(s)")
    trained = pipeline.train(rvd)
    log(
        f"    rvd trained for {trained['step']} steps in {trained['elapsed_s']:.0f} s (loss {trained['loss']:.4g})"
    )
    for row in baselines:
        pipeline.train(row, progress=False)
    stages.end("train")

    s = settings
    stages.begin(
        f"ensemble rollouts: {s.inits} inits x {s.members} members x {s.horizon} frames "
        f"({s.sampler}, {s.sampling_steps} steps) -> {out / 'forecasts'}"
    )
    for row in rows:
        pipeline.roll_out(row)
    stages.end("rollout")

    stages.begin(f"scoring -> {out / 'scores'}")
    for row in rows:
        pipeline.score(row)
    stages.end("score")

    stages.begin(f"figures -> {out / 'figures'}")
    variables = list(settings.plot_variables) if settings.plot_variables else None
    figures = pipeline.plot(rows, variables=variables, n_members=min(3, settings.members), labels=False)
    stages.end("plot")

    stages.begin(f"summary -> {out / 'summary.csv'}")
    summary = pipeline.summarize(rows)
    write_csv(summary, out / "summary.csv")
    log(format_table(summary))
    crps = {r["model"]: r["crps"] for r in summary}
    verdict = "beats" if crps["rvd"] < crps["persistence"] else "does NOT beat"
    log(
        f"\nRVD {verdict} persistence (CRPS {crps['rvd']:.4g} vs {crps['persistence']:.4g}); "
        f"total {sum(stages.seconds.values()):.0f} s. Figures: {out / 'figures'}"
    )
    files = {
        "store": [store],
        "runs": [pipeline.run_dir(r) for r in rows],
        "forecasts": [pipeline.forecast_file(r) for r in rows],
        "scores": [pipeline.scores_file(r) for r in rows],
        "figures": figures,
        "summary": [out / "summary.csv"],
    }
    return DemoResult(out_dir=out, summary=summary, files=files, seconds=stages.seconds)


__all__ = ["DEMO_BASELINES", "DEMO_CONFIG", "DemoResult", "DemoSettings", "run_demo"]
