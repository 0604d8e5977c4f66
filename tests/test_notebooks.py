"""Notebook hygiene: committed clean, parameters tagged near the top, params files that match."""

import ast
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from ecg_utils.paths import PROJ_ROOT

NOTEBOOKS = sorted((PROJ_ROOT / "notebooks").glob("*.ipynb"))


def _makefile_notebooks() -> list[str]:
    """The notebooks `make reproduce` runs, in order: NOTEBOOKS, then AFTER_PUBLISH."""
    lists = {}
    for line in (PROJ_ROOT / "Makefile").read_text().splitlines():
        for name in ("NOTEBOOKS", "AFTER_PUBLISH"):
            if line.startswith(f"{name} :="):
                lists[name] = line.split(":=")[1].split()
    assert set(lists) == {"NOTEBOOKS", "AFTER_PUBLISH"}, "Makefile needs NOTEBOOKS := and AFTER_PUBLISH := lines"
    return lists["NOTEBOOKS"] + lists["AFTER_PUBLISH"]


def test_makefile_runs_every_notebook_in_order():
    assert _makefile_notebooks() == [nb.stem for nb in NOTEBOOKS]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(nb: Path):
    ids = [c.get("id") for c in json.loads(nb.read_text())["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), "every cell needs its own id (nbformat.validator.normalize)"
    cells = nbformat.read(nb, as_version=4).cells
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "strip outputs before committing"
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert tagged == [1], "the parameters cell is the second code cell, right after the imports"
    for c in code:
        tree = ast.parse(c["source"])
        assert not any(isinstance(n, (ast.ClassDef, ast.FunctionDef)) for n in ast.walk(tree)), \
            "classes and functions belong in ecg_utils"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_params_file_names_only_existing_parameters(nb: Path):
    code = [c for c in nbformat.read(nb, as_version=4).cells if c["cell_type"] == "code"]
    tree = ast.parse(code[1]["source"])
    names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    assert all(name.isupper() for name in names)
    # papermill reads one '=' per line; a second one (in a comment) hides the parameter from it
    assert all(line.count("=") <= 1 for line in code[1]["source"].splitlines()), "no '=' in parameter comments"
    params = yaml.safe_load((PROJ_ROOT / "params" / f"{nb.stem}.yaml").read_text())
    assert set(params) <= names, f"params/{nb.stem}.yaml sets unknown parameters {set(params) - names}"
