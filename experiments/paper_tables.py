"""Tables 1 and 2 of the RVD paper on the vortex-street data: train, roll out, score, tabulate, plot.

    python experiments/table1.py --scale cpu-small --out out/table1      # RVD against the baselines
    python experiments/table2.py --scale cpu-small --out out/table2      # RVD, VD, SimpleRVD; 2+6 vs 2+3 frames
    python experiments/table3.py --scale cpu-small --out out/table3      # not in the paper: RVD's spread

Each is ``python experiments/paper_tables.py --table 1|2|3 ...``. A *scale* fixes the data (a simulated store,
unless ``--data`` names one), the size of every model, the training steps and the rollout settings:

- ``paper``: the paper's models (``forecast/configs/paper_128.yaml``, ``vd.yaml``, ``simple_rvd.yaml`` and the
  baseline configs) on the paper's dataset (128x128, 8,000 + 2,000 frames); 4 context frames, 16 generated,
  DDPM with all N steps. For GPUs (days).
- ``cpu-small``: the same configs shrunk to the tiny RVD of ``forecast/configs/tiny.yaml`` (and baselines of a
  similar size), 32x32 frames of three Reynolds numbers, about an hour per table on a 2-core CPU.
- ``smoke``: a minute, for tests: checks the chain, means nothing.

Each run lives in ``OUT/runs/ROW``; a finished stage (trained run, forecast file, scores file, LPIPS and FVD in
``OUT/perceptual/ROW.json``) is skipped when the command is run again, so an interrupted table resumes. Rows
train in worker processes, one per core on CPUs (``--jobs``; ``forecast.pipeline.run_rows``). Outputs: ``OUT/tableN.csv`` and ``OUT/tableN.md`` (CRPS
per variable and their mean; the spread-skill ratio; LPIPS and FVD of the vorticity rendered as grey video where the pretrained weights
are found, see docs/guide/perceptual.md; otherwise "n/a"), and the figures of ``forecast plot`` in
``OUT/figures``.

Table 1 also has an SM-MNIST column: every row is trained, rolled out and scored again on stochastic moving
MNIST made offline from scikit-learn's digits (``OUT/smmnist``; ``--no-smmnist`` skips it). The store has truth
ensembles (``truth_members`` futures from the same digit positions and velocities, with their own bounces, at
the rollout's ``inits`` starts): the rows are rolled out from exactly those starts and scored against them
(``RolloutSettings(starts="truth")``). Columns: ``crps_smmnist`` (CRPS of the 0..255 frames, mean over leads),
``crps_oracle_ratio_smmnist`` (that CRPS over the truth ensembles' own CRPS, the oracle's: 1 is a perfect
forecast) and ``fvd_smmnist`` (where the rollouts have at least 9 frames). Against the same truth ensembles,
``OUT/smmnist/calibration.md`` / ``.csv`` / ``_leads.csv`` and ``OUT/smmnist/figures`` give every row's
calibration next to the oracle's (``calibration_tables.py``, as the calibration benchmark does).
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from forecast import pipeline  # noqa: E402
from forecast.atomic import atomic_output  # noqa: E402
from forecast.configs import CONFIG_DIR  # noqa: E402
from forecast.errors import ForecastError  # noqa: E402
from forecast.forecast_file import OBS_SUFFIX  # noqa: E402
from forecast.metrics.weights import MissingWeightsError  # noqa: E402
from forecast.models.kinds import DIFFUSION_KINDS  # noqa: E402
from forecast.training.config import load_config  # noqa: E402

sys.path.insert(0, str(ROOT / "experiments"))
from calibration_tables import tabulate  # noqa: E402

CONFIGS = CONFIG_DIR


@dataclass(frozen=True)
class Scale:
    """Data, model sizes, training and rollout of one scale of the experiments."""

    name: str
    simulation: dict  # KarmanConfig options (None: the paper's defaults)
    rvd_model: dict  # overrides of the RVD-family model sections (kind and sigma kept)
    diffusion: dict
    training: dict  # overrides of every trained model's training section
    convgru_model: dict
    svg_lp_model: dict
    rollout: dict
    baseline_bank: int = 512
    latent_models: dict = field(default_factory=dict)  # model.kind -> overrides (ivrnn, slamp, GANs)
    # import_smmnist options of the SM-MNIST column (builtin digits); with ``truth_members`` the store gets truth
    # ensembles at the rollout's inits, context and horizon (``make_smmnist``)
    smmnist: dict = field(default_factory=dict)

    def shrink(self, config: dict) -> dict:
        """``config`` (a paper config) at this scale."""
        config = copy.deepcopy(config)
        kind = config["model"]["kind"]
        if kind in DIFFUSION_KINDS:
            config["model"].update(self.rvd_model)
            if kind != "rvd":
                config["model"].pop("transform_mults", None)
            config["diffusion"].update(self.diffusion)
        elif kind == "convgru":
            config["model"].update(self.convgru_model)
        elif kind == "svg_lp":
            config["model"].update(self.svg_lp_model)
        elif kind in self.latent_models:
            config["model"].update(self.latent_models[kind])
        elif kind == "climatology":
            config["model"]["bank_size"] = self.baseline_bank
        elif kind == "persistence_inflated":
            config["model"]["max_lead"] = self.rollout["horizon"]
        if kind in (*DIFFUSION_KINDS, "convgru", "svg_lp", *self.latent_models):
            config["training"].update(self.training)
        return config


def smmnist_options(size: int, digit_size: int, length: int, sequences: dict, truth_members: int) -> dict:
    """``import_smmnist`` options of a scale's SM-MNIST column (builtin digits): frames of ``size`` pixels with
    digits of ``digit_size``, ``sequences`` (per group) of ``length`` frames, ``truth_members`` truth futures."""
    return {
        "size": size,
        "digit_size": digit_size,
        "length": length,
        "sequences": sequences,
        "truth_members": truth_members,
    }


SCALES = {
    "paper": Scale(
        name="paper",
        simulation={},
        rvd_model={},
        diffusion={},
        training={},
        convgru_model={},
        svg_lp_model={},
        rollout={"members": 16, "inits": 64, "context": 4, "horizon": 16, "sampler": "ddpm", "steps": None},
        smmnist=smmnist_options(64, 32, 30, {"train": 10000, "test": 256}, truth_members=16),
    ),
    "cpu-small": Scale(
        name="cpu-small",
        simulation={
            "reynolds": (150.0, 200.0, 250.0),
            "frames": 400,
            "test_frames": 64,
            "every": 64,
            "size": (32, 32),
            "scale": 2,
        },
        rvd_model={"dim": 16, "denoiser_mults": [1, 2, 2], "transform_mults": [1, 2]},
        # y0-prediction and the released code's clamp: eps-prediction samples far off after CPU-length training
        diffusion={"steps": 100, "prediction": "y0", "clip_x0": 2.0},
        training={
            "batch_size": 4,
            "steps": 1500,
            "lr": 5.0e-4,
            "lr_final": 2.0e-4,
            "ema_decay": 0.99,
            "checkpoint_every": 250,
            "log_every": 25,
        },
        convgru_model={"dim": 16, "transform_mults": [1, 2]},
        svg_lp_model={"dim": 16, "g_dim": 32, "z_dim": 4, "rnn_dim": 32},
        rollout={"members": 8, "inits": 12, "context": 4, "horizon": 16, "sampler": "ddim", "steps": 25},
        baseline_bank=512,
        latent_models={
            "ivrnn": {"dim": 16, "levels": 3, "z_dim": 4, "rnn_dim": 32},
            "slamp": {"dim": 16, "g_dim": 32, "z_dim": 4, "rnn_dim": 32},
            "dvd_gan": {"dim": 16, "z_dim": 16},
            "retrogan": {"dim": 16},
            "futuregan": {"dim": 16},
        },
        smmnist=smmnist_options(32, 12, 24, {"train": 256, "test": 12}, truth_members=16),
    ),
    "smoke": Scale(
        name="smoke",
        simulation={
            "reynolds": (150.0,),
            "frames": 20,
            "test_frames": 12,
            "every": 32,
            "size": (16, 16),
            "scale": 2,
        },
        rvd_model={"dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
        diffusion={"steps": 10},
        training={"batch_size": 2, "steps": 2, "checkpoint_every": 2, "log_every": 1},
        convgru_model={"dim": 8, "transform_mults": [1, 2]},
        svg_lp_model={"dim": 8, "g_dim": 8, "z_dim": 2, "rnn_dim": 8},
        rollout={"members": 2, "inits": 2, "context": 2, "horizon": 3, "sampler": "ddim", "steps": 2},
        baseline_bank=16,
        latent_models={
            "ivrnn": {"dim": 8, "levels": 2, "z_dim": 2, "rnn_dim": 8},
            "slamp": {"dim": 8, "g_dim": 8, "z_dim": 2, "rnn_dim": 8},
            "dvd_gan": {"dim": 8, "z_dim": 4, "frames_sampled": 2},
            "retrogan": {"dim": 8, "inputs": 2},
            "futuregan": {"dim": 8, "frames": 2},
        },
        smmnist=smmnist_options(16, 6, 8, {"train": 4, "test": 2}, truth_members=4),
    ),
}


@dataclass(frozen=True)
class Row:
    """One row of a table: its label and the config (a shipped config name, forecast/configs, plus overrides)."""

    label: str
    config: str
    data: dict = field(default_factory=dict)  # overrides of the data section
    model: dict = field(default_factory=dict)  # ... of the model section, after the scale's
    diffusion: dict = field(default_factory=dict)  # ... of the diffusion section, after the scale's
    rollout: dict = field(default_factory=dict)  # ... of the scale's rollout settings (sampler, steps, eta)
    training: dict = field(default_factory=dict)  # ... of the training section, after the scale's

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in self.label).strip("_")

    def pipeline_row(self, config: dict) -> pipeline.Row:
        """This row in a pipeline, trained with ``config`` (its build at a scale) and sampled with its rollout."""
        return pipeline.Row(self.slug, config, self.label, self.rollout)

    def build(self, scale: Scale) -> dict:
        config = load_config(CONFIGS / f"{self.config}.yaml")
        config.setdefault("data", {}).update(self.data)
        config = scale.shrink(config)
        config["model"].update(self.model)
        if self.diffusion:
            config["diffusion"].update(self.diffusion)
        config.setdefault("training", {}).update(self.training)
        return config


TABLES = {
    1: [
        Row("RVD", "paper_128"),
        Row("SVG-LP", "svg_lp"),
        Row("IVRNN", "ivrnn"),
        Row("SLAMP", "slamp"),
        Row("RetroGAN", "retrogan"),
        Row("DVD-GAN", "dvd_gan"),
        Row("FutureGAN", "futuregan"),
        Row("ConvGRU", "convgru"),
        Row("Persistence", "persistence"),
        Row("Persistence (inflated)", "persistence_inflated"),
        Row("Climatology", "climatology"),
    ],
    2: [
        Row("VD (2 + 6)", "vd"),
        Row("SimpleRVD (2 + 6)", "simple_rvd"),
        Row("RVD (2 + 6)", "paper_128"),
        Row("RVD (2 + 3)", "paper_128", {"future_frames": 3}),
    ],
    # not in the paper: is RVD's ensemble spread set by the sampler or by the trained denoiser? The first three
    # rows share one trained model (rows with the same config share their run).
    3: [
        Row("RVD, DDIM eta 0", "paper_128"),
        Row("RVD, DDIM eta 1", "paper_128", rollout={"sampler": "ddim", "eta": 1.0}),
        Row("RVD, DDPM all N steps", "paper_128", rollout={"sampler": "ddpm", "steps": None}),
        Row("RVD, sigma 0.05", "paper_128", model={"sigma": 0.05}),
        Row("RVD, eps-prediction", "paper_128", diffusion={"prediction": "eps"}),
    ],
}


#: the perceptual metrics of the tables (``perceptual``)
PERCEPTUAL = ("lpips", "fvd")

#: tables with an SM-MNIST column (the stochastic natural-video stand-in that runs offline: every row is also
#: trained, rolled out and scored on SM-MNIST with scikit-learn's digits; columns crps_smmnist, fvd_smmnist)
SMMNIST_TABLES = (1,)


# --------------------------------------------------------------------------------------------------- stages
def make_smmnist(out: Path, scale: Scale, progress: bool) -> Path:
    """The SM-MNIST store of the column; with ``truth_members`` in the scale's options, its ``truth`` group holds
    that many futures (the same digits, positions and velocities, independent bounces) for the rollout's
    ``inits`` starts, ``context`` frames and ``horizon`` leads."""
    from forecast.data.importers.smmnist import BUILTIN, import_smmnist

    options = dict(scale.smmnist)
    if options.get("truth_members"):
        r = scale.rollout
        options.update(truth_inits=r["inits"], truth_context=r["context"], truth_horizon=r["horizon"])
    store = out / "data" / "smmnist.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    return import_smmnist(BUILTIN, store, **options, resume=store.exists(), progress=progress)


def smmnist_chain(
    out: Path, scale: Scale, rows: list[pipeline.Row], settings: pipeline.RolloutSettings, progress: bool, log
) -> tuple[pipeline.Pipeline, list[pipeline.Row]]:
    """The SM-MNIST column's pipeline (``OUT/smmnist``; its store made here) and the rows on its frames. With
    truth ensembles the rows forecast exactly the truth's starts and are scored against them too."""
    log("SM-MNIST column: the store")
    store = make_smmnist(out, scale, progress)
    if scale.smmnist.get("truth_members"):
        settings = settings.at_truth_starts()
    video = pipeline.Pipeline(out / "smmnist", store=store, rollout=settings, progress=progress, log=log)
    frames = [
        pipeline.Row(
            r.name, {**r.config, "data": {**r.config["data"], "variables": ["frames"]}}, r.label, r.rollout
        )
        for r in rows
    ]
    return video, frames


def perceptual(
    forecast_file: Path,
    variable: str = "vorticity",
    weights: str | None = None,
    metrics: tuple[str, ...] = PERCEPTUAL,
) -> dict:
    """LPIPS and FVD (``metrics``) of ``variable`` rendered as grey video (the truth's 1st..99th percentile ->
    0..255).

    Returns NaN for a metric whose pretrained weights are not found (with the reason under ``note``).
    """
    import numpy as np
    import xarray as xr

    from forecast.metrics.video import video_scores

    result = {**dict.fromkeys(metrics, math.nan), "note": ""}
    with xr.open_dataset(forecast_file) as ds:
        if variable not in ds:
            result["note"] = f"no {variable}"
            return result
        obs = ds[f"{variable}{OBS_SUFFIX}"].load()
        lo, hi = np.percentile(obs.values, [1, 99])
        scale = 255.0 / max(hi - lo, 1e-12)
        grey = xr.Dataset({
            "frames": ((ds[variable] - lo) * scale).clip(0, 255),
            "frames" + OBS_SUFFIX: ((obs - lo) * scale).clip(0, 255),
        })  # fmt: skip
        for metric in metrics:
            try:
                scores = video_scores(grey, metrics=(metric,), weights=weights)
                result[metric] = float(scores[f"{metric}_frames"].mean())
            except ForecastError as exc:
                # missing weights: the file only, without the folders searched and the how-to (docs/guide/perceptual.md)
                reason = exc.brief if isinstance(exc, MissingWeightsError) else str(exc).splitlines()[0]
                result["note"] += f"{'; ' if result['note'] else ''}{metric}: {reason}"
    return result


def row_perceptual(chain: pipeline.Pipeline, row: pipeline.Row, weights: str | None = None) -> dict:
    """``perceptual`` of ``row``'s forecast (of ``frames`` for a video row, vorticity otherwise), kept in
    ``OUT/perceptual/<row>.json``: a rerun reuses every metric computed there and tries again only those that
    were n/a (missing weights: a quick look). Delete the file to compute it again."""
    variable = "frames" if "frames" in row.config.get("data", {}).get("variables", ()) else "vorticity"
    path = chain.out / "perceptual" / f"{row.name}.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    todo = tuple(m for m in PERCEPTUAL if m not in done)
    if not todo:
        return {**done, "note": ""}
    result = perceptual(chain.forecast_file(row), variable, weights, metrics=todo)
    done.update({m: result[m] for m in todo if not math.isnan(result[m])})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(done))
    return {**dict.fromkeys(PERCEPTUAL, math.nan), **done, "note": result["note"]}


def table_rows(
    chain: pipeline.Pipeline, rows: list[pipeline.Row], perceptual_metrics: bool, weights: str | None
) -> list[dict]:
    """One entry per row: CRPS (mean and per variable), the spread-skill ratio (sqrt((m+1)/m) spread / RMSE,
    averaged over leads and variables), the ensemble size and, with ``perceptual_metrics``, LPIPS and FVD."""
    table = []
    for row, summary in zip(rows, chain.summarize(rows)):
        crps = {k: v for k, v in summary.items() if k.startswith("crps_")}
        entry = {
            "model": row.title,
            "crps": summary["crps"],
            **crps,
            "spread_skill": summary["spread_skill"],
            "members": summary["members"],
        }
        if perceptual_metrics:
            p = row_perceptual(chain, row, weights)
            entry.update({"lpips": p["lpips"], "fvd": p["fvd"]})
            if p["note"]:
                entry["_note"] = p["note"]
        table.append(entry)
    return table


def write_tables(table: list[dict], out: Path, number: int, scale: Scale, command: str) -> tuple[Path, Path]:
    notes = sorted({row.pop("_note") for row in table if "_note" in row})
    columns = list(dict.fromkeys(k for row in table for k in row))
    csv_path, md_path = out / f"table{number}.csv", out / f"table{number}.md"
    with atomic_output(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in table:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})

    def badness(c, v):  # lower is better, except the spread-skill ratio, best at 1
        return abs(v - 1.0) if c == "spread_skill" else v

    best = {
        c: min(badness(c, r[c]) for r in table if isinstance(r.get(c), float) and not math.isnan(r[c]))
        for c in columns
        if c not in ("model", "members")
        and any(isinstance(r.get(c), float) and not math.isnan(r[c]) for r in table)
    }

    def cell(c, v):
        if not isinstance(v, float):
            return str(v)
        if math.isnan(v):
            return "n/a"
        text = f"{v:.4g}"
        return f"**{text}**" if c in best and badness(c, v) == best[c] else text

    lines = [
        f"Table {number} at scale `{scale.name}` (lower is better, `spread_skill` best at 1; **bold**: best). "
        f"Produced by `{command}`.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c == "model" else "---:" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(c, r.get(c, "")) for c in columns) + " |" for r in table]
    if notes:  # why LPIPS/FVD are missing (weights not found, ...), in brief
        lines += ["", "n/a: " + "; ".join(notes) + ". docs/guide/perceptual.md says where weights go."]
    with atomic_output(md_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def oracle_ratio(scores_file: Path, variable: str) -> float | None:
    """The CRPS of ``variable`` over the oracle CRPS (the truth ensembles'), each averaged over leads; None for
    a scores file without truth-ensemble scores."""
    from forecast.scores_file import open_scores

    with open_scores(scores_file) as scores:
        oracle = scores.get(variable, "crps_oracle_mean")
        if oracle is None:
            return None
        oracle = float(oracle.mean())
        return float(scores[variable]["crps_mean"].mean()) / oracle if oracle > 0 else math.nan


def add_smmnist_columns(
    table: list[dict], chain: pipeline.Pipeline, rows: list[pipeline.Row], perceptual_metrics: bool, weights
) -> None:
    """``crps_smmnist`` (CRPS of the frames, 0..255), ``crps_oracle_ratio_smmnist`` (where the store has truth
    ensembles) and ``fvd_smmnist`` of every row, from ``chain``'s files."""
    for entry, row, summary in zip(table, rows, chain.summarize(rows)):
        entry["crps_smmnist"] = summary["crps_frames"]
        ratio = oracle_ratio(chain.scores_file(row), "frames")
        if ratio is not None:
            entry["crps_oracle_ratio_smmnist"] = ratio
        if perceptual_metrics:
            p = row_perceptual(chain, row, weights)
            entry["fvd_smmnist"] = p["fvd"]
            if p["note"] and "fvd:" in p["note"]:
                reason = p["note"][p["note"].index("fvd:") :].split(";")[0]
                entry["_note"] = "; ".join(filter(None, [entry.get("_note"), f"SM-MNIST {reason}"]))


def run_table(
    number: int,
    scale_name: str,
    out: str | Path,
    data: str | Path | None = None,
    seed: int = 0,
    perceptual_metrics: bool = True,
    weights: str | None = None,
    progress: bool = True,
    log=print,
    smmnist: bool = True,
    jobs: int | None = None,
    figures: bool = True,
) -> list[dict]:
    """Everything for table ``number`` at ``scale_name`` into ``out``; returns the table's rows. ``figures``: false
    leaves out the figures (seconds a table; drawing is most of a rerun of a finished table).

    Tables in ``SMMNIST_TABLES`` also train, roll out and score every row on SM-MNIST (``out/smmnist``) for
    their SM-MNIST columns, unless ``smmnist`` is false. ``jobs``: rows trained at once in worker processes
    (``pipeline.run_rows``; default ``pipeline.default_jobs``: one per core on CPUs, one on GPUs)."""
    if number not in TABLES:
        raise ForecastError(f"there is no table {number}; choose one of {', '.join(map(str, TABLES))}")
    if scale_name not in SCALES:
        raise ForecastError(f"unknown scale {scale_name!r}; choose one of {', '.join(SCALES)}")
    scale, out = SCALES[scale_name], Path(out)
    from simulators.karman import KarmanConfig

    settings = pipeline.RolloutSettings(**scale.rollout, seed=seed)
    chain = pipeline.Pipeline(
        out,
        store=data,
        simulation=None if data else KarmanConfig(**scale.simulation),
        rollout=settings,
        progress=progress,
        log=log,
    )
    rows = [r.pipeline_row(r.build(scale)) for r in TABLES[number]]
    chain.data()
    work = [(chain, rows)]
    if smmnist and number in SMMNIST_TABLES and scale.smmnist:
        video, video_rows = smmnist_chain(out, scale, rows, settings, progress, log)
        work.append((video, video_rows))
    # one pool for both datasets, so that no core waits for the last vortex-street row
    jobs = jobs or pipeline.default_jobs(sum(len(r) for _, r in work), gpu=scale.name == "paper")
    # LPIPS and FVD in the rows' workers too, right after their scores (kept for reruns: row_perceptual)
    after = functools.partial(row_perceptual, weights=weights) if perceptual_metrics else None
    pipeline.run_rows(work, jobs, log, after)
    if figures:  # two RVD rows must not share a legend entry: labelled by row
        chain.plot(rows, variables=["vorticity"])
    table = table_rows(chain, rows, perceptual_metrics, weights)
    if len(work) > 1:
        add_smmnist_columns(table, video, video_rows, perceptual_metrics, weights)
    command = f"python experiments/table{number}.py --scale {scale_name} --out {out}"
    csv_path, md_path = write_tables(table, out, number, scale, command)
    log(md_path.read_text())
    log(f"wrote {csv_path} and {md_path}" + (f" and {out / 'figures'}" if figures else ""))
    # SM-MNIST's truth ensembles: how calibrated each row is, beside the oracle
    if len(work) > 1 and video.settings.starts == "truth":
        heading = f"SM-MNIST calibration: table {number}'s SM-MNIST rows (`{command}`) and the oracle."
        tabulate(video, video_rows, heading, log=log, figures=figures)
    return table


#: ``--no-figures`` of the table scripts (``figures=False``)
NO_FIGURES_HELP = "the tables only, no figures"


def main(argv: list[str] | None = None, table: int | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    if table is None:
        parser.add_argument("--table", type=int, choices=tuple(TABLES), required=True)
    parser.add_argument("--scale", choices=tuple(SCALES), default="cpu-small")
    parser.add_argument("--out", required=True, help="output folder (rerun to resume)")
    parser.add_argument("--data", help="an existing vortex-street store instead of simulating one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-perceptual", action="store_true", help="skip LPIPS and FVD")
    parser.add_argument("--weights", help="folder with the pretrained LPIPS/I3D weights")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-smmnist", action="store_true", help="skip table 1's SM-MNIST column")
    parser.add_argument("--no-figures", action="store_true", help=NO_FIGURES_HELP)
    parser.add_argument(
        "--jobs",
        type=int,
        help="rows trained at once (default: one per core on CPUs, capped by the rows; 1 on GPUs)",
    )
    args = parser.parse_args(argv)
    try:
        run_table(
            table or args.table,
            args.scale,
            args.out,
            args.data,
            args.seed,
            not args.no_perceptual,
            args.weights,
            not args.no_progress,
            smmnist=not args.no_smmnist,
            jobs=args.jobs,
            figures=not args.no_figures,
        )
    except ForecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
