"""`forecast data import KIND SRC OUT.zarr`: natural-video datasets and gridded fields -> field stores."""

from __future__ import annotations

import argparse

from forecast.data.importers import importer
from forecast.data.importers.fields import parse_mapping


def _common(parser: argparse.ArgumentParser, length: int | None, size: int | None = None) -> None:
    parser.add_argument("src", help="the source (folder or file)")
    parser.add_argument("out", help="the field store to write (zarr)")
    if size is not None:
        parser.add_argument("--size", type=int, default=size, help=f"frame size in pixels (default {size})")
    parser.add_argument(
        "--length",
        type=int,
        default=length,
        help="frames per stored sequence" + (f" (default {length})" if length else ""),
    )
    parser.add_argument("--resume", action="store_true", help="finish an interrupted import of OUT")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="import datasets into field stores")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", help="import a dataset: forecast data import KIND SRC OUT.zarr")
    kinds = imp.add_subparsers(dest="kind", metavar="KIND", required=True)

    kth = kinds.add_parser("kth", help="KTH Actions AVI clips (persons 1-16 train, 17-25 test)")
    _common(kth, length=20, size=64)
    kth.add_argument(
        "--crop", action="store_true", help="keep the aspect ratio (centre crop) instead of squashing"
    )

    bair = kinds.add_parser("bair", help="BAIR robot pushing tfrecords (softmotion30_44k)")
    _common(bair, length=30)
    bair.add_argument("--image", choices=("aux1", "main"), default="aux1", help="camera (default aux1)")
    bair.add_argument("--no-verify", action="store_true", help="skip the records' CRC checks")

    city = kinds.add_parser(
        "cityscapes", help="Cityscapes leftImg8bit_sequence (train -> train, val -> test)"
    )
    _common(city, length=30, size=128)

    sm = kinds.add_parser("smmnist", help="stochastic moving MNIST; SRC is an MNIST file/folder or 'builtin'")
    _common(sm, length=30, size=64)
    sm.add_argument("--train-sequences", type=int, default=1000)
    sm.add_argument("--test-sequences", type=int, default=100)
    sm.add_argument("--digits", type=int, default=2, help="digits per frame (default 2)")
    sm.add_argument("--digit-size", type=int, default=32)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument(
        "--truth-members",
        type=int,
        default=0,
        metavar="K",
        help="truth group: K futures per start with their own bounces (default 0: none)",
    )
    sm.add_argument("--truth-inits", type=int, default=8, metavar="N", help="truth starts (default 8)")
    sm.add_argument(
        "--truth-horizon", type=int, default=16, metavar="H", help="frames per future (default 16)"
    )
    sm.add_argument(
        "--truth-context", type=int, default=4, metavar="C", help="frames kept before each start (default 4)"
    )

    fields = kinds.add_parser("fields", help="any gridded dataset xarray opens (netCDF, zarr, HDF5)")
    _common(fields, length=None)
    fields.add_argument("--variables", help="comma-separated variables (default: all with the mapped dims)")
    fields.add_argument("--dims", help="dimension map, e.g. sequence=sample,time=t,y=lat,x=lon")
    fields.add_argument("--rename", help="variable renames, e.g. Vx=u,Vy=v")
    fields.add_argument(
        "--split",
        choices=("sequence", "time"),
        default="sequence",
        help="test = the last sequences (default) or the last frames of every sequence",
    )
    fields.add_argument("--test-fraction", type=float, default=0.2)
    fields.add_argument("--engine", help="xarray backend (netcdf4, h5netcdf, zarr, ...; default: guessed)")
    fields.add_argument("--group", help="group inside the source file")
    fields.add_argument("--dtype", default="float32", help="stored dtype of floating variables")
    fields.add_argument("--allow-nan", action="store_true", help="keep NaNs instead of refusing them")
    imp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    common = {"resume": args.resume, "overwrite": args.overwrite, "progress": not args.no_progress}
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
            "sequences": {"train": args.train_sequences, "test": args.test_sequences},
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
    path = importer(kind)(args.src, args.out, **options, **common)
    print(f"wrote {path}")
    return 0
