"""The calibration benchmark (issue 11): ensembles scored against a known answer on the stochastic vortex street.

    python experiments/calibration.py --scale smoke|cpu-small|paper --out OUT [--data STORE | --noise-seed S]
                                      [--flow karman|kolmogorov] [--jobs N] [--ablation] [--levers] [--seed S] [--width N]
                                      [--rows LABEL ...] [--no-progress]
                                      [--no-spread-validation | --spread-from VAL_OUT]
                                      [--spread-method M] [--spread-pooling P]
                                      [--no-long-rollouts]

The periodic street is (almost) deterministic: four frames fix its future, so the spread of an ensemble has
nothing to match there. This benchmark adds free-stream turbulence at the inlet (``--inflow-noise``), which the
stored frames do not reveal, and the store's ``truth`` group: for chosen test starts, K continuations of the
simulator from the exact same state with independent future noise. The truth ensemble is the perfect forecast;
its CRPS against the verifying test frames is the oracle CRPS, the floor for any forecaster that sees frames.

``--flow kolmogorov`` runs the same rows and table on chaotic Kolmogorov flow (``simulators/kolmogorov``): its
truth members start from the run's lattice state plus a perturbation below a stored pixel, so the oracle's spread
grows at the flow's Lyapunov rate (docs/guide/kolmogorov.md); its store is ``OUT/data/kolmogorov.zarr``.

Stages (each skipped when its output exists, so a rerun resumes):

1. simulate ``OUT/data/karman.zarr`` with its ``truth`` group (``--data`` uses an existing one);
2. train every row (``OUT/runs/ROW``; the configs are ``forecast/configs/<config>.yaml`` shrunk to the scale,
   as ``paper_tables.py`` does) and roll it out from exactly the truth starts into ``OUT/forecasts/ROW.nc``;
3. score every row against the verifying truth and the truth ensemble (``OUT/scores/ROW.nc``) and the truth
   ensemble itself as the ``Oracle`` row;
4. tabulate (``calibration_tables.py``): ``OUT/calibration.csv`` / ``.md`` (one line per row: CRPS, CRPS /
   oracle, spread-skill ratio with the finite-ensemble correction, spread / truth spread, fraction of the truth
   outside the ensemble's range, each averaged over variables and leads), ``OUT/calibration_leads.csv`` (the
   same per lead time) and the figures of ``forecast plot`` in ``OUT/figures``;
5. (in each row's worker, after its scores) the long rollout of the physics scores (``long_rollout``): a few
   starts of the *train* group (the test sequences are too short) rolled out ``LONG_ROLLOUT`` frames, several
   times the training window, into ``OUT/long/forecasts/ROW.nc`` and scored into ``OUT/long/scores/ROW.nc``;
   the table adds each row's stability horizon and, on the street, its Strouhal number at the probe, beside the
   kinetic energy per octave band against the truth ensemble (``physics_tables``). These files measure the
   model's free-running dynamics, not its skill: their pointwise scores are in-sample and not tabulated.

Nothing is fitted on the test group or the truth ensembles: models train on the train group only (RVD's
``model.sigma: auto`` is a running statistic of training batches).

Width: at ``cpu-small`` the networks of RVD, VD and ConvGRU are twice as wide as in the paper tables
(``model.dim`` 32, ``CPU_SMALL_WIDTH``), the option chosen on a validation store and confirmed over four training
seeds (docs/results/calibration.md); ``--width N`` sets another (``--width 16``: the earlier table).

Choosing options without touching the test store: ``--noise-seed S`` simulates the store with another draw of
the inflow turbulence (its train, test and truth groups all new), a *validation store*. ``--levers`` adds RVD's
candidate options (``lever_rows``: one change each against ``rvd_calibrated``, and VD with the same change
where it applies to VD too: twice the steps, frames or channels, the DDPM sampler) to the rows, so that they
can be compared on a validation store and only the chosen one run on the benchmark's own store.

Spread calibration (issue 31): ``--spread-from VAL_OUT`` fits, for every row that has an ensemble forecast in
``VAL_OUT/forecasts`` (a run of this script on a validation store, ``--noise-seed``), a factor per variable and lead
on its members' deviations from their mean (``forecast.spread_calibration``: spread-skill 1 by default,
``--spread-method fair_crps`` the lowest fair CRPS; ``--spread-pooling all`` one factor for every lead), keeps it
in ``OUT/spread_calibration/ROW.json`` and applies it to the row's forecasts here. The fit refuses (one line) a
validation run whose store is this run's store or a copy of it. The factors are not fed back into the model, so
where the uncalibrated forecast of the same run exists (``OUT/forecasts/ROW.nc``) the calibrated one
(``ROW__spread_calibrated.nc``) is made from it rather than rolled out again: the same members.

By default (``--spread-validation``; ``--no-spread-validation`` tables the raw ensembles) the validation store is
made in the same run: after training, ``OUT/validation/data`` is simulated with the next noise seed (the
benchmark's + 1; for Kolmogorov flow other run seeds), every diffusion row's *own trained run* is rolled out there
(``OUT/validation/forecasts/ROW.nc``, the layout of a ``VAL_OUT``), and its factors are fitted on that forecast
as ``--spread-from`` does. The table's RVD and VD rows are then the calibrated ones; their raw forecasts and scores
stay beside them (``OUT/forecasts/ROW.nc``, ``OUT/scores/ROW.nc``). What is fitted, and on what: one factor per
variable (``--spread-pooling``: for every lead by default), on a store that shares no frame with the scored one.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paper_tables  # noqa: E402
import physics_tables  # noqa: E402
from calibration_tables import tabulate  # noqa: E402
from paper_tables import Row, Scale  # noqa: E402

from forecast import pipeline  # noqa: E402
from forecast.errors import ForecastError  # noqa: E402
from forecast.models.config import KINDS as DIFFUSION_KINDS  # noqa: E402
from forecast.spread_calibration import DEFAULT_POOLING, METHODS, POOLINGS  # noqa: E402
from forecast.training.config import load_config  # noqa: E402

#: free-stream turbulence of every scale's store (shared with ``forecast demo``); truth ensembles below
NOISE = pipeline.STREET_NOISE


def at_width(scale: Scale, width: int) -> Scale:
    """``scale`` with ``width`` base channels (``model.dim``) in RVD, VD and ConvGRU (RVD's transform alone)."""
    return dataclasses.replace(
        scale,
        rvd_model={**scale.rvd_model, "dim": width},
        convgru_model={**scale.convgru_model, "dim": width},
    )


#: base channels of the networks at cpu-small: twice the paper tables' 16 there. On the benchmark store, over
#: four training seeds, it lowered RVD's and VD's CRPS by 3.8-9% and put RVD's below VD's (docs/results/calibration.md,
#: "Twice the channels"); ``--width 16`` is the earlier table's
CPU_SMALL_WIDTH = 32
#: training steps of every trained row at cpu-small: twice the paper tables' 1500. Twice the steps lowered RVD's
#: CRPS by 5.3% (1.7-9.0%) over four seeds (docs/results/calibration.md); the few-step sampler (issue 33) paid
#: for it within the hour (the table took 26.9 min with 1500 steps)
CPU_SMALL_STEPS = 3000

SCALES = {
    "paper": dataclasses.replace(
        paper_tables.SCALES["paper"],
        simulation={**NOISE, "truth_members": 16, "truth_inits": 32, "truth_horizon": 16, "truth_context": 4},
        rollout={"members": 16, "context": 4, "sampler": "ddpm", "steps": None},
    ),
    "cpu-small": dataclasses.replace(
        at_width(paper_tables.SCALES["cpu-small"], CPU_SMALL_WIDTH),
        simulation={
            **paper_tables.SCALES["cpu-small"].simulation,
            **NOISE,
            "truth_members": 16,
            "truth_inits": 4,  # per Reynolds number: 12 starts
            "truth_horizon": 16,
            "truth_context": 4,
        },
        # the rows choose their own prediction target; the scale fixes only N
        diffusion={"steps": 100},
        training={**paper_tables.SCALES["cpu-small"].training, "steps": CPU_SMALL_STEPS},
        # the rollout's default sampler (DPM-Solver++(2M), 10 evaluations per frame): 1.001x DDIM-25's CRPS on the
        # validation store, its spread 13% wider (docs/results/speed-sampling.md); the spread calibration is
        # fitted for the sampler that is used
        rollout={"members": 8, "context": 4},
    ),
    "smoke": dataclasses.replace(
        paper_tables.SCALES["smoke"],
        simulation={
            **paper_tables.SCALES["smoke"].simulation,
            **NOISE,
            "truth_members": 4,
            "truth_inits": 2,
            "truth_horizon": 3,
            "truth_context": 2,
        },
        rollout={"members": 3, "context": 2, "sampler": "ddim", "steps": 2},
    ),
}

#: ``--flow kolmogorov``: ``KolmogorovConfig`` options per scale (Re 100, forcing wavenumber 4: chaotic, leading
#: Lyapunov exponent 0.36 per time unit T = 255 lattice steps, docs/results/kolmogorov.md). Frames every 2 T, so the
#: 16-lead horizon (32 T) takes the truth spread from ~2e-5 of the RMS vorticity (the 1e-4 U perturbation below a
#: stored pixel) to 0.1 on average (saturated at some starts; measured 0.30 / T, docs/results/kolmogorov.md)
KOLMOGOROV = {
    "paper": {
        "seeds": (0, 1),
        "size": (64, 64),
        "scale": 2,
        "frames": 4000,
        "test_frames": 1000,
        "every": 1019,  # 2 T on the 128-cell lattice
        "truth_members": 16,
        "truth_inits": 32,
        "truth_horizon": 16,
        "truth_context": 4,
    },
    "cpu-small": {
        "seeds": (0, 1, 2),
        "size": (32, 32),
        "scale": 2,
        "frames": 400,
        "test_frames": 64,
        "every": 509,  # 2 T on the 64-cell lattice
        "truth_members": 16,
        "truth_inits": 4,
        "truth_horizon": 16,
        "truth_context": 4,
    },
    "smoke": {
        "seeds": (0,),
        "size": (16, 16),
        "scale": 2,
        "frames": 20,
        "test_frames": 12,
        "spinup": 2560,
        "truth_members": 4,
        "truth_inits": 2,
        "truth_horizon": 3,
        "truth_context": 2,
    },
}
FLOWS = ("karman", "kolmogorov")

#: RVD's diffusion settings of ``configs/rvd_calibrated.yaml``, given to VD too (its y0 is the frame, of unit scale)
CALIBRATED_DIFFUSION = {
    k: v
    for k, v in load_config(paper_tables.CONFIGS / "rvd_calibrated.yaml")["diffusion"].items()
    if k != "steps"
}

ROWS = [
    Row("RVD", "rvd_calibrated"),
    Row("VD", "vd", diffusion=CALIBRATED_DIFFUSION),  # second: with --jobs the two longest rows start first
    Row("ConvGRU", "convgru"),
    Row("Persistence", "persistence"),
    Row("Climatology", "climatology"),
]
#: ``--ablation``: the setting of tables 1-3 at cpu-small (sigma 2, y0-prediction, clamp at 2), the suspect of
#: issue 11; not in the default table, so that the cpu-small run fits in an hour on 2 cores
ABLATIONS = [
    Row(
        "RVD (sigma 2)",
        "paper_128",
        model={"mu_loss_weight": 1.0},
        diffusion={"prediction": "y0", "clip_x0": 2.0},
    ),
]


#: algorithm 2 of the paper: ancestral (DDPM) sampling over all N diffusion steps
PAPER_SAMPLER = {"sampler": "ddpm", "steps": None}


def lever_rows(scale: Scale) -> list[Row]:
    """``--levers``: RVD with one option changed each, the suspects of issue 11 for its under-dispersion and for
    separating it from VD (the loss weighting, the residual's scale per pixel, mu as a regression forecast, mu as
    an input of the denoiser, the prediction target, the training length, the training window, the networks'
    width; VD with the same training length, window and width too, its pairs; RVD and VD sampled with the
    paper's DDPM over all N steps, which reuse the trained runs of RVD and VD in the same OUT); for a validation
    store (``--noise-seed``), where an option may be chosen."""

    def doubled(row: Row, section: str, key: str, what: str) -> Row:  # one of the row's settings, times two
        value = row_config(row, scale)[section][key]
        overrides = {**getattr(row, section), key: 2 * value}
        return dataclasses.replace(row, label=f"{row.label} (2x {what})", **{section: overrides})

    return [
        *(doubled(row, "training", "steps", "steps") for row in ROWS[:2]),  # RVD and VD; the longest first
        # each step of these costs about twice as much: 2 + 6 frames, twice the channels (docs/results/calibration.md)
        *(doubled(row, "data", "future_frames", "frames") for row in ROWS[:2]),
        *(doubled(row, "model", "dim", "channels") for row in ROWS[:2]),
        Row("RVD (min-SNR)", "rvd_calibrated", diffusion={"loss_weighting": "min_snr"}),
        Row("RVD (sigma per pixel)", "rvd_calibrated", model={"sigma": "auto_pixel"}),
        Row("RVD (detached mu)", "rvd_calibrated", model={"detach_mu": True}),
        Row("RVD (denoiser sees mu)", "rvd_calibrated", model={"condition_on_mu": True}),
        Row("RVD (eps)", "rvd_calibrated", diffusion={"prediction": "eps"}),
        # the paper's sampler (algorithm 2: ancestral, all N steps) in place of the scale's; no training of
        # its own: each shares the trained run of its row when that row is run in the same OUT
        dataclasses.replace(ROWS[0], label="RVD (DDPM)", rollout=PAPER_SAMPLER),
        dataclasses.replace(ROWS[1], label="VD (DDPM)", rollout=PAPER_SAMPLER),
    ]


#: the suffix of a spread-calibrated row's files (its table label stays the row's)
SPREAD_SUFFIX = "__spread_calibrated"

#: the long rollouts of the physics scores (stability over several training windows; the street's Strouhal number
#: needs ``shedding.MIN_LEADS`` leads): ``inits`` starts spread over the train group's runs (the test sequences are
#: 64 frames at cpu-small, too short), ``members`` each, ``horizon`` frames, with the scale's sampler. At cpu-small
#: 3 x 3 x 128 = 1,152 generated frames per diffusion row, 0.75 of its 12 x 8 x 16 from the truth starts
LONG_ROLLOUT = {
    "paper": {"inits": 6, "members": 8, "horizon": 256},
    "cpu-small": {"inits": 3, "members": 3, "horizon": 128},
    "smoke": {"inits": 1, "members": 2, "horizon": 12},
}
#: the store group the long rollouts start in
LONG_GROUP = "train"


def long_settings(scale: Scale, seed: int) -> pipeline.RolloutSettings:
    """The scale's rollout settings for the long rollouts (``LONG_ROLLOUT``), evenly spread starts."""
    device = "cpu" if scale.name != "paper" else "auto"
    return pipeline.RolloutSettings(**{**scale.rollout, **LONG_ROLLOUT[scale.name]}, seed=seed, device=device)


def long_name(row: pipeline.Row) -> str:
    """The name of a row's long rollout files: a spread-calibrated row's are its model's (the factors are fitted
    per lead of the benchmark's horizon, so the long rollout is of the uncalibrated model)."""
    return row.name.removesuffix(SPREAD_SUFFIX)


def long_rollout(settings: pipeline.RolloutSettings, chain: pipeline.Pipeline, row: pipeline.Row) -> Path:
    """``row``'s long rollout from the train group (``OUT/long/forecasts/ROW.nc``, ``settings`` with the row's own
    sampler) and its scores (``OUT/long/scores/ROW.nc``), each skipped when it exists; the scores file's path.
    Run by ``Pipeline.run_rows`` after the row's scores, in its worker."""
    from forecast.rollout import rollout_run

    forecast, scores = physics_tables.long_files(chain.out, long_name(row))
    if not forecast.exists():
        options = settings.with_overrides({k: v for k, v in row.rollout.items() if k != "spread_calibration"})
        forecast.parent.mkdir(parents=True, exist_ok=True)
        rollout_run(chain.run_dir(row), chain.store, forecast, **options.as_kwargs(), group=LONG_GROUP,
                    resume=True, progress=chain.progress)  # fmt: skip
    pipeline.score(forecast, scores)
    return scores


def spread_calibrate(
    chain: pipeline.Pipeline,
    rows: list[pipeline.Row],
    validation: Path,
    method: str = "spread_skill",
    pooling: str = DEFAULT_POOLING,
    log=print,
) -> list[pipeline.Row]:
    """``rows`` with a spread calibration fitted on ``validation`` (another run of this script, on a validation
    store) for every row that has an ensemble forecast there; the others unchanged. A calibrated row keeps its
    label and run (trained once, as without) and writes ``forecasts/<row>__spread_calibrated.nc``, made from
    the uncalibrated forecast where that exists. Refuses (one line) a validation run on this run's store."""
    from forecast.spread_calibration import calibrate_file, fit_from_file

    calibrated = []
    for row in rows:
        source = validation / "forecasts" / f"{row.name}.nc"
        if not source.is_file() or row.config["model"]["kind"] not in DIFFUSION_KINDS:
            calibrated.append(row)
            continue
        calibration = fit_from_file(source, chain.store, method, pooling)
        path = calibration.save(chain.out / "spread_calibration" / f"{row.name}.json")
        factors = ", ".join(f"{v} {min(k):.3f}-{max(k):.3f}" for v, k in calibration.factors.items())
        log(f"{row.title}: spread factors fitted on {source} ({method}, per {pooling}): {factors} -> {path}")
        chain.run_dir(row)  # the row's own run: trained as without the calibration
        row_calibrated = dataclasses.replace(
            row, name=row.name + SPREAD_SUFFIX, rollout={**row.rollout, "spread_calibration": str(path)}
        )
        raw, out = chain.forecast_file(row), chain.forecast_file(row_calibrated)
        if raw.is_file() and not out.exists():
            calibrate_file(raw, calibration, out, source=str(path))
            log(f"{row.title}: calibrated {raw} -> {out}")
        calibrated.append(row_calibrated)
    return calibrated


#: the folder of a run's own validation store and its forecasts (``--spread-validation``), laid out as a VAL_OUT
VALIDATION_DIR = "validation"


def validation_noise_seed(noise_seed: int | None) -> int:
    """The noise seed of the validation store of a run on ``noise_seed`` (None: the benchmark's): the next one."""
    return (NOISE["noise_seed"] if noise_seed is None else noise_seed) + 1


def validation_forecasts(
    chain: pipeline.Pipeline,
    rows: list[pipeline.Row],
    scale: Scale,
    noise_seed: int | None = None,
    flow: str = "karman",
    log=print,
    folder: str = VALIDATION_DIR,
) -> Path:
    """``OUT/validation``: a validation store (the scale's flow, ``validation_noise_seed``) and every diffusion
    row's forecast of it by the row's own trained run (``chain.run_dir``), from its truth starts with the
    pipeline's rollout settings; a folder that ``spread_calibrate`` takes as ``VAL_OUT``. Each stage is skipped
    when its output exists. ``folder``: another name under OUT (a second validation store, to measure how
    factors fitted on one store transfer to another: ``spread_levers.py --across``)."""
    out = chain.out / folder
    seed = validation_noise_seed(noise_seed)
    validation = pipeline.Pipeline(
        out,
        store=out / "data" / f"{flow}.zarr",
        simulation=simulation_config(scale, seed, flow),
        rollout=chain.settings,
        progress=chain.progress,
        log=log,
    )
    start = time.time()
    store = make_data(validation)
    log(f"validation store (noise seed {seed}): {store} ({time.time() - start:.0f} s)")
    for row in rows:
        if row.config["model"]["kind"] in DIFFUSION_KINDS:
            forecast = validation.forecast_file(row)
            pipeline.roll_out(
                chain.run_dir(row), store, forecast, validation.rollout_settings(row), chain.progress
            )
            log(f"{row.title}: forecast of the validation store -> {forecast}")
    return out


#: training windows of 2 + 3 frames at cpu-small (2 + 6 costs twice as much per step, see docs/results/calibration.md)
DATA = {"smoke": {}, "cpu-small": {"future_frames": 3}, "paper": {}}


def row_config(row: Row, scale: Scale, seed: int = 0) -> dict:
    """``row``'s config at ``scale``, trained with ``seed`` (``--seed``: a replicate of the whole table)."""
    config = row.build(scale)
    config.setdefault("data", {}).update({**DATA[scale.name], **row.data})  # a row's own window wins
    config.setdefault("training", {})["seed"] = seed
    return config


def pipeline_rows(rows: list[Row], scale: Scale, seed: int = 0) -> list[pipeline.Row]:
    """The pipeline's rows of ``rows``: rows with the same config share one trained run (``Pipeline.run_dir``),
    sampled with each row's own rollout settings."""
    return [r.pipeline_row(row_config(r, scale, seed)) for r in rows]


# --------------------------------------------------------------------------------------------------- stages
def make_data(chain: pipeline.Pipeline) -> Path:
    """The pipeline's store (simulated with its truth group unless given); one line if it has no truth group."""
    from forecast.metrics.truth import open_truth

    store = chain.data()
    open_truth(store)
    return store


def simulation_config(scale: Scale, noise_seed: int | None = None, flow: str = "karman"):
    """The scale's stochastic street, with another inflow-noise seed where given (a validation store); or its
    Kolmogorov flow (``flow="kolmogorov"``), with run seeds 1000 (S + 1) + i for ``noise_seed`` S."""
    if flow == "kolmogorov":
        from simulators.kolmogorov import KolmogorovConfig

        options = KOLMOGOROV[scale.name]
        if noise_seed is not None:
            options = {**options, "seeds": tuple(1000 * (noise_seed + 1) + s for s in options["seeds"])}
        return KolmogorovConfig(**options)
    from simulators.karman import KarmanConfig

    options = scale.simulation if noise_seed is None else {**scale.simulation, "noise_seed": noise_seed}
    return KarmanConfig(**options)


# --------------------------------------------------------------------------------------------------- driver
def scale_of(scale_name: str, width: int | None = None) -> Scale:
    """The scale named ``scale_name``, its networks ``width`` channels wide where given (``--width``)."""
    if scale_name not in SCALES:
        raise ForecastError(f"unknown scale {scale_name!r}; choose one of {', '.join(SCALES)}")
    if width is None:
        return SCALES[scale_name]
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ForecastError(f"--width must be a positive number of channels, not {width!r}")
    from forecast.models import build_model
    from forecast.training.config import resolve_config

    scale = at_width(SCALES[scale_name], width)
    for row in ROWS[:3]:  # the networks it sizes: one line now, rather than a failed training after the store
        try:
            build_model(resolve_config(row_config(row, scale)), 1)
        except ForecastError as exc:
            raise ForecastError(f"--width {width}: {exc}") from None
    return scale


def truth_starts(scale: Scale, seed: int) -> pipeline.RolloutSettings:
    """The scale's rollout from exactly the truth group's starts, over the truth's horizon."""
    device = "cpu" if scale.name != "paper" else "auto"
    return pipeline.RolloutSettings(**scale.rollout, seed=seed, device=device).at_truth_starts()


def run_calibration(
    scale_name: str,
    out: str | Path,
    data: str | Path | None = None,
    seed: int = 0,
    rows: list[Row] | None = None,
    progress: bool = True,
    log=print,
    jobs: int | None = None,
    noise_seed: int | None = None,
    width: int | None = None,
    flow: str = "karman",
    spread_from: str | Path | None = None,
    spread_method: str = "spread_skill",
    spread_pooling: str = DEFAULT_POOLING,
    spread_validation: bool = True,
    long_rollouts: bool = True,
    figures: bool = True,
) -> dict[str, dict]:
    """The whole benchmark at ``scale_name`` into ``out``; returns the per-lead scores of every row.

    ``jobs``: rows trained at once in worker processes (``pipeline.run_rows``; default
    ``pipeline.default_jobs``: one per core on CPUs, one on GPUs). ``noise_seed``: simulate the store with this
    inflow-noise seed (a validation store) in place of the benchmark's. ``width``: base channels of RVD, VD and
    ConvGRU in place of the scale's (``at_width``). ``flow``: ``"karman"`` (the stochastic street) or
    ``"kolmogorov"`` (chaotic Kolmogorov flow). ``spread_from``: a run of this function on a
    validation store whose rows' forecasts fit a spread calibration (``spread_calibrate``, with ``spread_method``
    and ``spread_pooling``) applied here. ``spread_validation`` (without ``spread_from``): fit it instead on the
    rows' own forecasts of a validation store made here (``validation_forecasts``), after training.
    ``long_rollouts``: also roll every row out ``LONG_ROLLOUT`` frames from the train group and score it
    (``long_rollout``: the stability and Strouhal columns of the table). ``figures``: false writes the tables
    without figures.
    """
    if flow not in FLOWS:
        raise ForecastError(f"unknown flow {flow!r}; choose one of {', '.join(FLOWS)}")
    scale = scale_of(scale_name, width)
    if data is not None and noise_seed is not None:
        raise ForecastError(
            "give an existing store (--data) or the seed of a new one (--noise-seed), not both"
        )
    start = time.time()
    rows, out = rows or ROWS, Path(out)
    store, simulation = data, None
    if data is None:  # simulated when missing, into the pipeline's OUT/data/karman.zarr or OUT/data/FLOW.zarr
        simulation = simulation_config(scale, noise_seed, flow)
        store = out / "data" / f"{flow}.zarr" if flow != "karman" else None
    chain = pipeline.Pipeline(
        out,
        store=store,
        simulation=simulation,
        rollout=truth_starts(scale, seed),
        progress=progress,
        log=log,
    )
    store = make_data(chain)
    log(f"data: {store} ({time.time() - start:.0f} s)")
    chain_rows = pipeline_rows(rows, scale, seed)
    if spread_from is not None:
        chain_rows = spread_calibrate(
            chain, chain_rows, Path(spread_from), spread_method, spread_pooling, log
        )
    after = functools.partial(long_rollout, long_settings(scale, seed)) if long_rollouts else None
    chain.run_rows(chain_rows, jobs or pipeline.default_jobs(len(rows), gpu=scale_name == "paper"), after)
    if spread_from is None and spread_validation:
        validation = validation_forecasts(chain, chain_rows, scale, noise_seed, flow, log)
        chain_rows = spread_calibrate(chain, chain_rows, validation, spread_method, spread_pooling, log)
        chain.run_rows(chain_rows)  # scores the calibrated forecasts; everything else exists
    command = command_line(
        scale, out, rows, data=data, seed=seed, noise_seed=noise_seed, width=width, flow=flow
    )
    command += "" if long_rollouts else " --no-long-rollouts"
    command += spread_words(spread_from, spread_method, spread_pooling, spread_validation)
    heading = f"Calibration benchmark, produced by `{command}` in {(time.time() - start) / 60:.1f} min."
    long_scores = {r.title: physics_tables.long_files(out, long_name(r))[1] for r in chain_rows}
    leads = tabulate(
        chain,
        chain_rows,
        heading,
        variables=["vorticity"],
        log=log,
        long_scores=long_scores if long_rollouts else None,
        figures=figures,
    )
    return leads


def command_line(
    scale: Scale,
    out: Path,
    rows: list[Row],
    data=None,
    seed: int = 0,
    noise_seed: int | None = None,
    width: int | None = None,
    flow: str = "karman",
) -> str:
    """The command that reproduces a run of ``rows``, for the table's heading."""
    all_levers = lever_rows(scale)
    ablation, levers = any(r in ABLATIONS for r in rows), any(r in all_levers for r in rows)
    offered = ROWS + (ABLATIONS if ablation else []) + (all_levers if levers else [])
    words = ["python experiments/calibration.py --scale", scale.name, "--out", shlex.quote(str(out))]
    words += ["--flow", flow] if flow != "karman" else []
    words += ["--data", shlex.quote(str(data))] if data is not None else []
    words += ["--noise-seed", str(noise_seed)] if noise_seed is not None else []
    words += ["--seed", str(seed)] if seed else []
    words += ["--width", str(width)] if width is not None else []
    words += ["--ablation"] if ablation else []
    words += ["--levers"] if levers else []
    words += ["--rows", *(shlex.quote(r.label) for r in rows)] if rows != offered else []
    return " ".join(words)


def spread_words(spread_from, method: str, pooling: str, validation: bool = True) -> str:
    """The spread-calibration options of the command line (defaults left out)."""
    if spread_from is None and not validation:
        return " --no-spread-validation"
    words = f" --spread-from {shlex.quote(str(spread_from))}" if spread_from is not None else ""
    words += f" --spread-method {method}" if method != "spread_skill" else ""
    return words + (f" --spread-pooling {pooling}" if pooling != DEFAULT_POOLING else "")


def select_rows(rows: list[Row], labels: list[str]) -> list[Row]:
    """The rows of ``labels``, in the table's order; one line for a label that is not a row."""
    known = {r.label for r in rows}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ForecastError(
            f"no row {', '.join(map(repr, unknown))}; the rows are {', '.join(sorted(known))}"
        )
    return [r for r in rows if r.label in labels]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=tuple(SCALES), default="cpu-small")
    parser.add_argument("--out", required=True, help="output folder (rerun to resume)")
    parser.add_argument(
        "--flow",
        choices=FLOWS,
        default="karman",
        help="the simulated flow: the stochastic vortex street or chaotic Kolmogorov flow",
    )
    parser.add_argument("--data", help="an existing store of the flow, with a truth group")
    parser.add_argument(
        "--noise-seed",
        type=int,
        help="simulate the store with this inflow-noise seed: a validation store, for choosing options",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every row's training and sampling (another: a replicate)"
    )
    parser.add_argument(
        "--rows", nargs="+", metavar="LABEL", help="only these rows (labels, e.g. RVD VD); the oracle always"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="rows trained at once (default: one per core on CPUs, capped by the rows; 1 on GPUs)",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also the paper's setting at this scale: RVD (sigma 2, y0-prediction)",
    )
    parser.add_argument(
        "--levers",
        action="store_true",
        help="also RVD with one option changed each (twice the steps, twice the frames, twice the channels, "
        "min-SNR weighting, sigma per pixel, detached mu, the denoiser sees mu, eps-prediction, the paper's DDPM "
        "sampler over all N steps) and VD with twice the steps, frames and channels and the DDPM sampler",
    )
    parser.add_argument(
        "--width",
        type=int,
        help=f"base channels (model.dim) of RVD, VD and ConvGRU (default: the scale's; cpu-small {CPU_SMALL_WIDTH}, "
        "the earlier table's 16)",
    )
    parser.add_argument(
        "--spread-from",
        metavar="VAL_OUT",
        help="fit a spread calibration on this run's forecasts (a run on a validation store: --noise-seed) and "
        "apply it to the rows it has forecasts of",
    )
    parser.add_argument(
        "--spread-validation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit each diffusion row's spread calibration on its own forecasts of a validation store simulated "
        "here (OUT/validation, the next noise seed) and table the calibrated rows (default; --spread-from "
        "replaces it)",
    )
    parser.add_argument(
        "--spread-method",
        choices=METHODS,
        default="spread_skill",
        help="what the factors are fitted for: a spread-skill ratio of 1 (default) or the lowest fair CRPS",
    )
    parser.add_argument(
        "--spread-pooling",
        choices=POOLINGS,
        default=DEFAULT_POOLING,
        help=f"one factor per variable for every lead ('all') or one per variable and lead ('lead'); default "
        f"{DEFAULT_POOLING!r}, the one that transferred between validation stores",
    )
    parser.add_argument(
        "--no-long-rollouts",
        action="store_true",
        help="skip the long rollouts from the train group (the table's stability and Strouhal columns)",
    )
    parser.add_argument("--no-figures", action="store_true", help=paper_tables.NO_FIGURES_HELP)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        levers = lever_rows(scale_of(args.scale, args.width)) if args.levers else []
        rows = ROWS + (ABLATIONS if args.ablation else []) + levers
        rows = select_rows(rows, args.rows) if args.rows else rows
        run_calibration(
            args.scale,
            args.out,
            args.data,
            args.seed,
            rows=rows,
            progress=not args.no_progress,
            jobs=args.jobs,
            noise_seed=args.noise_seed,
            width=args.width,
            flow=args.flow,
            spread_from=args.spread_from,
            spread_method=args.spread_method,
            spread_pooling=args.spread_pooling,
            spread_validation=args.spread_validation,
            long_rollouts=not args.no_long_rollouts,
            figures=not args.no_figures,
        )
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
