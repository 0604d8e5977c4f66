"""A 24-hour record through `predict`'s pipeline, in blocks and whole, in whole-record mode (the default) and as
trained: time and peak memory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ecg_utils.bench.timing import fresh, peak_rss_mb
from ecg_utils.data.mitdb import RECORDS, resolve_mitdb_dir
from ecg_utils.data.records import read_record


def write_holter(folder: Path, hours: float = 24.0) -> Path:
    """A long one-lead WFDB record: the MIT-BIH records' MLII (V5 for 102 and 104) end to end, repeated up to
    `hours` (24 h: 31.1 M samples at 360 Hz), 16-bit at 200 units/mV."""
    root = resolve_mitdb_dir()
    n_total, written = round(hours * 3600 * 360), 0
    name = f"holter{hours:g}h".replace(".", "p")  # a WFDB record name has no dot: 0.5 h is holter0p5h
    with open(folder / f"{name}.dat", "wb") as out:
        while written < n_total:
            for r in RECORDS:
                x = read_record(root / r, annotator=None).signal
                x = x[: n_total - written]
                out.write(np.clip(np.round(x * 200), -32768, 32767).astype("<i2").tobytes())
                written += len(x)
                if written >= n_total:
                    break
    (folder / f"{name}.hea").write_text(f"{name} 1 360 {written}\n{name}.dat 16 200/mV 16 0 0 0 0 MLII\n")
    return folder / name


def predict_run(model: str, record: str, block_s: float, signal_only: bool = False,
                 adapt: bool = True) -> dict[str, float]:
    from ecg_utils.bench.inference import SignalOnly
    from ecg_utils.classify import classify_record
    from ecg_utils.model.inference import load_classifier

    clf = load_classifier(model, threads=1)
    clf = SignalOnly(clf) if signal_only else clf
    t0 = time.perf_counter()
    result = classify_record(record, clf, progress=False, block_s=block_s, adapt=adapt)
    return {"seconds": time.perf_counter() - t0, "beats": len(result.beats), "peak_rss_mb": peak_rss_mb()}


def print_long_record(hours: float = 24.0) -> dict:
    """The rows of the benchmark; the model as trained is a row of its own only where the shipped model carries a
    whole-record setting (otherwise it is `predict`'s default)."""
    from ecg_utils.classify import BLOCK_S
    from ecg_utils.model.shipped import MODEL_PATH, model_info

    with tempfile.TemporaryDirectory() as tmp:
        record = write_holter(Path(tmp), hours)
        print(f"one {hours:g}-hour record (MIT-BIH records end to end, 360 Hz), published model (ONNX), one thread, "
              "fresh process each:")
        rows = {"blocks": (f"in {BLOCK_S / 60:g}-min blocks (predict's default)", BLOCK_S, False, True),
                "as_trained": (f"in {BLOCK_S / 60:g}-min blocks, --no-adapt", BLOCK_S, False, False),
                "whole": ("whole record in one block", 1e9, False, True),
                "signal": (f"in {BLOCK_S / 60:g}-min blocks, signal path alone", BLOCK_S, True, False)}
        if not model_info().get("whole_record"):
            del rows["as_trained"]
        runs = {}
        for key, (label, block, alone, adapt) in rows.items():
            d = runs[key] = fresh(predict_run, str(MODEL_PATH), str(record), block, alone, adapt)
            print(f"  {label:40s} {d['seconds']:6.1f} s  {d['beats']:,} beats  peak RSS {d['peak_rss_mb']:5.0f} MB")
        share = (runs["blocks"]["seconds"] - runs["signal"]["seconds"]) / runs["signal"]["seconds"]
    print(f"  model's time / signal path's, in blocks: {share:.2f}")
    print("  targets: in blocks, <= 15 s, peak RSS < 500 MB, no slower than the whole record; the model's time at most "
          "the signal path's (ratio <= 1)")
    return {"hours": hours, "block_s": BLOCK_S, **runs}
