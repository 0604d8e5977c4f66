"""`make lab`: JupyterLab in notebooks/ on 127.0.0.1, with the repo's kernel, which the notebooks name."""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from ecg_utils.paths import PROJ_ROOT
from tests.servers import free_port

KERNEL = "ecg-cnn-lstm"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.mark.parametrize("nb", sorted((PROJ_ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_name_the_repos_kernel(nb: Path):
    assert nbformat.read(nb, as_version=4).metadata.kernelspec.name == KERNEL


def test_make_lab_serves_the_notebooks_with_the_repos_kernel():
    if not (PROJ_ROOT / ".venv" / "bin" / "jupyter").exists():
        message = "no .venv with Jupyter: run `make setup`"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    port, token = free_port(), "test-token"
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_PORT={port}", f"LAB_TOKEN={token}"], cwd=PROJ_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}/api", time.monotonic() + 120
        while True:
            try:
                specs = _get(f"{base}/kernelspecs?token={token}")
                break
            except OSError:
                assert proc.poll() is None, f"make lab exited: {proc.stderr.read().decode()[-2000:]}"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(0.5)
        spec = specs["kernelspecs"][KERNEL]["spec"]
        assert spec["display_name"] == f"{KERNEL} (.venv)"
        assert Path(spec["argv"][0]).resolve() == (PROJ_ROOT / ".venv" / "bin" / "python").resolve()
        root = {item["name"] for item in _get(f"{base}/contents?token={token}")["content"]}
        assert {nb.name for nb in (PROJ_ROOT / "notebooks").glob("*.ipynb")} <= root
        with pytest.raises(urllib.error.HTTPError, match="403"):  # the token is required
            _get(f"{base}/contents")
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Stop make and the JupyterLab it started (one process group), however far it got."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
