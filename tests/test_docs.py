"""The documentation site (mkdocs.yml, docs/): every page in the nav, formats stated with a link to the contract,
every public entry point documented, and (slow) the whole site built in strict mode."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_site_hooks", DOCS / "_hooks" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _generated(page: str) -> bool:
    """Pages the config keeps out of the nav on purpose (tables written by the experiments, linked to)."""
    return page.startswith(("results/calibration/", "results/kolmogorov/"))


def test_every_page_is_in_the_nav_and_every_nav_entry_exists(tmp_path):
    hooks = _hooks()
    nav = _config()["nav"]
    added = hooks.add_unlisted_pages(nav, DOCS)
    listed = hooks._nav_files(nav)
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_hooks" not in p.parts}
    orphans = sorted(p for p in pages - listed if not _generated(p))
    assert not orphans, f"pages in no nav section: {orphans}"
    assert not sorted(listed - pages), f"nav entries without a page: {sorted(listed - pages)}"
    assert all(page.split("/")[0] in hooks.AUTO_NAV_FOLDERS for page in added)


def test_the_hook_puts_a_new_guide_or_results_page_in_its_section(tmp_path):
    hooks = _hooks()
    for folder in ("guide", "results"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "listed.md").write_text("# Listed\n")
        (tmp_path / folder / "new_topic.md").write_text("# New\n")
    nav = [
        {"Home": "index.md"},
        {"Guide": ["guide/listed.md"]},
        {"Deep": [{"Results": ["results/listed.md"]}]},
    ]
    assert hooks.add_unlisted_pages(nav, tmp_path) == ["guide/new_topic.md", "results/new_topic.md"]
    assert nav[1]["Guide"] == ["guide/listed.md", "guide/new_topic.md"]
    assert nav[2]["Deep"][0]["Results"] == ["results/listed.md", "results/new_topic.md"]


def test_every_entry_point_of_the_api_is_on_the_reference_page():
    import ast

    import forecast

    hooks = _hooks()
    paths = hooks.api_entry_points(ROOT)
    assert set(paths) == set(forecast._API)
    for name, path in paths.items():  # the dotted path names a module that defines or re-exports it
        module, attribute = path.rsplit(".", 1)
        source = ROOT.joinpath(*module.split("."))
        source = source / "__init__.py" if source.is_dir() else source.with_suffix(".py")
        defined = set()
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(getattr(target, "id", None) for target in node.targets)
            elif isinstance(node, ast.ImportFrom):  # a re-export, which mkdocstrings follows
                defined.update(alias.asname or alias.name for alias in node.names)
        assert attribute in defined, f"forecast.{name}: {path} is not defined in {source}"
    assert hooks.API_MARKER in (DOCS / "reference" / "index.md").read_text()


# A page that states one of these formats links to the contract instead of restating it unlinked.
FORMAT_TERMS = re.compile(r"\b(field store|forecast file|scores file|run directory|truth group)\b", re.I)


def test_every_page_that_states_a_format_links_to_the_contract():
    unlinked = []
    for page in sorted(DOCS.rglob("*.md")):
        relative = page.relative_to(DOCS)
        if relative.name == "formats.md" or _generated(str(relative)) or "_hooks" in relative.parts:
            continue
        text = page.read_text()
        if FORMAT_TERMS.search(text) and not re.search(r"\]\((\.\./)*formats\.md(#[^)]*)?\)", text):
            unlinked.append(str(relative))
    assert not unlinked, f"pages that state a format without linking to formats.md: {unlinked}"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "the README links into the documentation"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    # without a network where the machine lets us take it away: the build must not fetch anything
    offline = (
        shutil.which("unshare")
        and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
    )
    result = subprocess.run(
        ["unshare", "-rn", *command] if offline else command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    import forecast

    for name in forecast._API:
        assert f"forecast.{name}" in reference, name
    assert (tmp_path / "site" / "results" / "calibration" / "truth_scores_vorticity.png").is_file()
    assert (tmp_path / "site" / "formats" / "index.html").is_file()


def _python_blocks(page: str, section: str = "") -> list[str]:
    """The ```python blocks of a page (of its section ``section``, a heading line, where given)."""
    text = (DOCS / page).read_text()
    if section:
        text = text.split(section + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_the_known_answer_example_scores_a_model_of_your_own(tmp_path, monkeypatch):
    """docs/guide/known-answer.md's example runs as written, on the store its text says how to make, and its
    file is one that `forecast score --truth` accepts."""
    from forecast.cli import main

    monkeypatch.chdir(tmp_path)
    command = "data import smmnist builtin s.zarr --train-sequences 4 --test-sequences 4 --truth-members 4"
    assert main([*command.split(), "--truth-inits", "2", "--truth-horizon", "4", "--quiet"]) in (0, None)
    (block,) = _python_blocks("guide/known-answer.md", "## Your own model")
    exec(compile(block, "known-answer.md", "exec"), {"__name__": "docs"})
    assert main(["score", "my_model.nc", "--out", "scores.nc", "--fair", "--truth", "s.zarr", "--quiet"]) in (
        0,
        None,
    )
    scores = xr.open_dataset("scores.nc")
    ratio = scores["crps_oracle_ratio_frames"].values
    assert (
        ratio.shape == (4,) and np.isnan(ratio[0]) and np.all(ratio[1:] > 1)
    )  # a noisy copy is worse than the truth


def test_the_test_command_is_the_same_in_the_readme_ci_and_the_site():
    """CI runs the README's test command verbatim; the pages that show it show the same command."""
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^(pip install torch.*&& pytest\b.*)$", readme, flags=re.M)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines, "the README's test command is not a line of .ci/run"
    for page in ("getting-started.md", "contributing.md"):
        shown = re.findall(r"^(pip install torch.*&& pytest\b.*)$", (DOCS / page).read_text(), flags=re.M)
        assert shown == [command], f"docs/{page} shows another test command: {shown}"
