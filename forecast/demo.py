"""`forecast demo OUT_DIR`: the whole toolkit, small, on a CPU, in a few minutes.

The chain is ``forecast.pipeline``'s, one stage after the other (each stage is skipped when its output already
exists, so an interrupted demo continues where it stopped):

1. simulate a small stochastic von Karman vortex street (two Reynolds numbers, frames of 32x32, free-stream
   turbulence at the inlet: ``forecast.pipeline.STREET_NOISE``) with a small ``truth`` group (for 4 test starts
   per Reynolds number, 8 continuations of the simulator from the same state with independent future
   turbulence) -> ``data/karman.zarr``
2. train a tiny RVD (the shipped config ``demo``) for a time budget -> ``runs/rvd``; fit persistence (plain and
   inflated) and climatology through the same trainer -> ``runs/<baseline>``
3. the RVD's spread calibration (``forecast.spread_calibration``, ``DemoSettings.spread_calibration``): a
   validation store (the same street with another inflow-noise seed) -> ``data/validation.zarr``, the RVD rolled
   out from its truth starts -> ``forecasts/validation/rvd.nc``, and a factor per variable and lead on the
   members' deviations from their mean that makes the spread-skill ratio 1 there ->
   ``runs/rvd/spread_calibration.json``; nothing is fitted on the scored store
4. ensemble rollouts from exactly the truth group's starts to netCDF (the RVD's spread-calibrated) ->
   ``forecasts/<model>.nc``, and the truth ensemble itself as a forecast -> ``forecasts/oracle.nc``
5. scores against the verifying truth and the truth ensemble (CRPS per pixel and lead, the oracle CRPS, RMSE,
   spread, spread-skill, rank histograms, spectra) -> ``scores/<model>.nc``
6. figures -> ``figures/*.png`` (and a GIF of the RVD rollout)
7. ``summary.csv``: one row per model and the ``Oracle`` row (the truth ensemble): ``crps`` = mean over
   variables, leads and pixels (lower is better), ``crps_oracle_ratio`` = crps / the oracle CRPS (1 = as good as
   the perfect model), ``spread_skill`` (1 = calibrated)

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
from forecast.claims import claim_output
from forecast.configs import CONFIG_DIR
from forecast.io_errors import writing
from forecast.pipeline import ORACLE, STREET_NOISE, Pipeline, RolloutSettings, Row, write_csv
from forecast.rollout_options import DEFAULTS as ROLLOUT_DEFAULTS

#: the demo's RVD: a shipped config (the tiny architecture, N = 100, 2 + 3 frame windows, a learning rate high
#: enough for minutes of training and the calibrated options of rvd_calibrated.yaml; its header says which)
DEMO_CONFIG = CONFIG_DIR / "demo.yaml"

#: The baselines of the demo: model sections of their configs (data and training are the RVD's).
DEMO_BASELINES: dict[str, dict] = {
    "persistence": {"kind": "persistence"},
    "persistence_inflated": {"kind": "persistence_inflated", "statistics_windows": 256},
    "climatology": {"kind": "climatology", "bank_size": 256},
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults' wall time on a 2-core CPU is in docs/results/demo.md."""

    reynolds: tuple[float, ...] = (150.0, 200.0)
    train_frames: int = 160  # per Reynolds number
    test_frames: int = 32  # room for the truth starts: context + horizon - 1 + truth_inits at least
    frame_size: int = 32  # stored frames are frame_size x frame_size ...
    scale: int = 2  # ... block-averaged from a simulation grid twice as fine
    every: int = 64  # lattice steps between frames (about 7 frames per shedding period)
    truth_members: int = 8  # continuations per truth start (the oracle's ensemble size)
    truth_inits: int = 4  # truth starts per Reynolds number: the forecasts' inits
    # time budget of the RVD's training (None: max_train_steps only): three minutes, so that the whole demo takes
    # about five on two cores (issue 35: CI runs it)
    train_seconds: float | None = 180.0
    max_train_steps: int = 3000
    members: int = 8
    context: int = 4
    horizon: int = 8
    # the rollout's defaults (``forecast.rollout_options``): DPM-Solver++(2M), its own number of steps
    sampler: str = ROLLOUT_DEFAULTS.sampler
    sampling_steps: int | None = ROLLOUT_DEFAULTS.steps
    eta: float = ROLLOUT_DEFAULTS.eta
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)  # merged into the RVD's model section
    plot_variables: tuple[str, ...] | None = None  # figures of these variables only (None: all)
    # the RVD's spread calibrated on a validation store (another inflow-noise seed): issue 31's kept option
    spread_calibration: bool = True

    @classmethod
    def smoke(cls) -> DemoSettings:
        """A tiny demo for tests: seconds, not minutes (its forecasts mean nothing)."""
        return cls(
            reynolds=(150.0,),
            train_frames=16,
            test_frames=10,
            frame_size=16,
            every=32,
            truth_members=2,
            truth_inits=2,
            train_seconds=None,
            max_train_steps=2,
            members=2,
            context=2,
            horizon=3,
            sampling_steps=2,
            model_overrides={"dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
            plot_variables=("vorticity",),
        )

    def simulation(self, noise_seed: int | None = None):
        """The stochastic street (``STREET_NOISE``) with a truth group over the forecasts' context and horizon;
        ``noise_seed``: another draw of the inflow turbulence (the validation store)."""
        from simulators.karman import KarmanConfig

        noise = STREET_NOISE if noise_seed is None else {**STREET_NOISE, "noise_seed": noise_seed}
        return KarmanConfig(
            reynolds=tuple(self.reynolds),
            frames=self.train_frames,
            test_frames=self.test_frames,
            every=self.every,
            size=(self.frame_size, self.frame_size),
            scale=self.scale,
            write_batch=8,
            **noise,
            truth_members=self.truth_members,
            truth_inits=self.truth_inits,
            truth_horizon=self.horizon,
            truth_context=self.context,
        )

    def rollout(self) -> RolloutSettings:
        """Forecasts from exactly the truth starts (scored against the truth ensemble too)."""
        return RolloutSettings(
            members=self.members,
            inits=None,
            starts="truth",
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


#: the validation store's inflow-noise seed: the demo store's plus one
VALIDATION_NOISE_SEED = STREET_NOISE["noise_seed"] + 1


def demo_rows(settings: DemoSettings, out_dir: Path | None = None) -> list[Row]:
    """The RVD (spread-calibrated by ``runs/rvd/spread_calibration.json`` under ``out_dir`` where the settings
    say so) and the baselines."""
    from forecast.spread_calibration import CALIBRATION_FILE  # numpy and xarray: not at CLI start-up

    rollout = {}
    if settings.spread_calibration and out_dir is not None:
        rollout = {"spread_calibration": str(Path(out_dir) / "runs" / "rvd" / CALIBRATION_FILE)}
    rvd = Row("rvd", rvd_config(settings), rollout=rollout)
    return [rvd] + [Row(k, baseline_config(k, settings)) for k in DEMO_BASELINES]


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


#: the summary table's columns before the per-variable CRPS, with their printed headers
TABLE_COLUMNS = {
    "model": "model",
    "crps": "crps",
    "crps_oracle_ratio": "crps/oracle",
    "spread_skill": "spread_skill",
    "members": "members",
}


def format_table(rows: list[dict]) -> str:
    """The summary as a fixed-width table (model, crps, crps / oracle crps, spread-skill, members, per-variable
    CRPS), best CRPS first: the Oracle row, the floor, on top."""
    columns = [*TABLE_COLUMNS, *(k for k in rows[0] if k.startswith("crps_") and k != "crps_oracle_ratio")]
    ordered = sorted(rows, key=lambda r: r["crps"])

    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value if value is not None else "")

    cells = [[cell(r.get(c)) for c in columns] for r in ordered]
    headers = [TABLE_COLUMNS.get(c, c) for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def reading_guide(summary: list[dict]) -> str:
    """How to read the table, with the RVD's numbers: its CRPS against persistence's and the oracle's, and
    its spread-skill ratio."""
    by_model = {r["model"]: r for r in summary}
    rvd, persistence = by_model["rvd"], by_model["persistence"]
    verdict = "beats" if rvd["crps"] < persistence["crps"] else "does NOT beat"
    spread = rvd["spread_skill"]
    reading = "too narrow" if spread < 0.9 else "too wide" if spread > 1.1 else "calibrated"
    oracle = by_model.get(ORACLE, {}).get("spread_skill")
    beside = f"; the Oracle's {oracle:.3g}, so {spread / oracle:.3g} x the oracle's" if oracle else ""
    return "\n".join(
        [
            "crps: lower is better; Oracle: the truth ensemble (the simulator's own continuations from the same "
            "states), the floor for a forecast from frames; crps/oracle: 1 = as good as the perfect model;",
            "spread_skill: sqrt((m+1)/m) spread / RMSE, 1 = calibrated, < 1 too narrow, > 1 too wide "
            "(the Oracle's own is about 1).",
            f"RVD {verdict} persistence (CRPS {rvd['crps']:.4g} vs {persistence['crps']:.4g}), its CRPS is "
            f"{rvd['crps_oracle_ratio']:.3g} x the oracle's, its spread-skill {spread:.3g} ({reading}{beside}).",
        ]
    )


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


@dataclass
class _Demo:
    """One demo's chain, settings, models (the RVD first) and stage clock; one method per stage."""

    pipeline: Pipeline
    settings: DemoSettings
    rows: list[Row]
    stages: _Stages
    log: Callable[[str], None]

    def simulate(self) -> None:
        s = self.settings
        reynolds = ", ".join(f"{r:g}" for r in s.reynolds)
        self.stages.begin(
            f"simulating the stochastic vortex street (Re = {reynolds}, {s.frame_size}x{s.frame_size} frames, "
            f"inflow turbulence {STREET_NOISE['inflow_noise']:g} U) and its truth ensembles "
            f"({s.truth_inits * len(s.reynolds)} starts x {s.truth_members} members) -> {self.pipeline.store}"
        )
        self.pipeline.data()
        self.stages.end("simulate")

    def train(self, threads: int) -> None:
        import torch

        s, rvd = self.settings, self.rows[0]
        budget = f"for {s.train_seconds:.0f} s" if s.train_seconds is not None else ""
        self.stages.begin(
            f"training a tiny RVD {budget} and fitting the baselines -> {self.pipeline.out / 'runs'}"
        )
        torch.set_num_threads(threads)
        self.log(f"    torch uses {threads} thread(s)")
        trained = self.pipeline.train(rvd)
        self.log(
            f"    rvd trained for {trained['step']} steps in {trained['elapsed_s']:.0f} s "
            f"(loss {trained['loss']:.4g})"
        )
        for row in self.rows[1:]:
            self.pipeline.train(row, progress=False)
        self.stages.end("train")

    def calibrate(self) -> None:
        """The RVD's spread calibration, fitted on its forecasts of a validation store (never the scored one)."""
        from forecast.pipeline import roll_out
        from forecast.spread_calibration import CALIBRATION_FILE, SpreadCalibration, fit_from_file

        s, rvd, out = self.settings, self.rows[0], self.pipeline.out
        self.stages.begin(
            f"calibrating the RVD's spread on a validation store (inflow-noise seed {VALIDATION_NOISE_SEED}) "
            f"-> {self.pipeline.run_dir(rvd) / CALIBRATION_FILE}"
        )
        validation = Pipeline(
            out,
            store=out / "data" / "validation.zarr",
            simulation=s.simulation(noise_seed=VALIDATION_NOISE_SEED),
            progress=self.pipeline.progress,
            log=self.log,
        )
        forecast = out / "forecasts" / "validation" / "rvd.nc"
        roll_out(self.pipeline.run_dir(rvd), validation.data(), forecast, s.rollout(), self.pipeline.progress)
        path = Path(rvd.rollout["spread_calibration"])
        if not path.is_file():
            fit_from_file(forecast, scored_store=self.pipeline.store).save(path)
        factors = SpreadCalibration.load(path).factors
        k = [f for values in factors.values() for f in values]
        self.log(f"    spread factors {min(k):.3g}-{max(k):.3g} over variables and leads")
        self.stages.end("calibrate")

    def roll_out(self) -> None:
        s, rollout = self.settings, self.pipeline.settings  # the second resolves the sampler's own steps
        self.stages.begin(
            f"ensemble rollouts from the truth starts: {s.truth_inits * len(s.reynolds)} inits x {s.members} "
            f"members x {s.horizon} frames ({rollout.sampler}, {rollout.sampling_steps() or 'all'} steps) -> "
            f"{self.pipeline.out / 'forecasts'}"
        )
        for row in self.rows:
            self.pipeline.roll_out(row)
        self.stages.end("rollout")

    def score(self) -> Row:
        """Every model's scores, then the truth ensemble's as a forecast of its own: returns the Oracle row."""
        self.stages.begin(
            f"scoring against the truth and the truth ensemble, and the truth ensemble itself (the Oracle row) "
            f"-> {self.pipeline.out / 'scores'}"
        )
        for row in self.rows:
            self.pipeline.score(row)
        oracle = self.pipeline.oracle(self.rows[0])
        self.stages.end("score")
        return oracle

    def plot(self) -> list[Path]:
        s = self.settings
        self.stages.begin(f"figures -> {self.pipeline.out / 'figures'}")
        variables = list(s.plot_variables) if s.plot_variables else None
        figures = self.pipeline.plot(
            self.rows, variables=variables, n_members=min(3, s.members), labels=False
        )
        self.stages.end("plot")
        return figures

    def summarize(self, oracle: Row) -> list[dict]:
        path = self.pipeline.out / "summary.csv"
        self.stages.begin(f"summary -> {path}")
        summary = self.pipeline.summarize([*self.rows, oracle])
        write_csv(summary, path)
        self.log(format_table(summary))
        self.log("\n" + reading_guide(summary))
        self.log(f"Total {sum(self.stages.seconds.values()):.0f} s. Figures: {self.pipeline.out / 'figures'}")
        return summary

    def files(self, oracle: Row, figures: list[Path]) -> dict[str, list[Path]]:
        rows, p = [*self.rows, oracle], self.pipeline
        return {
            "store": [p.store],
            "runs": [p.run_dir(r) for r in self.rows],
            "forecasts": [p.forecast_file(r) for r in rows],
            "scores": [p.scores_file(r) for r in rows],
            "figures": figures,
            "summary": [p.out / "summary.csv"],
        }


def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole chain into ``out_dir`` (see the module docstring); returns the summary rows and files."""
    settings = settings or DemoSettings()
    # one demo per folder at a time; a failed write is one line, and --resume continues after it
    with claim_output(out_dir), writing(out_dir, "; the finished stages are kept: rerun with --resume"):
        return _run_demo(out_dir, settings, progress, log)


def _run_demo(
    out_dir: str | os.PathLike, settings: DemoSettings, progress: bool, log: Callable[[str], None]
) -> DemoResult:
    threads = torch_threads()  # before the simulation raises the load average
    pipeline = Pipeline(
        out_dir, simulation=settings.simulation(), rollout=settings.rollout(), progress=progress, log=log
    )
    demo = _Demo(
        pipeline,
        settings,
        demo_rows(settings, pipeline.out),
        _Stages(6 + settings.spread_calibration, log),
        log,
    )
    _write_configs(pipeline.out / "configs", demo.rows)
    demo.simulate()
    demo.train(threads)
    if settings.spread_calibration:
        demo.calibrate()
    demo.roll_out()
    oracle = demo.score()
    figures = demo.plot()
    summary = demo.summarize(oracle)
    return DemoResult(
        out_dir=pipeline.out, summary=summary, files=demo.files(oracle, figures), seconds=demo.stages.seconds
    )


__all__ = ["DEMO_BASELINES", "DEMO_CONFIG", "DemoResult", "DemoSettings", "run_demo"]
