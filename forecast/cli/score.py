"""`forecast score FC.nc --out SCORES.nc`: the scores file of docs/formats.md from a forecast file."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from forecast.cli.common import add_write_options, check_input_kind, claimed_output, count, non_negative


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score an ensemble forecast file (CRPS, RMSE, spread, rank/PIT histograms)",
        description="Score a forecast file (docs/formats.md) and write the scores file. The file is read once, "
        "in blocks of --chunk-init inits, every score computed from the same pass, so files larger than memory "
        "can be scored (docs/guide/scoring.md).",
    )
    parser.add_argument(
        "forecast", type=Path, metavar="FC.nc", help="forecast file (netCDF) written by `forecast rollout`"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="SCORES.nc", help="scores file to write (netCDF)"
    )
    parser.add_argument("--fair", action="store_true", help="use the fair (unbiased) CRPS estimator")
    parser.add_argument(
        "--reference",
        type=Path,
        help="a forecast file to compute CRPS skill scores against, or `persistence` (the last context frame, "
        "from the file's V_context)",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        metavar="STORE",
        help="a field store with a `truth` group (known-answer benchmark): adds the oracle CRPS, the CRPS ratio "
        "to it, the spread ratio to the truth ensemble, the energy distance to it and the truth's own rank "
        "histogram (docs/guide/known-answer.md)",
    )
    parser.add_argument("--skipna", action="store_true", help="leave out missing values instead of failing")
    parser.add_argument("--seed", type=non_negative, default=0, help="seed of the rank tie-breaking")
    parser.add_argument("--pit-bins", type=int, default=10, help="bins of the PIT histogram (default 10)")
    parser.add_argument(
        "--chunk-init",
        type=count,
        default=None,
        help="inits per block read and scored at a time (default: as many as hold 128 MB of members)",
    )
    parser.add_argument(
        "--perceptual",
        nargs="*",
        choices=["psnr", "ssim", "lpips", "fvd"],
        metavar="METRIC",
        help="also score video perceptually: any of psnr ssim lpips fvd (no names: all four); LPIPS and FVD "
        "need pretrained weights (docs/guide/perceptual.md)",
    )
    parser.add_argument("--weights", type=Path, help="folder searched first for LPIPS/FVD weights")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="the address of a dask distributed scheduler (tcp://host:8786) to score on; its workers must see "
        "the forecast file (default: dask's threads in this process)",
    )
    add_write_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_input_kind(args.forecast, "a forecast file")
    persistence = (
        args.reference is not None and str(args.reference) == "persistence" and not args.reference.exists()
    )
    if args.reference is not None and not persistence:
        check_input_kind(args.reference, "a forecast file", "--reference")
    if args.truth is not None and Path(args.truth).is_file():  # a folder: the truth reader says what it lacks
        check_input_kind(args.truth, "a zarr store", "--truth")
    with claimed_output(args.out, args), _scheduler(args.scheduler):
        return _score(args, persistence)


@contextlib.contextmanager
def _scheduler(address: str | None) -> Iterator[None]:
    """Run dask's computations on the distributed scheduler at ``address`` (None: dask's default threads)."""
    if address is None:
        yield
        return
    from simulators.common.parallel import connect_scheduler

    with connect_scheduler(address):
        yield


def _score(args: argparse.Namespace, persistence: bool) -> int:
    # xarray, dask and numba: only when scoring, not for --help
    from forecast.atomic import atomic_output
    from forecast.forecast_file import forecast_variables, open_forecast
    from forecast.metrics.persistence import persistence_reference
    from forecast.metrics.scores import score_forecast
    from forecast.metrics.truth import open_truth, verifying_truth

    forecast = open_forecast(args.forecast)  # lazily: score_forecast reads it block by block
    if args.reference is None:
        reference = None
    elif persistence:
        reference = persistence_reference(forecast)
    else:
        reference = open_forecast(args.reference)
    truth = None if args.truth is None else open_truth(args.truth)
    # the oracle is scored against the file's V_obs: check they are the store's own test frames
    verifying = None if truth is None else verifying_truth(args.truth, forecast, forecast_variables(forecast))
    scores = score_forecast(
        forecast,
        truth=truth,
        command=_command(args),
        verifying=verifying,
        fair=args.fair,
        skipna=args.skipna,
        seed=args.seed,
        pit_bins=args.pit_bins,
        reference=reference,
        progress=not args.quiet,
        block_inits=args.chunk_init,
    )
    if args.perceptual is not None:
        from forecast.metrics.video import METRICS, video_scores

        chunked = forecast.chunk({"init": args.chunk_init or 1})
        perceptual = video_scores(chunked, metrics=args.perceptual or METRICS, weights=args.weights)
        scores = scores.merge(perceptual.compute())
        scores.attrs["perceptual_metrics"] = " ".join(args.perceptual or METRICS)
    scores.attrs["source_file"] = str(args.forecast)
    if args.reference:
        scores.attrs["reference_file"] = str(args.reference)
    if args.truth:
        scores.attrs["truth_store"] = str(args.truth)
    with atomic_output(args.out) as tmp:
        scores.to_netcdf(tmp)
    print(f"wrote {args.out} ({scores.attrs['estimator']} CRPS, {scores.attrs['ensemble_size']} members)")
    if (
        truth is not None
        and not args.fair
        and scores.attrs["truth_ensemble_size"] != scores.attrs["ensemble_size"]
    ):
        print(
            f"note: the ensemble CRPS of {scores.attrs['ensemble_size']} members against a truth ensemble of "
            f"{scores.attrs['truth_ensemble_size']} favours the larger one; --fair compares them without that bias"
        )
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command with its scoring options spelled out: the scores file's ``history`` entry."""
    words = ["forecast score", str(args.forecast), "--out", str(args.out)]
    words += [f"--{flag}" for flag in ("fair", "skipna") if getattr(args, flag)]
    for name in ("reference", "truth"):
        if getattr(args, name) is not None:
            words += [f"--{name}", str(getattr(args, name))]
    words += ["--seed", str(args.seed), "--pit-bins", str(args.pit_bins)]
    return " ".join(words)
