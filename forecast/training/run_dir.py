"""Run directories: what training writes, the rules for starting or resuming one, and what rollout reads.

A run directory holds::

    config.yaml          the resolved config (every default filled in)
    normalization.json   the ChannelLayout: variables -> normalised channels, train-group statistics
    metrics.csv          one row per logged step (step, loss, lr, grad_norm, samples_per_s, elapsed_s, ...)
    checkpoints/last.pt  the latest checkpoint, replaced atomically (temp file + rename)

A checkpoint is plain data, loadable with ``torch.load(..., weights_only=True)``: the model and EMA state dicts,
the optimizers' state dicts by name, the step, the training time so far, the last logged metrics, the RNG states
of every process, the data-sampler position and the resolved config. Format 1 (one optimizer, no training time)
is still read.

The policy (``open_run``): a new run needs an empty (or missing) directory; ``resume`` continues a run under its
saved config, where only ``steps``, ``device`` and ``time_budget_s`` may change; ``resume`` on a directory
without a run starts a new one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from forecast.atomic import atomic_output
from forecast.data.channels import ChannelLayout
from forecast.device import select_device
from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.training.config import config_mismatch, dump_config, resolve_config

CONFIG_FILE = "config.yaml"
NORMALIZATION_FILE = "normalization.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)
#: the columns every metrics.csv starts with (a training mode may append its own)
METRIC_COLUMNS = ("step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s")


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` so that ``path`` always holds either the previous or the new checkpoint, whole."""
    with atomic_output(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint as data (``weights_only``), in the current format; ForecastError if it is missing,
    unreadable or of an unknown format."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, disallowed (code) content, ...
        raise ForecastError(
            f"checkpoint {path} is corrupt or not a checkpoint ({type(exc).__name__})"
        ) from None
    needed = ("format", "step", "model", "ema", "config")
    if not isinstance(payload, dict) or any(k not in payload for k in needed):
        raise ForecastError(f"checkpoint {path} is not a forecast training checkpoint")
    if payload["format"] not in READABLE_FORMATS:
        raise ForecastError(
            f"checkpoint {path} has format {payload['format']}, this version reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}"
        )
    if payload["format"] == 1:  # one optimizer, no training time or metrics
        payload["optimizers"] = {"model": payload.pop("optimizer")} if "optimizer" in payload else {}
        payload["format"] = CHECKPOINT_FORMAT
    payload.setdefault("elapsed_s", 0.0)
    payload.setdefault("metrics", {})
    payload.setdefault("mode", {})
    return payload


def read_run_config(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except OSError:
        raise ForecastError(f"{run_dir} is not a run directory (no {CONFIG_FILE})") from None
    except yaml.YAMLError:
        raise ForecastError(f"{path} is corrupt (not valid YAML)") from None
    if not isinstance(config, dict):
        raise ForecastError(f"{path} is corrupt (not a mapping)")
    return resolve_config(config)


# --------------------------------------------------------------------------------------------------- the policy
@dataclass
class RunStart:
    """What ``open_run`` decided: the config the run trains under and the checkpoint it continues from."""

    config: dict
    new_run: bool
    checkpoint: dict | None  # the payload of checkpoints/last.pt (None: start from step 0)


def _is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def open_run(
    run_dir: str | os.PathLike,
    config: dict,
    resume: bool = False,
    log: Callable[[str], None] = print,
    **overrides,
) -> RunStart:
    """Check ``run_dir`` against ``config`` and decide how the run starts (nothing is written).

    ``overrides`` (``steps``, ``device``, ``time_budget_s``) are the keys that may change on resume.
    """
    run_dir = Path(run_dir)
    config = resolve_config(config, **overrides)
    if resume and (run_dir / CONFIG_FILE).is_file():
        saved = read_run_config(run_dir)
        why = config_mismatch(saved, config)
        if why:
            raise ForecastError(f"cannot resume {run_dir} with this config: {why} from {CONFIG_FILE}")
        config = resolve_config(saved, **overrides)  # the saved config rules
        payload = None
        path = checkpoint_path(run_dir)
        if path.exists():
            payload = read_checkpoint(path)
            why = config_mismatch(resolve_config(payload["config"]), config)
            if why:
                raise ForecastError(f"checkpoint {path} does not match its run's config: {why}")
        return RunStart(config=config, new_run=False, checkpoint=payload)
    if resume:
        if not _is_empty_dir(run_dir) and (run_dir / METRICS_FILE).exists():
            raise ForecastError(f"{run_dir} looks like a damaged run directory (no {CONFIG_FILE})")
        log(f"note: {run_dir} holds no run to resume; starting a new run")
    elif not _is_empty_dir(run_dir):
        raise ForecastError(
            f"run directory {run_dir} exists and is not empty; use --resume to continue it or choose another --out"
        )
    return RunStart(config=config, new_run=True, checkpoint=None)


def write_run_files(
    run_dir: Path, start: RunStart, layout: ChannelLayout, step: int, columns: Sequence[str]
) -> None:
    """config.yaml, normalization.json (kept on resume) and metrics.csv cut back to ``step``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if start.new_run or not (run_dir / NORMALIZATION_FILE).exists():
        with atomic_output(run_dir / NORMALIZATION_FILE) as tmp:
            layout.to_json(tmp)
    with atomic_output(run_dir / CONFIG_FILE) as tmp:
        dump_config(start.config, tmp)
    MetricsLog(run_dir / METRICS_FILE, columns).trim(step)


class MetricsLog:
    """``metrics.csv``: a header, then one row per logged step."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = path
        self.columns = tuple(columns)

    def trim(self, step: int) -> None:
        """Keep the rows up to ``step`` (later ones came from steps that a resumed run recomputes)."""
        if not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with atomic_output(self.path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])


# --------------------------------------------------------------------------------------------------- reading runs
def load_model_weights(model: torch.nn.Module, state: dict, source: str) -> None:
    """``load_state_dict`` (strict) with a one-line error when the weights do not fit the network."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise ForecastError(f"{source} does not match the model built from its config ({detail})") from None


def default_model_factory(config: dict, n_channels: int) -> SequenceModel:
    from forecast.models import build_model  # late: build_model is looked up when called (tests replace it)

    return build_model(config, n_channels)


@dataclass
class LoadedRun:
    model: SequenceModel
    layout: ChannelLayout
    config: dict
    checkpoint: Path
    step: int


def load_run(
    run_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    ema: bool = True,
    model_factory: Callable[[dict, int], SequenceModel] | None = None,
) -> LoadedRun:
    """The trained model of a run directory, in eval mode on ``device`` (EMA weights unless ``ema=False``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ForecastError(f"no run directory at {run_dir}")
    config = read_run_config(run_dir)
    if not (run_dir / NORMALIZATION_FILE).is_file():
        raise ForecastError(f"{run_dir} has no {NORMALIZATION_FILE}")
    layout = ChannelLayout.from_json(run_dir / NORMALIZATION_FILE)
    path = checkpoint_path(run_dir)
    payload = read_checkpoint(path)
    why = config_mismatch(resolve_config(payload["config"]), config)
    if why:
        raise ForecastError(f"checkpoint {path} does not match {run_dir / CONFIG_FILE}: {why}")
    factory = model_factory or default_model_factory
    model = factory(config, layout.n_channels)
    load_model_weights(model, payload["ema"] if ema else payload["model"], f"checkpoint {path}")
    device = device if isinstance(device, torch.device) else select_device(device)
    model = model.to(device).eval()
    return LoadedRun(model=model, layout=layout, config=config, checkpoint=path, step=int(payload["step"]))
