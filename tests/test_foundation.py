"""The shared plumbing: atomic outputs, field-store checks, the CLI's error contract."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forecast.atomic import atomic_output
from forecast.cli import main
from forecast.errors import ForecastError
from forecast.field_store import mark_complete, open_field_store


def test_atomic_output_file_appears_only_on_success(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_output(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_output(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole"


def test_atomic_output_replaces_a_directory_only_when_complete(tmp_path):
    final = tmp_path / "figs"
    final.mkdir()
    (final / "old.png").write_text("old")
    with atomic_output(final) as tmp:
        tmp.mkdir()
        (tmp / "new.png").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["figs"]


def _write_store(path, complete=True, dims=("sequence", "time", "y", "x")):
    data = np.zeros((2, 3, 4, 5), dtype="float32")
    ds = xr.Dataset({"u": (dims, data)})
    ds.to_zarr(path, group="train", mode="w")
    ds.to_zarr(path, group="test", mode="a")
    mark_complete(path, complete)


def test_open_field_store_reads_a_complete_store_lazily(tmp_path):
    _write_store(tmp_path / "s.zarr")
    ds = open_field_store(tmp_path / "s.zarr", "test")
    assert ds["u"].dims == ("sequence", "time", "y", "x")
    assert ds["u"].chunks is not None  # dask-backed, nothing read yet


def test_open_field_store_refuses_incomplete_missing_and_malformed(tmp_path):
    with pytest.raises(ForecastError, match="no field store"):
        open_field_store(tmp_path / "missing.zarr")
    _write_store(tmp_path / "half.zarr", complete=False)
    with pytest.raises(ForecastError, match="incomplete"):
        open_field_store(tmp_path / "half.zarr")
    _write_store(tmp_path / "bad.zarr", dims=("sequence", "t", "y", "x"))
    with pytest.raises(ForecastError, match="expected"):
        open_field_store(tmp_path / "bad.zarr")


def test_cli_version_and_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "forecast" in capsys.readouterr().out


def test_architecture_page_lists_every_module():
    """The architecture page's module table (docs/architecture.md, "Module by module") names every module of
    forecast/ and simulators/, no more."""
    import re

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "architecture.md").read_text()
    layout = page[page.index("## Module by module\n") :].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `((?:forecast|simulators)/[^`]*)` \|", layout, flags=re.MULTILINE))
    modules = {
        f"{p.parent.relative_to(root)}/" if p.name == "__init__.py" else str(p.relative_to(root))
        for package in ("forecast", "simulators")
        for p in (root / package).rglob("*.py")
        if p.name != "__main__.py"
    }
    assert listed == modules, (
        f"missing from docs/architecture.md: {sorted(modules - listed)}; gone: {sorted(listed - modules)}"
    )
