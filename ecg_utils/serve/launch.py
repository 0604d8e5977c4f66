"""Start the Streamlit app as users should see it: `python -m ecg_utils.serve.launch [--port 8501]`.

Two settings cannot be made from inside a Streamlit script, so they are made here, for `make serve` and the tests
alike: the uploader takes what the service takes (ECG_MAX_UPLOAD_MB, not Streamlit's own 200 MB), and the page is
in viewer mode (no developer toolbar and no "Deploy" button).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ecg_utils.serve.uploads import max_upload_mb

APP = Path(__file__).with_name("app.py")


def app_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves the app on host:port."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(math.ceil(max_upload_mb())), "--client.toolbarMode", "viewer"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    try:
        cmd = app_command(args.port, args.host)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.execv(cmd[0], cmd)
    return 0  # not reached: the process is now Streamlit's


if __name__ == "__main__":
    sys.exit(main())
