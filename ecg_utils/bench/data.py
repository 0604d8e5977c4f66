"""The data pipeline: wfdb alone, the beat dataset built cold, and a cache hit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import wfdb

from ecg_utils.bench.timing import best_of
from ecg_utils.data.mitdb import RECORDS, resolve_mitdb_dir
from ecg_utils.signal.dataset import build_dataset, load_dataset
from ecg_utils.signal.preprocess import PreprocessConfig


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


def print_data(repeat: int) -> dict[str, float]:
    d = bench_data(repeat)
    print(f"data pipeline, {len(RECORDS)} records (best of {repeat}):")
    print(f"  wfdb alone, read all records (2 leads) + annotations  {d['wfdb_read_s']:6.2f} s")
    print(f"  build dataset from raw files (cold, no cache)        {d['build_cold_s']:6.2f} s   target < 10 s")
    print(f"  cache hit (check only)                               {d['cache_hit_s'] * 1e3:6.1f} ms  target < 2 s")
    print(f"  cache hit + load all arrays                          {d['cache_hit_and_load_s'] * 1e3:6.1f} ms")
    print(f"  dataset file                                         {d['dataset_mb']:6.1f} MB")
    return {**d, "repeat": repeat, "records": len(RECORDS)}
