"""The package's layout: subpackages import downward only, and no module imports itself back through others.

Layers, bottom to top: the shared helpers at the top level; `data`; `signal`; `model`; `classify` and
`streaming` (a record or a stream to classes); `archive` (many records), `evaluate` and `serve`, side by side; the
command lines `predict` and `bench`. Imports inside functions count too: a lazy import upward is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ecg_utils.paths import PROJ_ROOT

PACKAGE = PROJ_ROOT / "ecg_utils"
SHARED = {"errors", "paths", "atomic", "params", "metrics"}
LAYERS = {"shared": 0, "data": 1, "signal": 2, "model": 3, "classify": 4, "streaming": 4, "cluster": 4, "archive": 5,
          "evaluate": 5, "serve": 5, "predict": 6, "bench": 6}


def module_name(path: Path, root: Path = PROJ_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The layer unit of `ecg_utils.x.y`: its subpackage or top-level module (the shared helpers are one unit)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "shared"
    return "shared" if parts[1] in SHARED or parts[1] == "__init__" else parts[1]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; import ecg_utils modules by their full name")
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in modules)
    return found


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root.parent): p for p in root.rglob("*.py")}
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def upward(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in g.items():
        for target in targets:
            a, b = unit(source), unit(target)
            if a == "shared" and b == "shared" or a == b:
                continue
            if LAYERS[b] >= LAYERS[a]:
                bad.append(f"{source} -> {target} ({a} may not import {b})")
    return sorted(bad)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as found by depth-first search (one path per back edge)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    return found


def test_every_module_belongs_to_a_layer():
    assert {unit(m) for m in graph()} <= set(LAYERS)


def test_subpackages_import_downward_only():
    assert upward(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    pkg = tmp_path / "ecg_utils"
    for sub in ("data", "signal"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "records.py").write_text("def f():\n    from ecg_utils.signal.filters import g\n")
    (pkg / "signal" / "filters.py").write_text("from ecg_utils.data.records import f\n")
    g = graph(pkg)
    assert upward(g) == ["ecg_utils.data.records -> ecg_utils.signal.filters (data may not import signal)"]
    assert cycles(g) == [["ecg_utils.data.records", "ecg_utils.signal.filters", "ecg_utils.data.records"]]
    (pkg / "data" / "aami.py").write_text("from .records import f\n")
    with pytest.raises(AssertionError, match="relative import"):
        graph(pkg)


def test_each_subpackage_says_its_job():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, f"{init} needs a docstring that says its job"
