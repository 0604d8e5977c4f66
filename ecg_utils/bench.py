"""Benchmarks printed by `make bench`: figures, not pass/fail tests.

Measures, in one run on this machine: wfdb alone reading all records and their annotations,
building the beat dataset from the raw files (cold, no cache), and a cache hit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import wfdb

from .dataset import build_dataset, load_dataset
from .mitdb import RECORDS, resolve_mitdb_dir
from .preprocess import PreprocessConfig


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs in seconds: the least disturbed by other load on the machine."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_data(repeat: int = 3) -> dict[str, float]:
    root = resolve_mitdb_dir()

    def wfdb_only() -> None:
        for r in RECORDS:
            wfdb.rdrecord(str(root / r))
            wfdb.rdann(str(root / r), "atr")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "beats.npz"
        config = PreprocessConfig()
        cold = best_of(lambda: build_dataset(config, out, force=True, progress=False), repeat)
        hit = best_of(lambda: build_dataset(config, out, progress=False), repeat)
        hit_load = best_of(lambda: load_dataset(build_dataset(config, out, progress=False)), repeat)
        size_mb = out.stat().st_size / 1e6
    return {"wfdb_read_s": best_of(wfdb_only, repeat), "build_cold_s": cold, "cache_hit_s": hit,
            "cache_hit_and_load_s": hit_load, "dataset_mb": size_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the project's benchmark figures.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is printed")
    args = parser.parse_args()
    d = bench_data(args.repeat)
    print(f"data pipeline, {len(RECORDS)} records (best of {args.repeat}):")
    print(f"  wfdb alone, read all records (2 leads) + annotations  {d['wfdb_read_s']:6.2f} s")
    print(f"  build dataset from raw files (cold, no cache)        {d['build_cold_s']:6.2f} s   target < 10 s")
    print(f"  cache hit (check only)                               {d['cache_hit_s']:6.3f} s   target < 2 s")
    print(f"  cache hit + load all arrays                          {d['cache_hit_and_load_s']:6.3f} s")
    print(f"  dataset file                                         {d['dataset_mb']:6.1f} MB")


if __name__ == "__main__":
    main()
