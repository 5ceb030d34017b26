"""The architecture's floors, checked on the source: what may import what.

- File formats, producers and models sit below ``forecast.metrics``: no module outside the scoring package and
  the layers above it (plots, pipeline, demo, CLI) imports it.
- ``forecast.training`` has no import cycle among its modules.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forecast"

#: the layers allowed to use the scoring package: itself and what is built on top of it
ABOVE_METRICS = (
    "metrics", "plots", "cli", "pipeline.py", "demo.py", "__init__.py", "__main__.py",
    # fitting a spread calibration scores forecasts (lazily, inside the fit); applying one, as rollouts do, does not
    "spread_calibration.py",
)  # fmt: skip


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")  # relative: resolve against the module's package
    return ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _names(node: ast.AST, package: str) -> set[str]:
    """The modules one import statement loads: ``from p import m`` names ``p.m`` where m is a module, else p."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    module = _resolve(node, package)
    inner = {f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}")}
    return inner | ({module} if len(inner) < len(node.names) else set())


def imported_modules(path: Path, package: str, at_import_time: bool = False) -> set[str]:
    """Every module ``path`` imports; lazy imports (inside functions) too, unless ``at_import_time``, which
    keeps what runs when the module is imported (module level, less ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if not at_import_time:
        return {
            n
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for n in _names(node, package)
        }
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= _names(node, package)
        elif isinstance(node, ast.If) and not (
            isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        ):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def below_metrics() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] not in ABOVE_METRICS]


def test_the_scan_finds_imports(tmp_path):
    """The checker itself: it sees plain, from, lazy and `from forecast import metrics` imports."""
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom typing import TYPE_CHECKING\nfrom forecast import metrics\n"
        "if TYPE_CHECKING:\n    from forecast.training import trainer\n"
        "def f():\n    from forecast.metrics.truth import open_truth\n    import forecast.metrics.crps\n"
    )
    found = imported_modules(source, "forecast")
    assert {
        "forecast.metrics",
        "forecast.metrics.truth",
        "forecast.metrics.crps",
        "forecast.training.trainer",
    } <= found
    assert imported_modules(source, "forecast", at_import_time=True) == {"os", "typing", "forecast.metrics"}


def test_no_module_below_the_metrics_package_imports_it():
    files = below_metrics()
    names = {p.relative_to(PACKAGE).as_posix() for p in files}
    # the file modules the rule is about are in the scan
    assert {"rollout.py", "filekind.py", "forecast_file.py", "field_store.py", "scores_file.py"} <= names
    offenders = {
        p.relative_to(ROOT).as_posix(): sorted(
            m
            for m in imported_modules(p, _package_of(p))
            if m == "forecast.metrics" or m.startswith("forecast.metrics.")
        )
        for p in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _training_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (PACKAGE / "training").glob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = imported_modules(path, _package_of(path), at_import_time=True)
        graph[name] = {m for m in modules if m != name and m in imported}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_training_package_has_no_import_cycle():
    graph = _training_graph()
    assert {"forecast.training.trainer", "forecast.training.modes", "forecast.training.adversarial"} <= set(
        graph
    )
    # the package's __init__ re-exports its modules: it may import them, they never import it back
    init = "forecast.training"
    assert not [m for m, deps in graph.items() if init in deps and m != init]
    assert _cycle({m: deps - {init} for m, deps in graph.items()}) is None


def test_one_registry_of_model_kinds():
    import importlib

    from forecast.configs import config_names
    from forecast.errors import ForecastError
    from forecast.models import build_model
    from forecast.models.config import KINDS
    from forecast.models.kinds import BASELINE_KINDS, DIFFUSION_KINDS, MODEL_KINDS
    from forecast.training.config import load_config

    assert KINDS is DIFFUSION_KINDS and set(DIFFUSION_KINDS) | set(BASELINE_KINDS) == set(MODEL_KINDS)
    for kind, entry in MODEL_KINDS.items():  # every entry names a class (and options) that exist
        module = importlib.import_module(f"forecast.models.{entry.module}")
        assert isinstance(getattr(module, entry.cls), type), kind
        assert entry.options is None or isinstance(getattr(module, entry.options), type), kind
    shipped = {load_config(name)["model"]["kind"] for name in config_names()}
    assert shipped <= set(MODEL_KINDS)
    try:
        build_model({"model": {"kind": "no_such_model"}}, 3)
    except ForecastError as exc:
        assert all(kind in str(exc) for kind in MODEL_KINDS)
    else:
        raise AssertionError("an unknown kind was accepted")
