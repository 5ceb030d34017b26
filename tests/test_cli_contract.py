"""The CLI's shared contract: shipped configs by name, files of the wrong kind, one line per bad input."""

from __future__ import annotations

import pytest
import yaml

from forecast.cli import main
from forecast.configs import CONFIG_DIR, config_names
from forecast.errors import ForecastError
from forecast.training import load_config

# the smallest valid PNG header: enough for anything that sniffs the magic bytes
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr containing every needle."""
    assert main(argv) == 2
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
    with pytest.raises(ForecastError, match="shipped: .*tiny"):
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
