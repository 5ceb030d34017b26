"""The ``data`` and ``training`` sections of an experiment config: typed, frozen, checked in one place.

A config is a YAML mapping with sections ``model`` and ``diffusion`` (read by ``forecast.models.build_model``)
and ``data`` and ``training`` (read here, like ``forecast.models.config`` reads the model's). ``DataConfig`` and
``TrainingConfig`` are frozen dataclasses whose fields are the keys and their defaults; unknown keys are errors,
so that a typo cannot silently fall back to a default.

``parse_data_config`` / ``parse_training_config`` give the typed sections; ``resolve_config`` returns the whole
config as a plain dict with every default filled in and every number of the right type (what a run directory
stores in ``config.yaml`` and every checkpoint), or raises ``ForecastError`` naming the bad key.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import yaml

from forecast.errors import ForecastError
from forecast.field_store import GROUPS, TRAIN_GROUP
from forecast.models.config import require_choice

LR_SCHEDULES = ("linear", "cosine", "constant")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class DataConfig:
    variables: tuple[str, ...] | None = (
        None  # store variables stacked into model channels, in order (None: all)
    )
    context_frames: int = 2  # frames observed before the first frame that is scored (paper: 2)
    future_frames: int = 6  # frames scored per window with teacher forcing (paper: 6)
    channels: int | None = None  # optional: expected number of model channels, checked against the store
    group: str = (
        TRAIN_GROUP  # the store group whose windows train the model and whose statistics normalise it
    )

    @property
    def window_length(self) -> int:
        return self.context_frames + self.future_frames


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = 8  # per process; the global batch is batch_size * world_size
    steps: int = 100_000  # optimizer steps of the whole run
    time_budget_s: float | None = None  # stop when the run has trained this long in total (over resumes)
    mode: str = "standard"  # how one step trains (forecast.training.modes): standard = algorithm 1
    lr: float = 5.0e-5  # initial learning rate (paper)
    lr_final: float = 2.0e-5  # learning rate reached at lr_decay_steps (paper)
    lr_schedule: str = "linear"  # linear | cosine | constant decay from lr to lr_final
    lr_decay_steps: int | None = None  # horizon of the decay; default: steps (fixed when the run starts)
    warmup_steps: int = 0  # linear warm-up from 0 to lr
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # effective decay min(ema_decay, (1 + step) / (10 + step)) early in the run
    grad_clip: float | None = 1.0  # max global gradient norm; 0 or null disables clipping
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    num_workers: int | str = (
        "auto"  # DataLoader workers: auto (0 on CPU, up to 4 per GPU process) or a number
    )
    prefetch_factor: int = 4  # batches prefetched per worker
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (overridden by --device)
    # auto (bf16 autocast on GPUs that support it, fp32 elsewhere) | bf16 (also on CPUs with AVX512-BF16 or AMX;
    # refused where neither) | fp32
    precision: str = "auto"
    channels_last: bool = False  # channels_last memory format for the network (helps convolutions on GPUs)
    compile: bool = False  # torch.compile the loss pass (GPUs; on CPUs the compile time rarely pays off)
    ddp_find_unused_parameters: bool = False


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
_BOOL_KEYS = ("ema_warmup", "channels_last", "compile", "ddp_find_unused_parameters")
_POSITIVE_KEYS = ("batch_size", "checkpoint_every", "log_every", "prefetch_factor", "lr_decay_steps")

# Keys whose change makes a checkpoint meaningless (besides the model, diffusion and data sections).
FROZEN_TRAINING_KEYS = ("batch_size", "seed", "mode")


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


#: the sections of a config, in the order they are written
SECTIONS = ("model", "diffusion", "data", "training")


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``["data.variables=[u,v]", "training.steps=500"]`` as ``{"data.variables": ["u", "v"], ...}``: each
    ``KEY=VALUE`` with a dotted key, the value read as YAML (as in a config file: ``[u, v]``, ``500``, ``null``)."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ForecastError(f"--set {item!r}: expected KEY=VALUE, e.g. training.steps=500")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ForecastError(
                f"--set {item!r}: the value is not YAML ({str(exc).splitlines()[0]})"
            ) from None
    return out


def override_config(config: dict, overrides: Mapping[str, Any]) -> dict:
    """A copy of ``config`` with each dotted key of ``overrides`` (``"training.steps"``) set to its value.

    The key must name a section of the config (``model``, ``diffusion``, ``data``, ``training``) and a key in it
    (any depth); whether that key exists and its value is valid is checked as for the file
    (``resolve_config``, ``forecast.models.build_model``), so a typo is an error, never a silent default.
    """
    out = copy.deepcopy(config)
    for dotted, value in overrides.items():
        path = dotted.split(".")
        if len(path) < 2 or path[0] not in SECTIONS or not all(path):
            raise ForecastError(
                f"config override {dotted!r}: expected SECTION.KEY with SECTION one of {', '.join(SECTIONS)}"
            )
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ForecastError(
                    f"config override {dotted!r}: {'.'.join(path[: depth + 1])} is not a mapping"
                )
            node = child
        node[path[-1]] = value
    return out


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


def _section(config: dict, name: str, cls: type) -> dict:
    if not isinstance(config, dict):
        raise ForecastError("config must be a mapping")
    given = config.get(name) or {}
    if not isinstance(given, dict):
        raise ForecastError(f"config: section {name!r} must be a mapping")
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ForecastError(f"config: unknown keys in {name!r}: {unknown} (known: {known})")
    return copy.deepcopy(given)


def parse_data_config(config: dict) -> DataConfig:
    """The ``data`` section of ``config``, typed and checked."""
    data = replace(DataConfig(), **_section(config, "data", DataConfig))
    variables = [data.variables] if isinstance(data.variables, str) else data.variables
    if variables is not None and (
        not variables
        or not isinstance(variables, list | tuple)
        or not all(isinstance(v, str) for v in variables)
    ):
        raise ForecastError(
            "config: data.variables must be a non-empty list of store variable names (or null: all of the store's)"
        )
    context = _number("data", "context_frames", data.context_frames, int)
    future = _number("data", "future_frames", data.future_frames, int)
    if context < 1:
        raise ForecastError("config: data.context_frames must be at least 1")
    if future < 1:
        raise ForecastError("config: data.future_frames must be at least 1")
    channels = None if data.channels is None else _number("data", "channels", data.channels, int)
    require_choice(data.group, GROUPS, "config: data.group must be one of {choices}, got {value}")
    return replace(
        data,
        variables=None if variables is None else tuple(variables),
        context_frames=context,
        future_frames=future,
        channels=channels,
    )


def parse_training_config(config: dict, **overrides: Any) -> TrainingConfig:
    """The ``training`` section of ``config``, typed and checked; ``overrides`` (not None) replace keys."""
    given = _section(config, "training", TrainingConfig)
    given.update({k: v for k, v in overrides.items() if v is not None})
    raw = asdict(replace(TrainingConfig(), **given))
    for key in _INT_KEYS:
        raw[key] = _number("training", key, raw[key], int)
    if raw["num_workers"] != "auto":
        raw["num_workers"] = _number("training", "num_workers", raw["num_workers"], int)
    for key in _FLOAT_KEYS:
        raw[key] = _number("training", key, raw[key], float)
    for key in ("grad_clip", "time_budget_s"):
        if raw[key] is not None:
            raw[key] = _number("training", key, raw[key], float)
    if raw["lr_decay_steps"] is None:
        raw["lr_decay_steps"] = raw["steps"]
    raw["lr_decay_steps"] = _number("training", "lr_decay_steps", raw["lr_decay_steps"], int)
    betas = raw["adam_betas"]
    if not (isinstance(betas, list | tuple) and len(betas) == 2):
        raise ForecastError(f"config: training.adam_betas must be a pair, got {betas!r}")
    raw["adam_betas"] = tuple(_number("training", "adam_betas", b, float) for b in betas)
    for key in _BOOL_KEYS:
        raw[key] = bool(raw[key])
    training = TrainingConfig(**raw)
    _check_training(training)
    return training


def _check_training(t: TrainingConfig) -> None:
    for key in _POSITIVE_KEYS:
        if getattr(t, key) < 1:
            raise ForecastError(f"config: training.{key} must be at least 1, got {getattr(t, key)}")
    if t.num_workers != "auto" and t.num_workers < 0:
        raise ForecastError(f"config: training.num_workers must be auto or >= 0, got {t.num_workers}")
    for key in ("steps", "warmup_steps"):
        if getattr(t, key) < 0:
            raise ForecastError(f"config: training.{key} must not be negative, got {getattr(t, key)}")
    if t.time_budget_s is not None and t.time_budget_s < 0:
        raise ForecastError(f"config: training.time_budget_s must not be negative, got {t.time_budget_s}")
    if t.lr <= 0 or t.lr_final <= 0:
        raise ForecastError("config: training.lr and training.lr_final must be positive")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ForecastError(f"config: training.ema_decay must be in [0, 1), got {t.ema_decay}")
    require_choice(t.lr_schedule, LR_SCHEDULES, "config: training.lr_schedule must be {choices}, got {value}")
    require_choice(t.precision, PRECISIONS, "config: training.precision must be {choices}, got {value}")
    from forecast.training.mode_registry import MODES  # late: the modes import this module (and torch)

    require_choice(t.mode, MODES, "config: training.mode must be one of {choices}, got {value}")


def section_dict(section: DataConfig | TrainingConfig) -> dict:
    """A typed section as plain YAML-safe data (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(section).items()}


def resolve_config(
    config: dict, steps: int | None = None, device: str | None = None, time_budget_s: float | None = None
) -> dict:
    """``config`` with the ``data`` and ``training`` sections checked and every default filled in.

    ``steps``/``device``/``time_budget_s`` override the training keys of that name (the CLI's ``--steps``,
    ``--device``, ``--time-budget``).
    """
    if not isinstance(config, dict):
        raise ForecastError("config must be a mapping")
    if "model" not in config:
        raise ForecastError("config has no 'model' section")
    resolved = copy.deepcopy(config)
    resolved["data"] = section_dict(parse_data_config(config))
    training = parse_training_config(config, steps=steps, device=device, time_budget_s=time_budget_s)
    resolved["training"] = section_dict(training)
    return resolved


def window_length(config: dict) -> int:
    return parse_data_config(config).window_length


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
