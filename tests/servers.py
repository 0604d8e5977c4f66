"""Start the service and the app as real servers on free loopback ports, and always stop them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from unittest import mock

import httpx

from ecg_utils.paths import PROJ_ROOT
from ecg_utils.serve.launch import app_command
from ecg_utils.serve.loadtest import free_port


def _wait(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def run(cmd: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(cmd, cwd=PROJ_ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait(url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def api_server(env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with run([sys.executable, "-m", "ecg_utils.serve.service", "--port", str(port)], url + "/v1/health", env):
        yield url


@contextlib.contextmanager
def app_server(api_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"ECG_API_URL": api_url, **(env or {})}
    with mock.patch.dict(os.environ, env):
        cmd = app_command(port)  # reads ECG_MAX_UPLOAD_MB as the app's own process will
    with run(cmd, url + "/_stcore/health", env):
        yield url
