"""MkDocs hooks of the documentation site (mkdocs.yml, ``hooks:``).

- Every page of ``docs/guide/`` and ``docs/results/`` is in the nav: pages that mkdocs.yml's nav does not name are
  appended to the section that holds their folder's other pages, so a page added by a new feature is never
  orphaned (titles come from the page's first heading).
- ``<!-- api-entry-points -->`` in a page becomes one mkdocstrings block per entry point of ``forecast``'s public
  API (``forecast._API``, read from the source without importing the package), so an entry point added there
  is documented without editing the page.
- Sphinx roles left in docstrings (``:func:`name```) are dropped from the rendered pages, leaving the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

AUTO_NAV_FOLDERS = ("guide", "results")
API_MARKER = "<!-- api-entry-points -->"


def _nav_files(nav: Any) -> set[str]:
    """Every file a nav (mkdocs.yml's list of str / {title: str | list}) names."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_nav_files(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(_nav_files(value) for value in nav.values()))
    return set()


def _section_of(nav: list, folder: str) -> list | None:
    """The nav list that names a page of ``folder/`` directly (the first one found, depth first)."""
    for item in nav:
        children = next(iter(item.values())) if isinstance(item, dict) else None
        if isinstance(children, list):
            direct = {
                f
                for child in children
                if not isinstance(child, list)
                for f in _nav_files(child)
                if not isinstance(child, dict) or not isinstance(next(iter(child.values())), list)
            }
            if any(f.startswith(folder + "/") for f in direct):
                return children
            found = _section_of(children, folder)
            if found is not None:
                return found
    return None


def add_unlisted_pages(nav: list, docs_dir: Path) -> list[str]:
    """Append the pages of AUTO_NAV_FOLDERS that ``nav`` does not name to their folder's section; returns them."""
    listed = _nav_files(nav)
    added = []
    for folder in AUTO_NAV_FOLDERS:
        section = _section_of(nav, folder)
        for page in sorted((docs_dir / folder).glob("*.md")):
            name = f"{folder}/{page.name}"
            if name not in listed:
                if section is None:
                    section = []
                    nav.append({folder.capitalize(): section})
                section.append(name)
                added.append(name)
    return added


def _module_dict(root: Path, module: str, name: str) -> dict | None:
    """The literal dict ``name`` assigned at the top of ``module``'s source (None where there is none)."""
    path = root.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def api_entry_points(root: Path) -> dict[str, str]:
    """``forecast._API`` as name -> the dotted path of the object that defines it, read from the source
    (without importing anything); a package's lazily imported names (its ``_LAZY`` table) are followed."""
    table = _module_dict(root, "forecast", "_API")
    if table is None:
        raise RuntimeError("forecast/__init__.py has no _API table")
    paths = {}
    for name, (module, attribute) in table.items():
        lazy = _module_dict(root, module, "_LAZY") or {}
        paths[name] = f"{lazy.get(attribute, module)}.{attribute}"
    return paths


def on_config(config: Any) -> Any:
    if config["nav"] is not None:
        add_unlisted_pages(config["nav"], Path(config["docs_dir"]))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if API_MARKER not in markdown:
        return markdown
    root = Path(config["config_file_path"]).parent
    blocks = []
    for name, path in api_entry_points(root).items():
        blocks.append(
            f"## `forecast.{name}`\n\n`{path}`\n\n::: {path}\n    options:\n      show_root_heading: false\n"
            "      heading_level: 3\n"
        )
    return markdown.replace(API_MARKER, "\n".join(blocks))


# Sphinx roles in docstrings (":func:`name`") read as plain code on the site.
_SPHINX_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _SPHINX_ROLE.sub("", html)
