"""The light install for inference (`pip install ".[inference]"`, `make setup-inference`): its pins are
requirements.txt's, and in a fresh environment of it `predict` classifies a record as the full environment does,
without PyTorch."""

import re
import subprocess
import sys
import tomllib

import pytest

from ecg_utils.paths import PROJ_ROOT


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s#;]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_inference_pins_are_the_full_environments():
    extra = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["inference"]
    light, full = _pins(extra), _pins((PROJ_ROOT / "requirements.txt").read_text().splitlines())
    assert len(light) == len(extra) and {"onnxruntime", "wfdb", "edfio", "fastapi"} <= set(light)
    assert {k: full.get(k) for k in light} == light
    assert not {"torch", "jupyter", "playwright", "pytest"} & set(light)


@pytest.mark.integration
def test_a_fresh_inference_environment_classifies_a_record(mitdb_dir, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    install = subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              f"{PROJ_ROOT}[inference]"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    light = subprocess.run([py, "-m", "ecg_utils.predict", str(mitdb_dir / "100"), "--out", "light.csv"],
                           capture_output=True, text=True, cwd=tmp_path, check=False)
    assert light.returncode == 0, light.stderr[-3000:]
    full = subprocess.run([sys.executable, "-m", "ecg_utils.predict", str(mitdb_dir / "100"), "--out", "full.csv"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert full.returncode == 0, full.stderr[-3000:]
    assert (tmp_path / "light.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()
    probe = ("import importlib.util, sys; import ecg_utils.serve.service, ecg_utils.streaming; "
             "print([m for m in ('torch', 'sklearn', 'jupyter', 'playwright') if importlib.util.find_spec(m)])")
    found = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stderr[-3000:]
