"""Benchmarks printed by `make bench`: figures, not pass/fail tests.

Measures, in one run on this machine: wfdb alone reading all records and their annotations,
building the beat dataset from the raw files (cold, no cache), a cache hit, each model's
training and inference throughput, the R-peak detector's accuracy and speed, PyTorch vs ONNX
Runtime (throughput, single-beat latency, peak memory) and the streaming classifier (speed as a
multiple of real time, latency, peak memory). Inference and streaming run on one thread, each in a
fresh process so that its peak memory is its own and an ONNX process never loads PyTorch.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import wfdb

from ecg_utils.data.mitdb import RECORDS, resolve_mitdb_dir
from ecg_utils.data.records import read_record
from ecg_utils.paths import RUNS_DIR
from ecg_utils.signal.dataset import build_dataset, load_dataset
from ecg_utils.signal.detect import detect_r_peaks, ec57_counts
from ecg_utils.signal.preprocess import PreprocessConfig


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


def _model_throughput(name: str, window: int, train_batch: int, infer_batch: int, steps: int) -> dict:
    """Beats per second of one model: training steps and inference, each beat with its sequence context."""
    import torch

    from ecg_utils.model.architectures import build_model

    model = build_model(name)
    opt = torch.optim.AdamW(model.parameters())
    k = model.context

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # n beats in runs of 32 consecutive ones (as training draws them), with their k - 1 predecessors
        rows = n + (n // 32) * (k - 1)
        x, rr = torch.randn(rows, 2, window), torch.rand(rows, 4) + 0.5
        idx = torch.stack([torch.arange(c * (32 + k - 1) + i, c * (32 + k - 1) + i + k)
                           for c in range(n // 32) for i in range(32)])
        return x, rr, idx

    x, rr, idx = batch(train_batch)
    y = torch.randint(0, 5, (len(idx),))

    def train_steps() -> None:
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model.classify(model.encode(x, rr)[idx]), y).backward()
            opt.step()

    xi, rri, idxi = batch(infer_batch)

    def infer_steps() -> None:
        with torch.inference_mode():
            for _ in range(steps):
                model.classify(model.encode(xi, rri)[idxi])

    train_s = best_of(train_steps, 3) / steps  # the first of the 3 runs doubles as warm-up
    model.eval()
    infer_s = best_of(infer_steps, 3) / steps
    return {"params": model.n_params, "train_beats_per_s": len(idx) / train_s,
            "infer_beats_per_s": len(idxi) / infer_s}


def bench_models(threads: int = 2, train_batch: int = 256, infer_batch: int = 1024, steps: int = 10) -> dict:
    """Beats per second for one optimiser step (forward, backward, AdamW) and for inference."""
    import torch

    from ecg_utils.model.architectures import MODELS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    window = PreprocessConfig().window
    return {name: _model_throughput(name, window, train_batch, infer_batch, steps) for name in MODELS}


def bench_detector() -> dict[str, float]:
    """R-peak detection on all 48 records: EC57 sensitivity and positive predictivity, and speed."""
    root = resolve_mitdb_dir()
    counts, seconds, signal_s = {"tp": 0, "fn": 0, "fp": 0}, 0.0, 0.0
    for name in RECORDS:
        rec = read_record(root / name)
        t0 = time.perf_counter()
        det = detect_r_peaks(rec.signal, rec.fs)
        seconds += time.perf_counter() - t0
        signal_s += len(rec.signal) / rec.fs
        for k, v in ec57_counts(rec.ann_sample, rec.ann_symbol, det, rec.fs).items():
            counts[k] += v
    return {"se": counts["tp"] / (counts["tp"] + counts["fn"]), "ppv": counts["tp"] / (counts["tp"] + counts["fp"]),
            **counts, "s_per_record": seconds / len(RECORDS), "x_real_time": signal_s / seconds}


def print_detector() -> None:
    d = bench_detector()
    print(f"R-peak detector, {len(RECORDS)} records (EC57: 150 ms window, 5 min learning, flutter excluded):")
    print(f"  Se {100 * d['se']:.2f} %  +P {100 * d['ppv']:.2f} %  (TP {d['tp']:,}, FN {d['fn']:,}, FP {d['fp']:,})"
          "   target >= 99.5 % each")
    print(f"  {d['s_per_record']:.2f} s per 30-min record, {d['x_real_time']:,.0f} x real time")


def _rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    """Highest resident memory of this process so far (VmHWM, which unlike ru_maxrss starts afresh at
    exec rather than carrying the parent's peak over), MB."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1e3


def _fresh(fn: Callable[..., dict], *args: object) -> dict:
    """Run `fn(*args)` in a new Python process, so its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _backend_run(model: str, batch: int, repeat: int) -> dict[str, float]:
    """One backend, one thread: throughput at `batch` consecutive beats (template, encodings and sequences
    included) and single-beat latency as a stream sees it (p50, p99), peak memory."""
    from ecg_utils.model.inference import BeatSequence, load_classifier

    clf = load_classifier(model, threads=1)
    window = clf.preprocess.window
    rng = np.random.default_rng(0)
    xb, rb = rng.standard_normal((batch, window), np.float32), rng.uniform(0.5, 1.2, (batch, 4)).astype(np.float32)
    BeatSequence(clf)(xb, rb)  # warm-up
    throughput = batch / best_of(lambda: BeatSequence(clf)(xb, rb), 5)
    single, sequence = [], BeatSequence(clf)
    for i in range(repeat):
        t0 = time.perf_counter()
        sequence(xb[i % batch:i % batch + 1], rb[i % batch:i % batch + 1])
        single.append(time.perf_counter() - t0)
    return {"beats_per_s": throughput, "p50_ms": 1e3 * float(np.percentile(single, 50)),
            "p99_ms": 1e3 * float(np.percentile(single, 99)), "peak_rss_mb": _peak_rss_mb()}


def bench_backends(checkpoint: Path, onnx_path: Path, batch: int = 256, repeat: int = 500) -> dict[str, dict]:
    """PyTorch vs ONNX Runtime on one model and one thread, each in its own process."""
    return {name: _fresh(_backend_run, str(path), batch, repeat)
            for name, path in (("pytorch", checkpoint), ("onnxruntime", onnx_path))}


def _stream_run(model: str, record: str, chunk_s: float, repeat: int) -> dict[str, float]:
    """The streaming classifier over a whole record on one thread, `repeat` times afresh: the fastest
    run's speed, its latency, and the process's memory."""
    from ecg_utils.model.inference import load_classifier
    from ecg_utils.streaming import StreamingClassifier

    rec = read_record(resolve_mitdb_dir() / record)
    clf = load_classifier(model, threads=1)
    chunk = round(chunk_s * rec.fs)
    StreamingClassifier(clf, rec.fs).process(rec.signal[: round(60 * rec.fs)])  # warm-up, then dropped
    times, rss_early, early = [], 0.0, round(180 * rec.fs)
    for _ in range(repeat):
        stream, events = StreamingClassifier(clf, rec.fs), []
        t0 = time.perf_counter()
        for i in range(0, len(rec.signal), chunk):
            events.extend(stream.process(rec.signal[i:i + chunk]))
            if not times and i < early <= i + chunk:
                rss_early = _rss_mb()
        times.append(time.perf_counter() - t0)
        if len(times) == 1:
            rss_growth = _rss_mb() - rss_early
    latency = [e.latency_s for e in events]
    return {"seconds": min(times), "x_real_time": len(rec.signal) / rec.fs / min(times), "beats": len(events),
            "latency_p50": float(np.percentile(latency, 50)), "latency_p99": float(np.percentile(latency, 99)),
            "peak_rss_mb": _peak_rss_mb(), "rss_growth_mb": rss_growth, "minutes": len(rec.signal) / rec.fs / 60}


def bench_streaming(checkpoint: Path, onnx_path: Path, record: str = "100", chunks_s: tuple[float, ...] = (1.0, 0.1),
                    repeat: int = 3) -> list[dict]:
    """The streaming classifier on a 30-minute record, per backend and chunk size, each in its own process."""
    return [{"backend": name, "chunk_s": c, **_fresh(_stream_run, str(path), record, c, repeat)}
            for c in chunks_s for name, path in (("onnxruntime", onnx_path), ("pytorch", checkpoint))]


def print_inference() -> None:
    from ecg_utils.model.export import export_onnx

    checkpoint = RUNS_DIR / "inter_patient_cnn_lstm" / "best.pt"
    if not checkpoint.is_file():
        print(f"inference: skipped, no trained model at {checkpoint} (run `make reproduce`)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(checkpoint, Path(tmp) / "model.onnx")
        backends = bench_backends(checkpoint, onnx_path)
        streams = bench_streaming(checkpoint, onnx_path)
    print("CNN-LSTM inference backends, one thread, each in a fresh process:")
    print("  backend       batch 256        batch 1 latency p50 / p99   peak memory (RSS)")
    for name, r in backends.items():
        print(f"  {name:12s} {r['beats_per_s']:7,.0f} beats/s   {r['p50_ms']:5.2f} / {r['p99_ms']:5.2f} ms"
              f"             {r['peak_rss_mb']:4.0f} MB")
    d = streams[0]
    print(f"streaming classifier, record 100 ({d['minutes']:.0f} min, {d['beats']:,} beats), one thread, "
          "each in a fresh process (best of 3):")
    print("  backend       chunk   whole record   x real time   latency p50 / p99   peak RSS   RSS growth after min 3")
    for d in streams:
        print(f"  {d['backend']:12s} {d['chunk_s']:4.1f} s   {d['seconds']:8.2f} s   {d['x_real_time']:9,.0f} x"
              f"     {d['latency_p50']:4.2f} / {d['latency_p99']:4.2f} s    {d['peak_rss_mb']:5.0f} MB"
              f"   {d['rss_growth_mb']:+6.1f} MB")
    print("  target: >= 1,000 x real time on one core, a 30-min record in < 2 s")


def write_holter(folder: Path, hours: float = 24.0) -> Path:
    """A long one-lead WFDB record: the MIT-BIH records' MLII (V5 for 102 and 104) end to end, repeated up to
    `hours` (24 h: 31.1 M samples at 360 Hz), 16-bit at 200 units/mV."""
    root = resolve_mitdb_dir()
    n_total, written = round(hours * 3600 * 360), 0
    name = f"holter{hours:g}h"
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


def _predict_run(model: str, record: str, block_s: float) -> dict[str, float]:
    from ecg_utils.classify import classify_record
    from ecg_utils.model.inference import load_classifier

    clf = load_classifier(model, threads=1)
    t0 = time.perf_counter()
    result = classify_record(record, clf, progress=False, block_s=block_s)
    return {"seconds": time.perf_counter() - t0, "beats": len(result.beats), "peak_rss_mb": _peak_rss_mb()}


def print_long_record(hours: float = 24.0) -> None:
    from ecg_utils.classify import BLOCK_S
    from ecg_utils.model.shipped import MODEL_PATH

    with tempfile.TemporaryDirectory() as tmp:
        record = write_holter(Path(tmp), hours)
        print(f"one {hours:g}-hour record (MIT-BIH records end to end, 360 Hz), published model (ONNX), one thread, "
              "fresh process each:")
        for label, block in ((f"in {BLOCK_S / 60:g}-min blocks (predict's default)", BLOCK_S),
                             ("whole record in one block", 1e9)):
            d = _fresh(_predict_run, str(MODEL_PATH), str(record), block)
            print(f"  {label:40s} {d['seconds']:6.1f} s  {d['beats']:,} beats  peak RSS {d['peak_rss_mb']:5.0f} MB")
    print("  target: in blocks, peak RSS < 500 MB and no slower than the whole record")


def print_models(threads: int = 2) -> None:
    m = bench_models(threads)
    print(f"models, {threads} CPU threads (train: batch 256, AdamW step; inference: batch 1024):")
    for name, r in m.items():
        print(f"  {name:9s} {r['params']:8,d} params   train {r['train_beats_per_s']:7,.0f} beats/s"
              f"   inference {r['infer_beats_per_s']:8,.0f} beats/s")


def print_data(repeat: int) -> None:
    d = bench_data(repeat)
    print(f"data pipeline, {len(RECORDS)} records (best of {repeat}):")
    print(f"  wfdb alone, read all records (2 leads) + annotations  {d['wfdb_read_s']:6.2f} s")
    print(f"  build dataset from raw files (cold, no cache)        {d['build_cold_s']:6.2f} s   target < 10 s")
    print(f"  cache hit (check only)                               {d['cache_hit_s'] * 1e3:6.1f} ms  target < 2 s")
    print(f"  cache hit + load all arrays                          {d['cache_hit_and_load_s'] * 1e3:6.1f} ms")
    print(f"  dataset file                                         {d['dataset_mb']:6.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the project's benchmark figures.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is printed")
    parser.add_argument("--only", choices=["data", "models", "detector", "inference", "long", "service"],
                        help="run one part only")
    args = parser.parse_args()
    if args.only in (None, "data"):
        print_data(args.repeat)
    if args.only in (None, "models"):
        print_models()
    if args.only in (None, "detector"):
        print_detector()
    if args.only in (None, "inference"):
        print_inference()
    if args.only in (None, "long"):
        print_long_record()
    if args.only in (None, "service"):
        from ecg_utils.serve.loadtest import print_service

        print_service()


if __name__ == "__main__":
    main()
