"""The CLI's shared contract: shipped configs by name, files of the wrong kind, one line per bad input."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import xarray as xr
import yaml
from training_helpers import karman_like_store

from forecast.cli import build_parser, main
from forecast.configs import CONFIG_DIR, config_names
from forecast.data.channels import ChannelLayout
from forecast.data.windows import WindowDataset
from forecast.errors import ForecastError
from forecast.field_store import open_field_store
from forecast.metrics.synthetic import synthetic_forecast
from forecast.training import load_config

# the smallest valid PNG header: enough for anything that sniffs the magic bytes
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr containing every needle."""
    try:
        status = main(argv)
    except SystemExit as exc:  # a usage error found by argparse
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_shipped_configs_are_in_the_package_and_nameable():
    assert {"tiny", "demo", "paper_64", "paper_128"} <= set(config_names())
    on_disk = yaml.safe_load((CONFIG_DIR / "tiny.yaml").read_text())
    assert load_config("tiny") == on_disk == load_config("tiny.yaml")
    assert load_config(CONFIG_DIR / "paper_64.yaml") == load_config("paper_64")


def test_a_local_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text("model: {kind: persistence}\n")
    assert load_config("tiny.yaml") == {"model": {"kind": "persistence"}}


def test_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ForecastError, match="cannot read config.*shipped: .*tiny"):
        load_config("no_such_config")


def test_png_as_config_is_one_line(tmp_path, capsys):
    png = tmp_path / "figure.png"
    png.write_bytes(PNG)
    one_line_error(
        capsys,
        ["train", str(tmp_path / "k.zarr"), "--config", str(png), "--out", str(tmp_path / "run")],
        "PNG image",
        "expected a YAML config",
    )
    assert not (tmp_path / "run").exists()


def _damage(store, variable: str, group: str = "train") -> int:
    """Overwrite the middle of every chunk file of ``variable``: the codec can no longer decode them."""
    files = [
        p
        for p in (store / group / variable).rglob("*")
        if p.is_file() and not p.name.startswith((".", "zarr"))
    ]
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[:8] + b"\xff" * 16 + data[24:])
    return len(files)


def test_damaged_store_in_train_is_one_line_naming_store_and_variable(tmp_path, capsys):
    store = tmp_path / "k.zarr"
    karman_like_store(store, n_seq=2, n_time=12, ny=32, nx=32)
    assert _damage(store, "v") > 0
    one_line_error(
        capsys,
        ["train", str(store), "--config", "tiny", "--out", str(tmp_path / "run"), "--steps", "1", "--quiet"],
        "cannot read variable 'v'",
        str(store),
    )


def test_damaged_chunk_read_by_a_window_names_store_and_variable(tmp_path):
    store = tmp_path / "k.zarr"
    karman_like_store(store, n_seq=2, n_time=12)
    layout = ChannelLayout.from_dataset(open_field_store(store), ["u", "vorticity"])
    windows = WindowDataset(store, layout, 3)
    windows[0]  # readable before the damage
    _damage(store, "vorticity")
    with pytest.raises(ForecastError, match=f"cannot read variable 'vorticity' of the store {store}"):
        windows[1]


# ---------------------------------------------------------------------------------------------- one CLI
def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every leaf sub-command of ``parser``: (words, its parser)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, child in subs[0].choices.items():
        yield from _commands(child, (*prefix, name))


COMMANDS = list(_commands(build_parser()))


def _options(parser):
    return {s for a in parser._actions for s in a.option_strings}


def test_every_command_is_found():
    found = {" ".join(words) for words, _ in COMMANDS}
    assert {"simulate karman", "train", "rollout", "score", "plot", "demo", "data import fields"} <= found


@pytest.mark.parametrize("words,parser", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_has_the_shared_flags_and_shows_its_defaults(words, parser):
    options = _options(parser)
    assert {"--quiet", "--no-progress", "--out", "--overwrite"} <= options, words
    formatter = parser._get_formatter()
    assert "default" in parser.format_help()
    for action in parser._actions:
        if action.option_strings and not (action.default is None or action.default is False):
            if not isinstance(action, argparse._HelpAction):
                assert "default" in formatter._get_help_string(action) % {"default": action.default}, (
                    action.dest
                )


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["score", "fc.nc", "--out", "s.nc", "--chunk-init", "0"], "--chunk-init"),
        (["rollout", "run", "d.zarr", "--out", "f.nc", "--members", "0"], "--members"),
        (["rollout", "run", "d.zarr", "--out", "f.nc", "--horizon", "-2"], "--horizon"),
        (["rollout", "run", "d.zarr", "--out", "f.nc", "--batch-size", "0"], "--batch-size"),
        (["simulate", "karman", "x.zarr", "--frames", "0"], "--frames"),
        (["simulate", "karman", "x.zarr", "--reynolds", "100", "-5"], "--reynolds"),
        (["train", "s.zarr", "--config", "tiny", "--out", "r", "--steps", "-1"], "--steps"),
        (["demo", "d", "--members", "0"], "--members"),
        (["plot", "f.nc", "--out", "d", "--dpi", "0"], "--dpi"),
        (["data", "import", "smmnist", "builtin", "o.zarr", "--digits", "0"], "--digits"),
        (["data", "import", "fields", "src.nc", "o.zarr", "--test-fraction", "1.5"], "--test-fraction"),
    ],
)
def test_numeric_options_are_checked_in_one_line(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, argv, needle)
    assert not any(tmp_path.iterdir())  # nothing written, no folder created


def _forecast_file(path):
    synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=5).to_netcdf(path)
    return path


def test_files_of_the_wrong_kind_get_one_line(tmp_path, capsys):
    png = tmp_path / "figure.png"
    png.write_bytes(PNG)
    fc = _forecast_file(tmp_path / "fc.nc")
    scores = tmp_path / "scores.nc"
    assert main(["score", str(fc), "--out", str(scores), "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "new" / "s.nc"
    one_line_error(capsys, ["score", str(png), "--out", str(out)], "PNG image", "expected a forecast file")
    one_line_error(
        capsys, ["score", str(scores), "--out", str(out)], "is a scores file", "expected a forecast file"
    )
    one_line_error(
        capsys, ["score", str(fc), "--out", str(out), "--reference", str(png)], "--reference", "PNG"
    )
    one_line_error(capsys, ["plot", str(png), "--out", str(tmp_path / "figs")], "PNG image", "scores file")
    one_line_error(
        capsys,
        ["data", "import", "fields", str(png), str(tmp_path / "new" / "o.zarr")],
        "PNG image",
        "gridded",
    )
    store = tmp_path / "k.zarr"
    karman_like_store(store, n_seq=1, n_time=6)
    one_line_error(
        capsys,
        ["rollout", str(store), str(fc), "--out", str(out)],
        "is a zarr store",
        "expected a run directory",
    )
    # output folders are created only once the inputs have been checked
    assert not (tmp_path / "new").exists() and not (tmp_path / "figs").exists()


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, capsys):
    fc = _forecast_file(tmp_path / "fc.nc")
    out = tmp_path / "s.nc"
    out.write_text("old")
    one_line_error(capsys, ["score", str(fc), "--out", str(out), "--quiet"], f"{out} exists", "--overwrite")
    assert out.read_text() == "old"
    assert main(["score", str(fc), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert xr.open_dataset(out).attrs["ensemble_size"] == 3
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "keep.txt").write_text("x")
    one_line_error(capsys, ["plot", str(out), "--out", str(figs)], f"{figs} exists")
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "notes.txt").write_text("mine")
    one_line_error(capsys, ["demo", str(demo)], "--resume")
    one_line_error(capsys, ["demo", "--out", str(demo), "--overwrite"], "does not look like a demo folder")
    assert (demo / "notes.txt").read_text() == "mine"


def test_output_given_positionally_or_with_out(tmp_path, capsys):
    one_line_error(
        capsys, ["demo", str(tmp_path / "a"), "--out", str(tmp_path / "b")], "two different outputs"
    )
    one_line_error(capsys, ["demo"], "no output given")


def test_the_command_line_is_light_until_a_command_runs():
    """`forecast --help` must not pay for torch, lbmpy, dask or xarray (seconds each on a busy machine)."""
    code = (
        "import sys\n"
        "from forecast.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'lbmpy', 'dask', 'xarray', 'numba') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
