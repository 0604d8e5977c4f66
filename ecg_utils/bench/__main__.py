"""`python -m ecg_utils.bench`: every benchmark, or one part (`--only`).

Each part prints its figures beside their targets and stores them in reports/bench.json (the parts run, with the
date and the machine's cores; other parts' figures are kept), from which docs/benchmarks.md's tables are generated
(`python -m ecg_utils.evaluate.report`). The scale-out part writes reports/bench_scale.json itself.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from collections.abc import Callable
from typing import Any

from ecg_utils.atomic import write_json
from ecg_utils.bench.data import print_data
from ecg_utils.bench.detector import print_detector
from ecg_utils.bench.inference import print_inference
from ecg_utils.bench.long_record import print_long_record
from ecg_utils.bench.models import print_models
from ecg_utils.bench.scale import print_scale
from ecg_utils.paths import REPORTS_DIR

BENCH_REPORT = REPORTS_DIR / "bench.json"


def _service() -> dict[str, Any]:
    from ecg_utils.serve.loadtest import print_service

    return print_service()


def save(figures: dict[str, Any], path=BENCH_REPORT) -> None:
    """Merge the parts just measured into the report, each with when and on how many cores it ran."""
    report = json.loads(path.read_text()) if path.is_file() else {}
    stamp = {"measured": datetime.date.today().isoformat(), "cores": os.cpu_count()}
    report.update({part: {**stamp, **values} for part, values in figures.items()})
    write_json(path, report)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the project's benchmark figures.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is printed")
    parser.add_argument("--only", choices=["data", "models", "detector", "inference", "long", "service", "scale"],
                        help="run one part only")
    args = parser.parse_args()
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "data": lambda: print_data(args.repeat), "models": print_models, "detector": print_detector,
        "inference": print_inference, "long": print_long_record, "service": _service}
    figures = {}
    for name, run in parts.items():
        if args.only in (None, name):
            figures[name] = run()
            save({name: figures[name]})  # a part at a time: an interrupted run keeps what it measured
    if figures:
        print(f"written to {BENCH_REPORT} (docs/benchmarks.md's tables: python -m ecg_utils.evaluate.report)")
    if args.only in (None, "scale"):
        print_scale()


if __name__ == "__main__":
    main()
