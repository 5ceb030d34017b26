"""One declaration of the rollout options: the CLI, the Python API and the pipeline share its defaults."""

from __future__ import annotations

import inspect
import shlex

import pytest

from forecast import pipeline
from forecast.cli import build_parser
from forecast.cli.rollout import _command
from forecast.diffusion import SAMPLERS
from forecast.errors import ForecastError
from forecast.rollout import rollout, rollout_run
from forecast.rollout_options import DEFAULTS, SAMPLER_HELP, RolloutOptions, from_arguments, names


def _cli(*extra: str):
    return build_parser().parse_args(["rollout", "RUN", "DATA.zarr", "--out", "fc.nc", *extra])


def test_cli_api_and_pipeline_share_one_set_of_defaults():
    assert pipeline.RolloutSettings is RolloutOptions
    assert pipeline.RolloutSettings() == DEFAULTS
    assert pipeline.Pipeline("unused", log=lambda _: None).settings == DEFAULTS
    assert from_arguments(_cli()) == DEFAULTS
    for function in (rollout, rollout_run):
        parameters = inspect.signature(function).parameters
        for name in names():
            assert parameters[name].default == getattr(DEFAULTS, name), (function.__name__, name)
    # the default sampler is the few-step solver; a forecast's horizon is the paper's 16 frames unless the
    # truth group fixes it
    assert (DEFAULTS.sampler, DEFAULTS.sampling_steps(), DEFAULTS.horizon) == ("dpmpp2m", 10, None)


def test_every_cli_option_reaches_the_options_and_the_history_line():
    args = _cli("--members", "3", "--context", "2", "--horizon", "5", "--inits", "4", "--starts", "even",
                "--sampler", "ddim", "--steps", "7", "--eta", "0.5", "--seed", "9", "--batch-size", "2",
                "--device", "cpu", "--amp", "--compile", "auto", "--channels-last")  # fmt: skip
    options = from_arguments(args)
    expected = RolloutOptions(members=3, context=2, horizon=5, inits=4, sampler="ddim", steps=7, eta=0.5,
                              seed=9, batch_size=2, device="cpu", amp=True, capture="auto", channels_last=True)  # fmt: skip
    assert options == expected
    # the file's history line is a command that parses back to the same options
    words = shlex.split(_command(args))
    assert (
        words[:2] == ["forecast", "rollout"]
        and from_arguments(build_parser().parse_args(words[1:])) == expected
    )
    assert from_arguments(build_parser().parse_args(shlex.split(_command(_cli()))[1:])) == DEFAULTS


def test_help_names_every_sampler():
    assert all(name in SAMPLER_HELP for name in SAMPLERS)


def test_bad_options_are_one_line_errors():
    with pytest.raises(ForecastError, match="unknown rollout options \\['sampling'\\]"):
        DEFAULTS.with_overrides({"sampling": "ddim"})
    with pytest.raises(ForecastError, match="--members must be an integer >= 1"):
        RolloutOptions(members=0)
    with pytest.raises(ForecastError, match="unknown starts"):
        RolloutOptions(starts="random")
    with pytest.raises(ForecastError, match="--steps must be"):
        RolloutOptions(steps=0)
    assert DEFAULTS.with_overrides({"sampler": "ddpm", "steps": None}).sampling_steps() is None
    truth = DEFAULTS.with_overrides({"inits": 3, "horizon": 4}).at_truth_starts()
    assert (truth.starts, truth.inits, truth.horizon) == ("truth", None, None)
