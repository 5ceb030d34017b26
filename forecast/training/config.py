"""The ``data`` and ``training`` sections of an experiment config: defaults, types and checks in one place.

A config is a YAML mapping with sections ``model`` and ``diffusion`` (read by ``forecast.models.build_model``)
and ``data`` and ``training`` (read here). ``resolve_config`` returns a new dict with every default filled in
and every number of the right type, or raises ``ForecastError`` naming the bad key. The resolved config is what
a run directory stores in ``config.yaml`` and every checkpoint.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml

from forecast.errors import ForecastError

DATA_DEFAULTS: dict[str, Any] = {
    "variables": None,  # required: store variables stacked into model channels, in this order
    "context_frames": 2,  # frames observed before the first frame that is scored (paper: 2)
    "future_frames": 6,  # frames scored per window with teacher forcing (paper: 6)
    "channels": None,  # optional: expected number of model channels, checked against the store
    "group": "train",
}

TRAINING_DEFAULTS: dict[str, Any] = {
    "batch_size": 8,  # per process; the global batch is batch_size * world_size
    "steps": 100_000,  # optimizer steps of the whole run
    "lr": 5.0e-5,  # initial learning rate (paper)
    "lr_final": 2.0e-5,  # learning rate reached at lr_decay_steps (paper)
    "lr_schedule": "linear",  # linear | cosine | constant decay from lr to lr_final
    "lr_decay_steps": None,  # horizon of the decay; default: steps (fixed when the run starts)
    "warmup_steps": 0,  # linear warm-up from 0 to lr
    "adam_betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "ema_decay": 0.999,
    "ema_warmup": True,  # effective decay min(ema_decay, (1 + step) / (10 + step)) early in the run
    "grad_clip": 1.0,  # max global gradient norm; 0 or null disables clipping
    "checkpoint_every": 1000,
    "log_every": 50,
    "seed": 0,
    "num_workers": "auto",  # DataLoader worker processes: auto (0 on CPU, up to 4 per GPU process) or a number
    "prefetch_factor": 4,  # batches prefetched per worker
    "device": "auto",  # auto | cpu | cuda | cuda:N | mps (overridden by --device)
    "precision": "auto",  # auto (bf16 autocast on GPUs that support it) | bf16 | fp32
    "ddp_find_unused_parameters": False,
}

_INT_KEYS = (
    "batch_size",
    "steps",
    "warmup_steps",
    "checkpoint_every",
    "log_every",
    "seed",
    "prefetch_factor",
)
_FLOAT_KEYS = ("lr", "lr_final", "weight_decay", "ema_decay")

# Sections whose change makes a checkpoint meaningless (the network, its inputs or the window stream).
FROZEN_TRAINING_KEYS = ("batch_size", "seed")


def load_config(path: str | os.PathLike) -> dict:
    """The config in the YAML file ``path``, or the shipped config of that name (``tiny``, ``paper_64``, ...)."""
    from forecast.configs import config_path
    from forecast.filekind import describe, is_binary

    path = config_path(path)
    if path.is_dir() or is_binary(path):
        raise ForecastError(f"config {path} is {describe(path)}; expected a YAML config file")
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except OSError as exc:
        raise ForecastError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ForecastError(f"config {path} is not text; expected a YAML config file") from None
    except yaml.YAMLError as exc:
        raise ForecastError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ForecastError(f"config {path} must be a mapping with sections model, diffusion, data, training")
    return config


def _number(section: str, key: str, value: Any, kind: type) -> Any:
    # YAML reads "5e-5" (no dot) as a string: accept it as the number it obviously is.
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(float(value)) if kind is int else float(value)
        if kind is int and float(value) != number:
            raise ValueError
        return number
    except (TypeError, ValueError):
        raise ForecastError(f"config: {section}.{key} must be {kind.__name__}, got {value!r}") from None


def _section(config: dict, name: str, defaults: dict) -> dict:
    given = config.get(name) or {}
    if not isinstance(given, dict):
        raise ForecastError(f"config: section {name!r} must be a mapping")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ForecastError(f"config: unknown keys in {name!r}: {unknown} (known: {sorted(defaults)})")
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def resolve_config(config: dict, steps: int | None = None, device: str | None = None) -> dict:
    """Fill in defaults, coerce types and check the ``data`` and ``training`` sections.

    ``steps``/``device`` override ``training.steps``/``training.device`` (the CLI's ``--steps``/``--device``).
    """
    if not isinstance(config, dict):
        raise ForecastError("config must be a mapping")
    resolved = copy.deepcopy(config)
    if "model" not in resolved:
        raise ForecastError("config has no 'model' section")

    data = _section(resolved, "data", DATA_DEFAULTS)
    variables = data["variables"]
    if isinstance(variables, str):
        variables = [variables]
    if not variables or not all(isinstance(v, str) for v in variables):
        raise ForecastError("config: data.variables must be a non-empty list of store variable names")
    data["variables"] = list(variables)
    data["context_frames"] = _number("data", "context_frames", data["context_frames"], int)
    data["future_frames"] = _number("data", "future_frames", data["future_frames"], int)
    if data["context_frames"] < 1:
        raise ForecastError("config: data.context_frames must be at least 1")
    if data["future_frames"] < 1:
        raise ForecastError("config: data.future_frames must be at least 1")
    if data["channels"] is not None:
        data["channels"] = _number("data", "channels", data["channels"], int)
    if data["group"] != "train":
        raise ForecastError("config: data.group must be 'train' (statistics and windows come from it)")

    training = _section(resolved, "training", TRAINING_DEFAULTS)
    if steps is not None:
        training["steps"] = steps
    if device is not None:
        training["device"] = device
    for key in _INT_KEYS:
        training[key] = _number("training", key, training[key], int)
    if training["num_workers"] != "auto":
        training["num_workers"] = _number("training", "num_workers", training["num_workers"], int)
    for key in _FLOAT_KEYS:
        training[key] = _number("training", key, training[key], float)
    if training["grad_clip"] is not None:
        training["grad_clip"] = _number("training", "grad_clip", training["grad_clip"], float)
    if training["lr_decay_steps"] is None:
        training["lr_decay_steps"] = training["steps"]
    training["lr_decay_steps"] = _number("training", "lr_decay_steps", training["lr_decay_steps"], int)
    betas = training["adam_betas"]
    if not (isinstance(betas, list | tuple) and len(betas) == 2):
        raise ForecastError(f"config: training.adam_betas must be a pair, got {betas!r}")
    training["adam_betas"] = [_number("training", "adam_betas", b, float) for b in betas]

    positive = ("batch_size", "checkpoint_every", "log_every", "prefetch_factor", "lr_decay_steps")
    for key in positive:
        if training[key] < 1:
            raise ForecastError(f"config: training.{key} must be at least 1, got {training[key]}")
    if training["num_workers"] != "auto" and training["num_workers"] < 0:
        raise ForecastError(
            f"config: training.num_workers must be auto or >= 0, got {training['num_workers']}"
        )
    for key in ("steps", "warmup_steps"):
        if training[key] < 0:
            raise ForecastError(f"config: training.{key} must not be negative, got {training[key]}")
    if training["lr"] <= 0 or training["lr_final"] <= 0:
        raise ForecastError("config: training.lr and training.lr_final must be positive")
    if not 0.0 <= training["ema_decay"] < 1.0:
        raise ForecastError(f"config: training.ema_decay must be in [0, 1), got {training['ema_decay']}")
    if training["lr_schedule"] not in ("linear", "cosine", "constant"):
        raise ForecastError(
            f"config: training.lr_schedule must be linear, cosine or constant, got {training['lr_schedule']!r}"
        )
    if training["precision"] not in ("auto", "bf16", "fp32"):
        raise ForecastError(
            f"config: training.precision must be auto, bf16 or fp32, got {training['precision']!r}"
        )
    training["ema_warmup"] = bool(training["ema_warmup"])
    training["ddp_find_unused_parameters"] = bool(training["ddp_find_unused_parameters"])

    resolved["data"] = data
    resolved["training"] = training
    return resolved


def window_length(config: dict) -> int:
    return config["data"]["context_frames"] + config["data"]["future_frames"]


def config_mismatch(saved: dict, current: dict) -> str | None:
    """Why a run saved with ``saved`` cannot continue under ``current`` (None if it can)."""
    for section in ("model", "diffusion", "data"):
        if saved.get(section) != current.get(section):
            return f"section {section!r} differs"
    for key in FROZEN_TRAINING_KEYS:
        if saved.get("training", {}).get(key) != current.get("training", {}).get(key):
            return f"training.{key} differs"
    return None


def dump_config(config: dict, path: str | os.PathLike) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
