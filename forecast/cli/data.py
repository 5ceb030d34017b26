"""`forecast data import KIND SRC OUT.zarr`: natural-video datasets and gridded fields -> field stores."""

from __future__ import annotations

import argparse

from forecast.cli.common import (
    add_output,
    add_write_options,
    claimed_output,
    count,
    fraction,
    non_negative,
    output_path,
)


def _common(parser: argparse.ArgumentParser, length: int | None, size: int | None = None) -> None:
    parser.add_argument("src", help="the source (folder or file)")
    add_output(parser, "OUT.zarr", "the field store to write", positional=True)
    if size is not None:
        parser.add_argument("--size", type=count, default=size, help="frame size in pixels")
    parser.add_argument(
        "--length",
        type=count,
        default=length,
        help="frames per stored sequence" + ("" if length else " (default: the source's)"),
    )
    add_write_options(parser, resume="finish an interrupted import of OUT")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="import datasets into field stores")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", help="import a dataset: forecast data import KIND SRC OUT.zarr")
    kinds = imp.add_subparsers(dest="kind", metavar="KIND", required=True)
    _add_video_kinds(kinds)
    _add_smmnist(kinds)
    _add_fields(kinds)
    imp.set_defaults(handler=run)


def _add_video_kinds(kinds: argparse._SubParsersAction) -> None:
    """The recorded natural-video datasets: KTH, BAIR, Cityscapes."""
    kth = kinds.add_parser("kth", help="KTH Actions AVI clips (persons 1-16 train, 17-25 test)")
    _common(kth, length=20, size=64)
    kth.add_argument(
        "--crop", action="store_true", help="keep the aspect ratio (centre crop) instead of squashing"
    )

    bair = kinds.add_parser("bair", help="BAIR robot pushing tfrecords (softmotion30_44k)")
    _common(bair, length=30)
    bair.add_argument("--image", choices=("aux1", "main"), default="aux1", help="camera")
    bair.add_argument("--no-verify", action="store_true", help="skip the records' CRC checks")

    city = kinds.add_parser(
        "cityscapes", help="Cityscapes leftImg8bit_sequence (train -> train, val -> test)"
    )
    _common(city, length=30, size=128)


def _add_smmnist(kinds: argparse._SubParsersAction) -> None:
    """Stochastic moving MNIST, generated, with its optional truth group."""
    sm = kinds.add_parser("smmnist", help="stochastic moving MNIST; SRC is an MNIST file/folder or 'builtin'")
    _common(sm, length=30, size=64)
    sm.add_argument("--train-sequences", type=count, default=1000, help="sequences of the train group")
    sm.add_argument("--test-sequences", type=count, default=100, help="sequences of the test group")
    sm.add_argument("--digits", type=count, default=2, help="digits per frame")
    sm.add_argument("--digit-size", type=count, default=32, help="digit size in pixels")
    sm.add_argument("--seed", type=non_negative, default=0, help="random seed")
    sm.add_argument(
        "--truth-members",
        type=non_negative,
        default=0,
        metavar="K",
        help="truth group: K futures per start with their own bounces (0: none)",
    )
    sm.add_argument("--truth-inits", type=count, default=8, metavar="N", help="truth starts")
    sm.add_argument("--truth-horizon", type=count, default=16, metavar="H", help="frames per future")
    sm.add_argument(
        "--truth-context", type=count, default=4, metavar="C", help="frames kept before each start"
    )


def _add_fields(kinds: argparse._SubParsersAction) -> None:
    """Any gridded dataset xarray opens."""
    fields = kinds.add_parser("fields", help="any gridded dataset xarray opens (netCDF, zarr, HDF5)")
    _common(fields, length=None)
    fields.add_argument("--variables", help="comma-separated variables (default: all with the mapped dims)")
    fields.add_argument("--dims", help="dimension map, e.g. sequence=sample,time=t,y=lat,x=lon")
    fields.add_argument("--rename", help="variable renames, e.g. Vx=u,Vy=v")
    fields.add_argument(
        "--split",
        choices=("sequence", "time"),
        default="sequence",
        help="test = the last sequences or the last frames of every sequence",
    )
    fields.add_argument(
        "--test-fraction", type=fraction, default=0.2, help="share of sequences (or frames) in the test group"
    )
    fields.add_argument("--engine", help="xarray backend (netcdf4, h5netcdf, zarr, ...; default: guessed)")
    fields.add_argument("--group", help="group inside the source file")
    fields.add_argument("--dtype", default="float32", help="stored dtype of floating variables")
    fields.add_argument("--allow-nan", action="store_true", help="keep NaNs instead of refusing them")


def run(args: argparse.Namespace) -> int:
    # the importers pull in xarray and dask: only when a command runs, not for --help
    from forecast.data.importers.fields import parse_mapping
    from forecast.field_store import TEST_GROUP, TRAIN_GROUP

    common = {"resume": args.resume, "overwrite": args.overwrite, "progress": not args.quiet}
    kind = args.kind
    options: dict = {}
    if kind == "kth":
        options = {"size": args.size, "length": args.length, "crop": args.crop}
    elif kind == "bair":
        options = {"length": args.length, "image": args.image, "verify": not args.no_verify}
    elif kind == "cityscapes":
        options = {"size": args.size, "length": args.length}
    elif kind == "smmnist":
        options = {
            "size": args.size,
            "length": args.length,
            "num_digits": args.digits,
            "digit_size": args.digit_size,
            "seed": args.seed,
            "sequences": {TRAIN_GROUP: args.train_sequences, TEST_GROUP: args.test_sequences},
            "truth_members": args.truth_members,
            "truth_inits": args.truth_inits,
            "truth_horizon": args.truth_horizon,
            "truth_context": args.truth_context,
        }
    elif kind == "fields":
        options = {
            "variables": args.variables.split(",") if args.variables else None,
            "dims": parse_mapping(args.dims),
            "rename": parse_mapping(args.rename),
            "by": args.split,
            "test_fraction": args.test_fraction,
            "length": args.length,
            "engine": args.engine,
            "group": args.group,
            "dtype": args.dtype,
            "allow_nan": args.allow_nan,
        }
    if kind == "fields":
        _check_gridded(args.src)
    with claimed_output(output_path(args)):
        from forecast.data.importers import importer

        path = importer(kind)(args.src, output_path(args), **options, **common)
    print(f"wrote {path}")
    return 0


def _check_gridded(src: str) -> None:
    """One line for a source that is plainly not a gridded dataset (an image, a text file, an archive)."""
    from forecast.errors import ForecastError
    from forecast.filekind import describe

    found = describe(src)
    if "image" in found or "archive" in found or found in ("a text file", "an empty file", "a PDF document"):
        raise ForecastError(f"{src} is {found}; expected a gridded dataset (netCDF, zarr or HDF5)")
