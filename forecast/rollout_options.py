"""The options of an ensemble rollout, declared once with one set of defaults.

``RolloutOptions`` is the one declaration. ``forecast rollout`` builds its arguments from its fields
(``add_arguments``), ``forecast.rollout.rollout`` and ``rollout_run`` take them as keyword parameters whose
defaults are read from ``DEFAULTS``, the pipeline's ``RolloutSettings`` *is* this class, and the forecast file's
``ForecastSettings`` records their resolved values. No torch here: the CLI parses without it.

Sampling steps. ``steps=None`` means the sampler's own default: all N diffusion steps for ``ddpm`` and ``ddim``,
``SOLVER_STEPS`` for the few-step ODE solver ``dpmpp2m`` (the default sampler; docs/guide/sampling.md gives the
validation that chose both).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from forecast.errors import ForecastError

#: how the starts are chosen: spread evenly over the test group, or those of the store's truth group
STARTS = ("even", "truth")
#: frames generated per init with even starts when no horizon is given (the paper's 16)
DEFAULT_HORIZON = 16
#: network evaluations per frame of the default sampler when no steps are given
SOLVER_STEPS = 10
#: what ``forecast rollout --help`` says about the samplers (their names: ``forecast.diffusion.SAMPLERS``)
SAMPLER_HELP = (
    "diffusion sampler: dpmpp2m (DPM-Solver++(2M), a few-step ODE solver), ddim (strided, --eta) or ddpm "
    "(ancestral, all N steps: the paper's algorithm 2)"
)


def _option(default: Any, help: str, kind: str, group: str, **cli: Any) -> Any:
    """A field of ``RolloutOptions`` with what the CLI needs to offer it: its help, its ``kind`` (``count``,
    ``non_negative``, ``non_negative_float``: parsed by the CLI's number types; ``text``, ``choice``, ``switch``),
    the ``group`` of ``--help`` it is listed in and ``cli`` extras (``flag``, ``metavar``, ``choices``)."""
    return field(default=default, metadata={"help": help, "kind": kind, "group": group, **cli})


WHAT, HOW, WHERE = "what is forecast", "how members are drawn", "where and how fast"


@dataclass(frozen=True)
class RolloutOptions:
    """How an ensemble forecast is made: what is forecast, how its members are drawn, where and how fast."""

    members: int = _option(8, "ensemble members per init", "count", WHAT)
    context: int = _option(4, "true frames observed before forecasting", "count", WHAT)
    horizon: int | None = _option(
        None,
        f"frames generated per init (default {DEFAULT_HORIZON}; with --starts truth: the truth group's horizon)",
        "count",
        WHAT,
    )
    inits: Any = _option(  # int | Sequence[Init] | None
        None,
        "number of forecast starts, spread evenly over the test sequences (default: one per sequence)",
        "count",
        WHAT,
    )
    starts: str = _option(
        "even",
        "even: --inits starts spread over the test group; truth: exactly the starts of the store's truth "
        "group (known-answer benchmarks), with its sequence, init_time and horizon",
        "choice",
        WHAT,
        choices=STARTS,
    )
    sampler: str = _option("dpmpp2m", SAMPLER_HELP, "text", HOW)
    steps: int | None = _option(
        None,
        f"sampling steps = network evaluations per frame (default: {SOLVER_STEPS} for dpmpp2m, all N "
        "diffusion steps for ddim and ddpm)",
        "count",
        HOW,
    )
    eta: float = _option(0.0, "DDIM eta: 0 deterministic, 1 DDPM-like", "non_negative_float", HOW)
    seed: int = _option(0, "random seed", "non_negative", HOW)
    spread_calibration: Any = _option(  # str | os.PathLike | None (rollout() receives it loaded)
        None,
        "widen each init's members about their mean by the factors of this spread calibration (JSON, fitted on "
        "a validation store: docs/guide/calibration.md); 'run' for RUN_DIR/spread_calibration.json",
        "text",
        HOW,
        metavar="FILE",
    )
    batch_size: int = _option(
        32, "most members generated together; larger ensembles are split into chunks", "count", WHERE
    )
    device: str = _option("auto", "auto, cpu, cuda, cuda:N or mps", "text", WHERE)
    amp: bool = _option(False, "bf16 autocast on GPUs that support it", "switch", WHERE)
    capture: str = _option(
        "none",
        "compile or capture the denoiser: none, auto (CUDA graphs on a GPU, none on a CPU), cudagraph (CUDA "
        "only) or compile (torch.compile: minutes to build); same samples to float rounding",
        "text",
        WHERE,
        flag="--compile",
        metavar="MODE",
    )
    channels_last: bool = _option(
        False,
        "run the denoiser in channels-last memory format (can speed up bf16 convolutions on GPUs)",
        "switch",
        WHERE,
    )

    def __post_init__(self) -> None:
        if self.starts not in STARTS:
            raise ForecastError(f"unknown starts {self.starts!r}; choose one of {STARTS}")
        for name in ("members", "context", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ForecastError(f"--{name.replace('_', '-')} must be an integer >= 1 (got {value!r})")
        for name in ("horizon", "steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ForecastError(f"--{name} must be an integer >= 1 (got {value!r})")
        if not (isinstance(self.eta, int | float) and self.eta >= 0):
            raise ForecastError(f"--eta must be >= 0 (got {self.eta!r})")

    def at_truth_starts(self) -> RolloutOptions:
        """These options, forecasting exactly the truth group's starts over its horizon."""
        return replace(self, starts="truth", inits=None, horizon=None)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RolloutOptions:
        """A copy with ``overrides`` (one line naming any key that is not an option)."""
        unknown = sorted(set(overrides) - set(names()))
        if unknown:
            raise ForecastError(f"unknown rollout options {unknown}; the options are {list(names())}")
        return replace(self, **overrides)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of ``rollout`` and ``rollout_run``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def sampling_steps(self) -> int | None:
        """The steps the sampler is asked for: ``steps``, or ``SOLVER_STEPS`` for dpmpp2m (None: all N)."""
        if self.steps is not None:
            return self.steps
        return SOLVER_STEPS if self.sampler == "dpmpp2m" else None


#: the one set of defaults
DEFAULTS = RolloutOptions()


def names() -> tuple[str, ...]:
    """The option names, in declaration order."""
    return tuple(f.name for f in fields(RolloutOptions))


def add_arguments(parser: argparse.ArgumentParser, parsers: Mapping[str, Any]) -> None:
    """Add every option to ``parser`` in its group, with its default from ``DEFAULTS``.

    ``parsers`` maps the kinds ``count``, ``non_negative`` and ``non_negative_float`` to argparse types (the CLI's
    own, ``forecast.cli.common``); each option's destination is its field name.
    """
    groups: dict[str, Any] = {}
    for f in fields(RolloutOptions):
        meta = f.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        common = {"dest": f.name, "default": f.default, "help": meta["help"]}
        if meta["kind"] == "switch":
            group.add_argument(flag, action="store_true", **common)
        elif meta["kind"] == "choice":
            group.add_argument(flag, choices=meta["choices"], **common)
        elif meta["kind"] == "text":
            group.add_argument(flag, metavar=meta.get("metavar"), **common)
        else:
            group.add_argument(flag, type=parsers[meta["kind"]], **common)


def from_arguments(args: argparse.Namespace) -> RolloutOptions:
    """The options parsed by a parser that ``add_arguments`` built."""
    return RolloutOptions(**{name: getattr(args, name) for name in names()})
