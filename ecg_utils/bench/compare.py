"""`python -m ecg_utils.bench.compare BEFORE.onnx AFTER.onnx`: two exported models timed side by side.

A change to the model is measured before and after on the same machine: timings on a shared machine drift by up to
a third from one hour to the next, so each figure is taken for both models in turn (fresh process each, one
thread), `--rounds` times, and every round is printed and stored. The figures are the `make bench` ones that depend
on the model: a 24-hour record through `predict` (in each model's default mode, and as trained), the stream of a
30-minute record in 1 s and 0.1 s chunks, and ONNX Runtime's throughput at 256 consecutive beats.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ecg_utils.atomic import write_json
from ecg_utils.bench.inference import backend_run, stream_run
from ecg_utils.bench.long_record import predict_run, write_holter
from ecg_utils.bench.timing import fresh


def compare(models: dict[str, Path], rounds: int = 2, hours: float = 24.0) -> dict[str, Any]:
    """Every figure for each model in `models` (label: ONNX file), interleaved; one list entry per round."""
    from ecg_utils.classify import BLOCK_S

    out: dict[str, dict[str, list[float]]] = {label: {} for label in models}

    def add(label: str, key: str, value: float) -> None:
        out[label].setdefault(key, []).append(value)
        print(f"  {label:10s} {key:34s} {value:10,.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        record = str(write_holter(Path(tmp), hours))
        for _ in range(rounds):
            for label, path in models.items():
                for adapt in (True, False):
                    run = fresh(predict_run, str(path), record, BLOCK_S, False, adapt)
                    add(label, f"{hours:g} h predict, {'default' if adapt else '--no-adapt'} (s)", run["seconds"])
    for _ in range(rounds):
        for label, path in models.items():
            for chunk_s in (1.0, 0.1):
                add(label, f"stream, {chunk_s:g} s chunks (x real time)",
                    fresh(stream_run, str(path), "100", chunk_s, 3)["x_real_time"])
            add(label, "256 beats (beats/s)", fresh(backend_run, str(path), 256, 200)["beats_per_s"])
    return {"rounds": rounds, "hours": hours, "models": {k: str(v) for k, v in models.items()}, "figures": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time two exported models side by side on this machine.")
    parser.add_argument("before", type=Path, help="ONNX file of the model before the change")
    parser.add_argument("after", type=Path, help="ONNX file of the model after the change")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each times both models once (default 2)")
    parser.add_argument("--hours", type=float, default=24.0, help="length of the long record (default 24)")
    parser.add_argument("--out", type=Path, help="JSON file for every figure of every round")
    args = parser.parse_args(argv)
    missing = [str(p) for p in (args.before, args.after) if not p.is_file()]
    if missing or args.rounds < 1 or args.hours <= 0:
        parser.error(f"no model file {', '.join(missing)}" if missing else "--rounds and --hours must be positive")
    result = compare({"before": args.before, "after": args.after}, args.rounds, args.hours)
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
