"""`forecast demo OUT_DIR`: the whole toolkit, small, on a CPU, in a few minutes.

The chain, one stage after the other (each stage is skipped when its output already exists, so an interrupted
demo continues where it stopped):

1. simulate a small von Karman vortex street (two Reynolds numbers, frames of 32x32) -> ``data/karman.zarr``
2. train a tiny RVD for a fixed time budget -> ``runs/rvd``; fit persistence (plain and inflated) and
   climatology through the same trainer -> ``runs/<baseline>``
3. ensemble rollouts of the test group to netCDF -> ``forecasts/<model>.nc``
4. scores (CRPS per pixel and lead, RMSE, spread, rank histograms, spectra) -> ``scores/<model>.nc``
5. figures -> ``figures/*.png`` (and a GIF of the RVD rollout)
6. ``summary.csv``: one row per model, ``crps`` = mean over variables, leads and pixels (lower is better)

Everything here calls the same library functions as the CLI commands (``simulators.karman.generate``,
``forecast.training.Trainer``, ``forecast.rollout.rollout``, ``forecast.metrics.score_forecast``,
``forecast.plots.plot_files``). ``DemoSettings`` holds the sizes; ``DemoSettings.smoke()`` is a tiny version for
tests.
"""

from __future__ import annotations

import copy
import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from forecast.atomic import atomic_output
from forecast.errors import ForecastError

#: The RVD of the demo (also in forecast/configs/demo.yaml, kept identical by a test): the tiny architecture,
#: N = 100 diffusion steps, 2 + 3 frame windows, a learning rate high enough for a few minutes of training, and
#: the three named deviations that make minutes of training enough (README "The RVD model"): the denoiser
#: predicts y0 rather than the noise, the predicted y0 is clamped at +-2 while sampling, and mu gets its own MSE.
DEMO_RVD_CONFIG: dict = {
    "model": {
        "kind": "rvd",
        "dim": 16,
        "denoiser_mults": [1, 2, 2],
        "transform_mults": [1, 2],
        "sigma": 2.0,
        "loss": "l2",
        "mu_loss_weight": 1.0,
        "groups": 8,
        "attention_heads": 4,
        "attention_head_dim": 16,
    },
    "diffusion": {"steps": 100, "schedule": "cosine", "clip_x0": 2.0, "prediction": "y0"},
    "data": {"variables": ["u", "v", "vorticity"], "context_frames": 2, "future_frames": 3},
    "training": {
        "batch_size": 4,
        "steps": 3000,  # an upper bound: the demo stops at its time budget (DemoSettings.train_seconds)
        "lr": 5.0e-4,
        "lr_final": 2.0e-4,
        "ema_decay": 0.99,
        "grad_clip": 1.0,
        "checkpoint_every": 100,
        "log_every": 10,
        "seed": 0,
    },
}

#: The baselines of the demo: model sections of their configs (data and training are the RVD's).
DEMO_BASELINES: dict[str, dict] = {
    "persistence": {"kind": "persistence"},
    "persistence_inflated": {"kind": "persistence_inflated", "statistics_windows": 256},
    "climatology": {"kind": "climatology", "bank_size": 256},
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. The defaults take about 6 minutes on two CPU cores (measured 5.4-5.8 min on a loaded machine)."""

    reynolds: tuple[float, ...] = (150.0, 200.0)
    train_frames: int = 160  # per Reynolds number
    test_frames: int = 48
    frame_size: int = 32  # stored frames are frame_size x frame_size ...
    scale: int = 2  # ... block-averaged from a simulation grid twice as fine
    every: int = 64  # lattice steps between frames (about 7 frames per shedding period)
    train_seconds: float = 240.0  # time budget of the RVD's training
    max_train_steps: int = 3000
    chunk_steps: int = 20  # training steps between two checks of the clock
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
            train_seconds=0.0,
            max_train_steps=2,
            chunk_steps=2,
            members=2,
            inits=2,
            context=2,
            horizon=3,
            sampling_steps=2,
            model_overrides={"dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
            plot_variables=("vorticity",),
        )


@dataclass
class DemoResult:
    out_dir: Path
    summary: list[dict]
    files: dict[str, list[Path]]
    seconds: dict[str, float]


def rvd_config(settings: DemoSettings) -> dict:
    config = copy.deepcopy(DEMO_RVD_CONFIG)
    config["model"].update(copy.deepcopy(settings.model_overrides))
    config["training"]["steps"] = settings.max_train_steps
    config["training"]["seed"] = settings.seed
    if settings.max_train_steps < config["training"]["checkpoint_every"]:
        config["training"]["checkpoint_every"] = settings.max_train_steps
        config["training"]["log_every"] = 1
    return config


def baseline_config(kind: str, settings: DemoSettings) -> dict:
    config = copy.deepcopy(DEMO_RVD_CONFIG)
    config.pop("diffusion")
    config["model"] = copy.deepcopy(DEMO_BASELINES[kind])
    if kind == "persistence_inflated":
        config["model"]["max_lead"] = settings.horizon
    config["training"].update({"steps": 1, "checkpoint_every": 1, "log_every": 1, "seed": settings.seed})
    return config


def torch_threads() -> int:
    """All cores on an idle machine, one on a busy one: oversubscribed torch threads slow convolutions ~10x."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return cores if load < 0.5 * cores else 1


def _stage(log: Callable[[str], None], number: int, total: int, text: str) -> None:
    log(f"\n[{number}/{total}] {text}")


# --------------------------------------------------------------------------------------------------- stages
def simulate(store: Path, settings: DemoSettings, progress: bool) -> None:
    from forecast.field_store import open_field_store
    from simulators.karman import KarmanConfig, generate

    if store.exists():
        try:
            open_field_store(store, "test")
            return  # a complete store from an earlier run
        except ForecastError:
            pass  # incomplete: resume below
    config = KarmanConfig(
        reynolds=tuple(settings.reynolds),
        frames=settings.train_frames,
        test_frames=settings.test_frames,
        every=settings.every,
        size=(settings.frame_size, settings.frame_size),
        scale=settings.scale,
        write_batch=8,
    )
    workers = min(len(settings.reynolds), os.cpu_count() or 1)
    scheduler = "local" if workers > 1 else "synchronous"
    generate(store, config, workers=workers, scheduler=scheduler, resume=store.exists(), progress=progress)


def train_rvd(store: Path, run_dir: Path, settings: DemoSettings, progress: bool, log) -> int:
    """Train until the time budget is spent (checked every ``chunk_steps``) or ``max_train_steps``."""
    from tqdm.auto import tqdm

    from forecast.training import Trainer

    config = rvd_config(settings)
    trainer = Trainer(config, store, run_dir, resume=run_dir.exists(), progress=False, log=lambda _: None)
    if trainer.step > 0 and (run_dir / "demo_training_done").exists():
        trainer.close()
        return trainer.step
    log(
        f"tiny RVD: {trainer.n_parameters:,} parameters, {len(trainer.dataset)} training windows, "
        f"budget {settings.train_seconds:.0f} s"
    )
    start = time.perf_counter()
    # the bar counts seconds of the budget (the step count at which it runs out is not known in advance)
    budget = max(1, round(settings.train_seconds))
    bar = tqdm(total=budget, desc="training rvd", unit="s", disable=not progress, dynamic_ncols=True)
    try:
        while trainer.step < settings.max_train_steps:
            trainer.fit(max_steps=trainer.step + settings.chunk_steps)
            elapsed = time.perf_counter() - start
            bar.update(min(budget, round(elapsed)) - bar.n)
            bar.set_postfix(step=trainer.step, loss=f"{_last_loss(run_dir):.4g}")
            if elapsed >= settings.train_seconds:
                break
    finally:
        bar.close()
        trainer.close()
    (run_dir / "demo_training_done").write_text(f"{trainer.step}\n")
    return trainer.step


def _last_loss(run_dir: Path) -> float:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["loss"]) if rows else float("nan")


def fit_baseline(kind: str, store: Path, run_dir: Path, settings: DemoSettings) -> None:
    from forecast.training import Trainer
    from forecast.training.checkpoint import checkpoint_path

    if checkpoint_path(run_dir).exists():
        return
    trainer = Trainer(
        baseline_config(kind, settings),
        store,
        run_dir,
        resume=run_dir.exists(),
        progress=False,
        log=lambda _: None,
    )
    try:
        trainer.fit()
    finally:
        trainer.close()


def roll_out(run_dir: Path, store: Path, out: Path, settings: DemoSettings, progress: bool) -> None:
    from forecast.rollout import rollout
    from forecast.training import load_run

    if out.exists():
        return
    run = load_run(run_dir)
    rollout(
        run.model, run.layout, store, out,
        members=settings.members, context=settings.context, horizon=settings.horizon, inits=settings.inits,
        sampler=settings.sampler, steps=settings.sampling_steps if run.model.name in ("rvd", "vd", "simple_rvd")
        else None,
        eta=settings.eta, seed=settings.seed, attrs={"run_dir": str(run_dir), "checkpoint": str(run.checkpoint)},
        progress=progress,
    )  # fmt: skip


def score(forecast_file: Path, out: Path) -> None:
    """The scores file of ``forecast_file`` (skipped when ``out`` exists); point forecasts are scored too."""
    from forecast.metrics import open_forecast, score_forecast

    if out.exists():
        return
    forecast = open_forecast(forecast_file)
    scores = score_forecast(forecast)
    forecast.close()
    scores.attrs["source_file"] = str(forecast_file)
    with atomic_output(out) as tmp:
        scores.to_netcdf(tmp)


def summarize(scores_files: dict[str, Path]) -> list[dict]:
    """One row per model: ``crps`` (mean over variables of crps_mean_V averaged over leads) and per variable."""
    import xarray as xr

    from forecast.metrics.scores import score_variables

    rows = []
    for model, path in scores_files.items():
        with xr.open_dataset(path) as ds:
            names = sorted(score_variables(ds))
            per_var = {f"crps_{n}": float(ds[f"crps_mean_{n}"].mean()) for n in names}
            spread_skill = {
                f"spread_skill_{n}": float(ds[f"spread_skill_{n}"].mean())
                for n in names
                if f"spread_skill_{n}" in ds
            }
            members = int(ds.attrs["ensemble_size"])
        rows.append(
            {
                "model": model,
                "crps": sum(per_var.values()) / len(per_var),
                "members": members,
                **per_var,
                **spread_skill,
            }
        )
    return rows


def write_summary(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def format_table(rows: list[dict]) -> str:
    """The summary as a fixed-width table (model, crps, per-variable CRPS), best CRPS first."""
    columns = ["model", "crps", "members"] + [k for k in rows[0] if k.startswith("crps_")]
    ordered = sorted(rows, key=lambda r: r["crps"])
    cells = [[str(r[c]) if not isinstance(r[c], float) else f"{r[c]:.4g}" for c in columns] for r in ordered]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- the demo
def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole chain into ``out_dir`` (see the module docstring); returns the summary rows and files."""
    import torch

    settings = settings or DemoSettings()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ForecastError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    store = out / "data" / "karman.zarr"
    runs, forecasts, scores_dir, figures = out / "runs", out / "forecasts", out / "scores", out / "figures"
    for folder in (store.parent, runs, forecasts, scores_dir, figures, out / "configs"):
        folder.mkdir(parents=True, exist_ok=True)
    models = ["rvd", *DEMO_BASELINES]
    seconds: dict[str, float] = {}
    total = 6
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now
        log(f"    done in {seconds[name]:.0f} s")

    # the configs, for the reader (and for `forecast train` by hand)
    with atomic_output(out / "configs" / "rvd.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(rvd_config(settings), sort_keys=False))
    for kind in DEMO_BASELINES:
        with atomic_output(out / "configs" / f"{kind}.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(baseline_config(kind, settings), sort_keys=False))

    _stage(
        log,
        1,
        total,
        f"simulating the vortex street (Re = {', '.join(f'{r:g}' for r in settings.reynolds)}, "
        f"{settings.frame_size}x{settings.frame_size} frames) -> {store}",
    )
    simulate(store, settings, progress)
    lap("simulate")

    _stage(
        log,
        2,
        total,
        f"training a tiny RVD for {settings.train_seconds:.0f} s and fitting the baselines -> {runs}",
    )
    threads = torch_threads()
    torch.set_num_threads(threads)
    log(f"    torch uses {threads} thread(s)")
    steps = train_rvd(store, runs / "rvd", settings, progress, log)
    log(f"    rvd trained for {steps} steps (loss {_last_loss(runs / 'rvd'):.4g})")
    for kind in DEMO_BASELINES:
        fit_baseline(kind, store, runs / kind, settings)
    lap("train")

    _stage(
        log,
        3,
        total,
        f"ensemble rollouts: {settings.inits} inits x {settings.members} members x "
        f"{settings.horizon} frames ({settings.sampler}, {settings.sampling_steps} steps) -> {forecasts}",
    )
    for model in models:
        roll_out(runs / model, store, forecasts / f"{model}.nc", settings, progress)
    lap("rollout")

    _stage(log, 4, total, f"scoring -> {scores_dir}")
    for model in models:
        score(forecasts / f"{model}.nc", scores_dir / f"{model}.nc")
    lap("score")

    _stage(log, 5, total, f"figures -> {figures}")
    from forecast.plots import plot_files

    score_files = [scores_dir / f"{m}.nc" for m in models]
    variables = list(settings.plot_variables) if settings.plot_variables else None
    written = plot_files(
        [*score_files, forecasts / "rvd.nc"], figures, n_members=min(3, settings.members), variables=variables
    )
    lap("plot")

    _stage(log, 6, total, f"summary -> {out / 'summary.csv'}")
    rows = summarize({m: scores_dir / f"{m}.nc" for m in models})
    write_summary(rows, out / "summary.csv")
    log(format_table(rows))
    by_model = {r["model"]: r["crps"] for r in rows}
    verdict = "beats" if by_model["rvd"] < by_model["persistence"] else "does NOT beat"
    log(
        f"\nRVD {verdict} persistence (CRPS {by_model['rvd']:.4g} vs {by_model['persistence']:.4g}); "
        f"total {sum(seconds.values()):.0f} s. Figures: {figures}"
    )
    files = {
        "store": [store],
        "runs": [runs / m for m in models],
        "forecasts": [forecasts / f"{m}.nc" for m in models],
        "scores": score_files,
        "figures": written,
        "summary": [out / "summary.csv"],
    }
    return DemoResult(out_dir=out, summary=rows, files=files, seconds=seconds)


__all__ = ["DEMO_BASELINES", "DEMO_RVD_CONFIG", "DemoResult", "DemoSettings", "run_demo"]
