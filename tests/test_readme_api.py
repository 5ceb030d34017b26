"""The Python API example (docs/guide/python-api.md) runs as written (at its toy sizes), and `import forecast` stays
light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "python-api.md"


def _api_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_import_forecast_is_light_and_exports_the_entry_points():
    code = (
        "import sys, forecast\n"
        "assert 'torch' not in sys.modules and 'lbmpy' not in sys.modules, 'heavy import'\n"
        "names = ['simulate_karman', 'open_field_store', 'Trainer', 'load_run', 'rollout_run',"
        " 'open_forecast', 'score_forecast', 'plot_files', 'load_config', 'config_names']\n"
        "assert set(names) <= set(dir(forecast))\n"
        "assert callable(forecast.open_field_store) and 'tiny' in forecast.config_names()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_api_page_has_an_example_that_names_every_entry_point():
    blocks = _api_blocks()
    assert blocks, "no ```python block in docs/guide/python-api.md"
    code = "\n".join(blocks)
    for name in (
        "simulate_karman",
        "open_field_store",
        "Trainer",
        "load_run",
        "rollout_run",
        "score_forecast",
    ):
        assert f"forecast.{name}(" in code, name


@pytest.mark.slow
def test_python_api_page_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in _api_blocks():
        exec(compile(block, str(PAGE), "exec"), {"__name__": "readme"})
    assert (tmp_path / "out/api/fc.nc").is_file() and (tmp_path / "out/api/scores.nc").is_file()
    assert any((tmp_path / "out/api/figures").glob("crps_lead_time_*.png"))
