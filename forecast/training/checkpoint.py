"""Run directories and checkpoints: what training writes and rollout reads.

A run directory holds::

    config.yaml          the resolved config (every default filled in)
    normalization.json   the ChannelLayout: variables -> normalised channels, train-group statistics
    metrics.csv          one row per logged step (step, loss, lr, grad_norm, ...)
    checkpoints/last.pt  the latest checkpoint, replaced atomically (temp file + rename)

A checkpoint is plain data, loadable with ``torch.load(..., weights_only=True)``: the model, EMA and optimizer
state dicts, the step, the RNG states of every process, the data-sampler position and the resolved config.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from forecast.atomic import atomic_output
from forecast.data.channels import ChannelLayout
from forecast.device import select_device
from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.training.config import config_mismatch, resolve_config

CONFIG_FILE = "config.yaml"
NORMALIZATION_FILE = "normalization.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
CHECKPOINT_FORMAT = 1


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` so that ``path`` always holds either the previous or the new checkpoint, whole."""
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint as data (``weights_only``); ForecastError if it is missing or unreadable."""
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
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ForecastError(
            f"checkpoint {path} has format {payload['format']}, this version reads {CHECKPOINT_FORMAT}"
        )
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


def load_model_weights(model: torch.nn.Module, state: dict, source: str) -> None:
    """``load_state_dict`` (strict) with a one-line error when the weights do not fit the network."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise ForecastError(f"{source} does not match the model built from its config ({detail})") from None


def default_model_factory(config: dict, n_channels: int) -> SequenceModel:
    from forecast.models import build_model  # imported late: the CLI must load even without the model module

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
    layout = ChannelLayout.from_json(run_dir / NORMALIZATION_FILE)
    if not (run_dir / NORMALIZATION_FILE).is_file():
        raise ForecastError(f"{run_dir} has no {NORMALIZATION_FILE}")
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
