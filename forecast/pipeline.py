"""The experiment chain in one place: simulate (if missing), train, roll out, score, tabulate, plot.

``forecast demo``, the paper-table scripts (``experiments/paper_tables.py``) and the calibration benchmark
(``experiments/calibration.py``) all run it. Everything goes under one output folder::

    OUT/data/karman.zarr        the field store (simulated unless a store is given)
    OUT/runs/<row>/             run directories (rows with identical configs share the first one's)
    OUT/forecasts/<row>.nc      ensemble forecasts of the test group
    OUT/scores/<row>.nc         their scores
    OUT/figures/                the figures of ``forecast plot``

With ``RolloutSettings(starts="truth")`` (a store with a ``truth`` group: the stochastic vortex street,
``STREET_NOISE`` and ``truth_*`` options of ``KarmanConfig``) every row forecasts exactly the truth group's starts
and is scored against the truth ensemble too (oracle CRPS, spread ratio, ...); ``Pipeline.oracle`` writes the
truth ensemble itself as a forecast and scores it, the ``Oracle`` row of a table.

Each stage is skipped when its output exists, and an interrupted stage resumes: a complete store is reused and
a partial one continued; training resumes from its last checkpoint and returns at once when the run has
reached its steps or its time budget (``training.time_budget_s``, counted over resumes); forecast files are
written with rollout's resume protocol; a scores file is written atomically.

Use::

    from forecast.pipeline import Pipeline, Row, RolloutSettings
    from simulators.karman import KarmanConfig

    pipeline = Pipeline("out/x", simulation=KarmanConfig(...), rollout=RolloutSettings(members=8, horizon=16))
    rows = [Row("rvd", rvd_config), Row("persistence", persistence_config, label="Persistence")]
    result = pipeline.run(rows)            # every stage for every row, then the summary rows
    result = pipeline.run(rows, jobs=2)    # ... two rows at a time in worker processes (``run_rows``)
    result.summary                          # one dict per row: model, crps, crps_<var>, spread_skill, ...

or stage by stage: ``pipeline.data()``, ``pipeline.train(row)``, ``pipeline.roll_out(row)``,
``pipeline.score(row)``, ``pipeline.summarize(rows)``, ``pipeline.plot(rows)``. ``Row.rollout`` overrides the
pipeline's ``RolloutSettings`` for one row (``{"sampler": "ddpm", "steps": None}``), so rows that differ only in
how they sample share one trained run. ``per_lead`` reads a scores file's curves over lead time, averaged over
variables.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.atomic import atomic_output
from forecast.errors import ForecastError
from forecast.rollout_options import RolloutOptions

#: free-stream turbulence at the inlet of the stochastic vortex street (``KarmanConfig`` options: std of the
#: inflow velocity relative to U; correlation time in convective times D / U and length in cylinder diameters,
#: see ``forecast simulate karman --help``); the calibration benchmark and ``forecast demo`` simulate with it
STREET_NOISE = {"inflow_noise": 0.1, "noise_time": 2.0, "noise_length": 2.0, "noise_seed": 0}
#: the label of the truth ensemble's own row in tables
ORACLE = "Oracle"


#: how every row's forecasts are made (``Row.rollout`` overrides them per row): the rollout options themselves,
#: with the defaults of ``forecast rollout`` and ``rollout_run``
RolloutSettings = RolloutOptions


@dataclass(frozen=True)
class Row:
    """One model of an experiment: ``name`` names its files, ``config`` is its training config."""

    name: str
    config: dict
    label: str | None = None  # in tables and figure legends (default: name)
    rollout: dict = field(default_factory=dict)  # overrides of the pipeline's RolloutSettings

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass
class PipelineResult:
    summary: list[dict]
    training: dict[str, dict]  # final training metrics per row
    figures: list[Path]


class Pipeline:
    """The chain for a list of ``Row`` objects in the output folder ``out`` (see the module docstring).

    ``store``: an existing field store to use instead of ``OUT/data/karman.zarr``; ``simulation``: the
    ``simulators.karman.KarmanConfig`` to simulate that store with when it is missing.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        store: str | os.PathLike | None = None,
        simulation: Any = None,
        rollout: RolloutSettings | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ForecastError(f"{self.out} exists and is not a directory")
        self.store = Path(store) if store is not None else self.out / "data" / "karman.zarr"
        self.simulation = simulation
        self.settings = rollout or RolloutSettings()
        self.progress = progress
        self.log = log
        self._runs: dict[str, Path] = {}  # config (as JSON) -> the run directory that trains it

    # ------------------------------------------------------------------ paths
    def run_dir(self, row: Row) -> Path:
        """The run directory of ``row``: the first row with the same config trains it."""
        key = json.dumps(row.config, sort_keys=True, default=str)
        return self._runs.setdefault(key, self.out / "runs" / row.name)

    def scored(self, row: Row) -> bool:
        """Whether ``row`` is through its scores (its run trained, its forecast made and scored): a rerun only
        reads its training metrics and runs any further stage, which skips its own finished work."""
        return self.forecast_file(row).is_file() and self.scores_file(row).is_file()

    def forecast_file(self, row: Row) -> Path:
        return self.out / "forecasts" / f"{row.name}.nc"

    def scores_file(self, row: Row) -> Path:
        return self.out / "scores" / f"{row.name}.nc"

    def rollout_settings(self, row: Row) -> RolloutSettings:
        return self.settings.with_overrides(row.rollout)

    # ------------------------------------------------------------------ stages
    def data(self) -> Path:
        """The field store: reused when complete, simulated (or a partial one continued) otherwise."""
        simulate(self.store, self.simulation, self.progress)
        return self.store

    def train(self, row: Row, progress: bool | None = None) -> dict:
        """Train (or resume) ``row``'s run; returns its final metrics (at once when the run is finished)."""
        progress = self.progress if progress is None else progress
        return train(row.config, self.store, self.run_dir(row), progress)

    def roll_out(self, row: Row) -> Path:
        out = self.forecast_file(row)
        roll_out(self.run_dir(row), self.store, out, self.rollout_settings(row), self.progress)
        return out

    def score(self, row: Row) -> Path:
        """The scores file of ``row`` (against the truth ensemble too when the row starts at its starts)."""
        out = self.scores_file(row)
        truth = self.store if self.rollout_settings(row).starts == "truth" else None
        score(self.forecast_file(row), out, truth=truth)
        return out

    def oracle(self, reference: Row, name: str = "oracle") -> Row:
        """The truth ensemble as a forecast file of ``reference``'s layout (``forecasts/<name>.nc``) and its
        scores against the verifying truth; returns its row (label ``ORACLE``) for ``summarize``. Needs
        ``starts="truth"`` for ``reference``."""
        if self.rollout_settings(reference).starts != "truth":
            raise ForecastError("the oracle row needs forecasts from the truth starts (starts='truth')")
        row = Row(name, {}, label=ORACLE)
        oracle_forecast(self.store, self.forecast_file(reference), self.forecast_file(row))
        score(self.forecast_file(row), self.scores_file(row), truth=self.store)
        return row

    def summarize(self, rows: Sequence[Row]) -> list[dict]:
        return [{"model": row.title, **summary_row(self.scores_file(row))} for row in rows]

    def plot(
        self,
        rows: Sequence[Row],
        samples_of: Row | None = None,
        variables: list[str] | None = None,
        n_members: int = 3,
        labels: bool = True,
    ) -> list[Path]:
        """The figures of the rows' scores, and the sample figures of ``samples_of`` (default: the first row)."""
        from forecast.plots import plot_files

        samples_of = samples_of or rows[0]
        paths = [self.scores_file(r) for r in rows] + [self.forecast_file(samples_of)]
        return plot_files(
            paths,
            self.out / "figures",
            n_members=n_members,
            variables=variables,
            labels=[r.title for r in [*rows, samples_of]] if labels else None,
        )

    def run_rows(self, rows: Sequence[Row], jobs: int = 1, after: RowStage | None = None) -> dict[str, dict]:
        """Train, roll out and score every row, ``jobs`` rows at a time (``run_rows``); returns each row's final
        training metrics by name. The store must exist (``data``)."""
        return run_rows([(self, rows)], jobs, self.log, after)[0]

    def run(self, rows: Sequence[Row], plot: bool = True, jobs: int = 1, **plot_options) -> PipelineResult:
        """Every stage for every row (data first; ``jobs`` rows at a time in worker processes, see ``run_rows``),
        then the summary and, with ``plot``, the figures."""
        self.data()
        training = self.run_rows(rows, jobs)
        figures = self.plot(rows, **plot_options) if plot else []
        return PipelineResult(summary=self.summarize(rows), training=training, figures=figures)


# --------------------------------------------------------------------------------------------------- many rows
def default_jobs(rows: int, gpu: bool) -> int:
    """Rows to train at once: one per core on CPUs (capped by the rows), one on a GPU.

    Small models use two cores poorly: two rows on one thread each train ~1.5x faster in all than the same rows
    one after the other on two threads each (docs/results/calibration.md).
    """
    return 1 if gpu else max(1, min(os.cpu_count() or 1, rows))


#: a further stage of a row, run after its scores (in its worker): ``after(pipeline, row)``; picklable for workers
RowStage = Callable[["Pipeline", Row], Any]


def run_rows(
    work: Sequence[tuple[Pipeline, Sequence[Row]]],
    jobs: int = 1,
    log: Callable[[str], None] = print,
    after: RowStage | None = None,
) -> list[dict[str, dict]]:
    """Train, roll out and score the rows of one or more pipelines (their stores must exist); returns, per
    pipeline, each row's final training metrics by row name.

    With ``jobs`` 1 the rows run here, one after another. Above 1 they run in that many spawned worker
    processes, each with an equal share of the cores as torch threads and no progress bars; rows that share a
    run (``Pipeline.run_dir``) go to one worker, in order. Work starts in the order given (list the longest
    first), and a failure cancels the rows not yet started. Finished stages are skipped as always, so an
    interrupted call resumes. ``after(pipeline, row)`` runs after each row's scores, in the row's worker (a
    module-level function or a ``functools.partial`` of one, so that it can be sent there).
    """
    if jobs < 1:
        raise ForecastError(f"jobs must be at least 1, got {jobs}")
    total = sum(len(rows) for _, rows in work)
    if jobs == 1:
        results: list[dict[str, dict]] = [{} for _ in work]
        done = 0
        for i, ((chain, rows), metrics) in enumerate(zip(work, results)):
            for row in rows:
                done += 1
                log(f"[{done}/{total}] {_title(work, i, row)}: train, roll out, score")
                metrics[row.name] = _run_row(chain, row, after)[0]
        return results
    original, (finished_here, work) = work, _finish_scored_rows(work, after)
    if not any(rows for _, rows in work):
        log(f"{total} rows: every one scored already")
        return finished_here
    # the pipelines' runs taken in turn (the first of each, then the second, ...): each list's longest first
    per_chain = [[(i, group) for group in _by_run(chain, rows)] for i, (chain, rows) in enumerate(work)]
    groups = [g for turn in itertools.zip_longest(*per_chain) for g in turn if g is not None]
    workers = min(jobs, len(groups))
    threads = max(1, (os.cpu_count() or 1) // workers)
    log(
        f"{total} rows, {workers} at a time in worker processes ({threads} torch thread{'s' * (threads > 1)} each)"
    )
    finished = _run_in_workers(work, groups, workers, threads, log, after)  # every row (a failure raises)
    for done, here in zip(finished, finished_here):
        done.update(here)
    return [{r.name: done[r.name] for r in rows} for done, (_, rows) in zip(finished, original)]


def _finish_scored_rows(
    work: Sequence[tuple[Pipeline, Sequence[Row]]], after: RowStage | None
) -> tuple[list[dict[str, dict]], list[tuple[Pipeline, list[Row]]]]:
    """The rows scored already (a rerun), finished here at once, so that no worker process is started (and its
    imports paid) for them: their training metrics per pipeline, and the work left for the workers."""
    here = [{r.name: _run_row(chain, r, after)[0] for r in rows if chain.scored(r)} for chain, rows in work]
    left = [(chain, [r for r in rows if r.name not in done]) for (chain, rows), done in zip(work, here)]
    return here, left


def _title(work: Sequence[tuple[Pipeline, Sequence[Row]]], i: int, row: Row) -> str:
    """``row``'s title in logs, with its pipeline's folder when there are several pipelines."""
    return f"{row.title} ({work[i][0].out.name})" if len(work) > 1 else row.title


def _by_run(chain: Pipeline, rows: Sequence[Row]) -> list[list[Row]]:
    """``rows`` grouped by the run they train (in order of first appearance)."""
    groups: dict[Path, list[Row]] = {}
    for row in rows:
        groups.setdefault(chain.run_dir(row), []).append(row)
    return list(groups.values())


def _run_row(chain: Pipeline, row: Row, after: RowStage | None = None) -> tuple[dict, str]:
    """Train, roll out and score ``row`` (then ``after``); its final training metrics and a line saying how long
    each took."""
    start = time.time()
    metrics = chain.train(row)
    trained = time.time()
    chain.roll_out(row)
    chain.score(row)
    line = f"trained in {trained - start:.0f} s, rolled out and scored in {time.time() - trained:.0f} s"
    if after is not None:
        scored = time.time()
        after(chain, row)
        line += f", then {time.time() - scored:.0f} s more"
    return metrics, line


def _run_group(
    chain: Pipeline, rows: list[Row], threads: int, after: RowStage | None
) -> list[tuple[str, dict, str]]:
    """A worker process's share: ``rows`` (one run) on ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    return [(row.name, *_run_row(chain, row, after)) for row in rows]


def _silent(_: str) -> None:
    pass


def _run_in_workers(work, groups, workers: int, threads: int, log, after) -> list[dict[str, dict]]:
    """``groups`` of rows in ``workers`` spawned processes; per pipeline, the rows' training metrics by name (in
    the order they finished)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no fork after torch has started its threads
    rows_by_name = {(i, r.name): r for i, (_, rows) in enumerate(work) for r in rows}
    finished: list[dict[str, dict]] = [{} for _ in work]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures = {}
        for i, group in groups:
            worker = copy.copy(work[i][0])  # pickled to the worker: no progress bars, no log callable
            worker.progress, worker.log = False, _silent
            futures[pool.submit(_run_group, worker, group, threads, after)] = i
        done, total = 0, sum(len(g) for _, g in groups)
        for future in as_completed(futures):
            i = futures[future]
            for name, metrics, line in future.result():
                done += 1
                finished[i][name] = metrics
                log(f"[{done}/{total}] {_title(work, i, rows_by_name[i, name])}: {line}")
    except BaseException as exc:
        running = sum(f.running() for f in futures)
        if running and not isinstance(exc, KeyboardInterrupt):  # say so now: a running row may take an hour
            log(f"a row failed ({exc}); waiting for the {running} running to finish, the rest are cancelled")
        pool.shutdown(wait=True, cancel_futures=True)  # rows already running finish; the rest never start
        raise
    pool.shutdown(wait=True)
    return finished


# --------------------------------------------------------------------------------------------------- the stages
def simulate(store: Path, simulation: Any, progress: bool) -> None:
    """Simulate ``store`` with ``simulation`` (a ``KarmanConfig`` or ``KolmogorovConfig``), unless it is complete."""
    from forecast.field_store import TEST_GROUP, open_field_store

    if store.exists():
        try:
            open_field_store(store, TEST_GROUP)
            return  # complete
        except ForecastError:
            pass  # incomplete: resume below
    if simulation is None:
        raise ForecastError(f"no field store at {store} and no simulation settings to make one")
    from simulators.kolmogorov.config import KolmogorovConfig

    if isinstance(simulation, KolmogorovConfig):
        from simulators.kolmogorov import generate
    else:
        from simulators.karman import generate

    store.parent.mkdir(parents=True, exist_ok=True)
    workers = min(simulation.runs, os.cpu_count() or 1)
    scheduler = "local" if workers > 1 else "synchronous"
    generate(
        store, simulation, workers=workers, scheduler=scheduler, resume=store.exists(), progress=progress
    )


def train(config: dict, store: Path, run_dir: Path, progress: bool) -> dict:
    """Train ``config`` into ``run_dir`` (resumed if it exists); returns the final metrics.

    The config's ``steps`` and ``time_budget_s`` apply to a resumed run too, so a larger budget continues it.
    """
    from forecast.training import Trainer

    training = config.get("training") or {}
    trainer = Trainer(
        config,
        store,
        run_dir,
        resume=run_dir.exists(),
        steps=training.get("steps"),
        time_budget_s=training.get("time_budget_s"),
        progress=progress,
        log=lambda _: None,
    )
    try:
        return trainer.run_loop()
    finally:
        trainer.close()


def roll_out(run_dir: Path, store: Path, out: Path, settings: RolloutSettings, progress: bool) -> None:
    """The forecast file of ``run_dir``'s model over the test group (skipped when ``out`` exists): from
    ``settings.inits`` starts spread evenly or, with ``starts="truth"``, from exactly the truth group's."""
    from forecast.rollout import rollout_run

    if out.exists():
        _check_spread_calibration(out, settings.spread_calibration)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    options = settings.as_kwargs() | ({"inits": None} if settings.starts == "truth" else {})
    rollout_run(run_dir, store, out, **options, resume=True, progress=progress)


def _check_spread_calibration(forecast_file: Path, wanted: str | None) -> None:
    """One line if a finished forecast file was made with another spread calibration than ``wanted`` (a JSON
    file, or None), rather than reusing it under the wrong settings."""
    import xarray as xr

    from forecast.spread_calibration import SpreadCalibration

    with xr.open_dataset(forecast_file) as ds:
        made = SpreadCalibration.of_attributes(ds.attrs)
    if made != (SpreadCalibration.load(wanted) if wanted is not None else None):
        raise ForecastError(
            f"{forecast_file} was made with {'another' if made and wanted else 'a' if made else 'no'} spread "
            "calibration; delete it (or use another output folder) to roll out again"
        )


def score(forecast_file: Path, out: Path, truth: Path | None = None) -> None:
    """The scores file of ``forecast_file`` (skipped when ``out`` exists); point forecasts are scored too.
    ``truth``: a field store whose truth ensemble the forecast is scored against as well (oracle CRPS, ...)."""
    from forecast.metrics import open_forecast, score_forecast
    from forecast.metrics.truth import open_truth

    if out.exists():
        return
    forecast = open_forecast(forecast_file)
    scores = score_forecast(forecast, truth=open_truth(truth) if truth is not None else None)
    forecast.close()
    scores.attrs["source_file"] = str(forecast_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        scores.to_netcdf(tmp)


def oracle_forecast(store: Path, reference: Path, out: Path) -> None:
    """The truth ensemble written as a forecast file (the ``reference`` forecast's layout, its members replaced
    by the truth's): scored like any row, it gives the oracle's own spread-skill and outside-range fraction."""
    import xarray as xr

    from forecast.forecast_file import forecast_variables
    from forecast.metrics import open_forecast
    from forecast.metrics.truth import match_truth, open_truth

    if out.exists():
        return
    forecast = open_forecast(reference)
    variables = forecast_variables(forecast)
    truth = match_truth(forecast, open_truth(store), variables)
    oracle = forecast.drop_vars(variables).drop_dims("member", errors="ignore")
    oracle = oracle.assign({v: truth[v].assign_attrs(forecast[v].attrs) for v in variables})
    oracle.attrs.update(model=ORACLE.lower(), note="the store's truth ensemble as a forecast")
    for key in ("spread_calibration", "spread_calibration_file"):  # the reference's members only
        oracle.attrs.pop(key, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        oracle.load().to_netcdf(tmp)
    forecast.close()
    xr.open_dataset(out).close()


def per_lead(scores_file: Path) -> dict[str, list[float]]:
    """Per lead time, averaged over variables: crps, oracle, ratio, spread-skill, spread ratio, outside range."""
    import numpy as np

    from forecast.scores_file import open_scores

    with open_scores(scores_file) as scores:
        names = sorted(scores.variables)
        members = int(scores.attrs["ensemble_size"])
        n_lead = scores.dataset.sizes["lead_time"]

        def mean(score: str) -> np.ndarray:
            values = [scores.get(n, score) for n in names]
            if any(v is None for v in values):
                return np.full(n_lead, np.nan)
            return np.mean([v.values for v in values], axis=0)

        outside = []
        for n in names:  # the truth below every member (rank 0) or above every member (rank m)
            counts = scores[n]["rank_histogram"].values
            outside.append((counts[:, 0] + counts[:, -1]) / counts.sum(axis=1))
        if members == 1:  # a point forecast: the truth is (almost surely) outside its "range"
            outside = [np.ones(n_lead)]
        return {
            "lead_time": scores.dataset["lead_time"].values.tolist(),
            "crps": mean("crps_mean").tolist(),
            "crps_oracle": mean("crps_oracle_mean").tolist(),
            "crps_oracle_ratio": mean("crps_oracle_ratio").tolist(),
            "spread_skill": mean("spread_skill").tolist(),
            "spread_ratio_truth": mean("spread_ratio_truth").tolist(),
            "outside_range": np.mean(outside, axis=0).tolist(),
            "members": members,
        }


def summary_row(scores_file: Path) -> dict:
    """One row of a summary table: ``crps`` (the mean over variables of each variable's CRPS averaged over
    leads), ``spread_skill`` (likewise; None for a file without it), ``crps_oracle_ratio`` (``crps`` over the
    oracle CRPS averaged alike; only for a file scored against a truth ensemble), ``members``, then
    ``crps_<var>`` and ``spread_skill_<var>`` per variable."""
    from forecast.scores_file import open_scores

    with open_scores(scores_file) as scores:
        names = sorted(scores.variables)
        by_variable = {n: scores[n] for n in names}
        crps = {f"crps_{n}": float(by_variable[n]["crps_mean"].mean()) for n in names}
        ratio = {
            f"spread_skill_{n}": float(by_variable[n]["spread_skill"].mean())
            for n in names
            if "spread_skill" in by_variable[n]
        }
        oracle = [
            float(by_variable[n]["crps_oracle_mean"].mean())
            for n in names
            if "crps_oracle_mean" in by_variable[n]
        ]
        members = int(scores.attrs["ensemble_size"])
    mean_crps = sum(crps.values()) / len(crps)
    mean_ratio = sum(ratio.values()) / len(ratio) if ratio else None
    row = {"crps": mean_crps, "spread_skill": mean_ratio}
    if oracle:
        row["crps_oracle_ratio"] = mean_crps / (sum(oracle) / len(oracle))
    return {**row, "members": members, **crps, **ratio}


def write_csv(rows: list[dict], path: Path) -> None:
    """``rows`` as CSV (the union of their keys as columns; floats with 6 significant digits), atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
