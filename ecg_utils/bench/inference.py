"""Inference backends (PyTorch, ONNX Runtime) and the streaming classifier, one thread, each in a fresh process."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ecg_utils.bench.timing import best_of, fresh, peak_rss_mb, rss_mb
from ecg_utils.data.aami import CLASSES
from ecg_utils.data.mitdb import resolve_mitdb_dir
from ecg_utils.data.records import read_record
from ecg_utils.model.inference import Classifier
from ecg_utils.paths import RUNS_DIR
from ecg_utils.signal.preprocess import RR_FEATURES

SIGNAL_ONLY = "signal path alone"


class SignalOnly:
    """A stand-in for a model: its preprocessing, and a constant answer at no cost. A path run with it times the
    signal path alone (filters, detector, gate, template), so that the model's share of a path is a ratio that
    holds from machine to machine."""

    backend = "none"

    def __init__(self, like: Classifier) -> None:
        self.preprocess, self.context, self.dim, self.rhythm = like.preprocess, like.context, like.dim, like.rhythm
        self.adaptation = None  # nothing to adapt: the signal path alone

    def run(self, x: np.ndarray, rr: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        return np.full((n, len(CLASSES)), 1 / len(CLASSES), np.float32), np.zeros((n, self.dim), np.float32)


def backend_run(model: str, batch: int, repeat: int) -> dict[str, float]:
    """One backend, one thread: throughput at `batch` consecutive beats (template, encodings and sequences
    included) and single-beat latency as a stream sees it (p50, p99), peak memory."""
    from ecg_utils.model.inference import BeatSequence, load_classifier

    clf = load_classifier(model, threads=1)
    window = clf.preprocess.window
    rng = np.random.default_rng(0)
    xb, rb = rng.standard_normal((batch, window), np.float32), rng.uniform(0.5, 1.2, (batch, len(RR_FEATURES))).astype(np.float32)
    BeatSequence(clf)(xb, rb)  # warm-up
    throughput = batch / best_of(lambda: BeatSequence(clf)(xb, rb), 5)
    single, sequence = [], BeatSequence(clf)
    for i in range(repeat):
        t0 = time.perf_counter()
        sequence(xb[i % batch:i % batch + 1], rb[i % batch:i % batch + 1])
        single.append(time.perf_counter() - t0)
    return {"beats_per_s": throughput, "p50_ms": 1e3 * float(np.percentile(single, 50)),
            "p99_ms": 1e3 * float(np.percentile(single, 99)), "peak_rss_mb": peak_rss_mb()}


def bench_backends(models: dict[str, Path], batch: int = 256, repeat: int = 500) -> dict[str, dict]:
    """Each backend (name: model file) on one thread, each in its own process."""
    return {name: fresh(backend_run, str(path), batch, repeat) for name, path in models.items()}


def stream_run(model: str, record: str, chunk_s: float, repeat: int, signal_only: bool = False) -> dict[str, float]:
    """The streaming classifier over a whole record on one thread, `repeat` times afresh: the fastest
    run's speed, its latency, and the process's memory (`signal_only`: the model replaced by `SignalOnly`)."""
    from ecg_utils.model.inference import load_classifier
    from ecg_utils.streaming import StreamingClassifier

    rec = read_record(resolve_mitdb_dir() / record)
    clf = load_classifier(model, threads=1)
    clf = SignalOnly(clf) if signal_only else clf
    chunk = round(chunk_s * rec.fs)
    StreamingClassifier(clf, rec.fs).process(rec.signal[: round(60 * rec.fs)])  # warm-up, then dropped
    times, rss_early, early = [], 0.0, round(180 * rec.fs)
    for _ in range(repeat):
        stream, events = StreamingClassifier(clf, rec.fs), []
        t0 = time.perf_counter()
        for i in range(0, len(rec.signal), chunk):
            events.extend(stream.process(rec.signal[i:i + chunk]))
            if not times and i < early <= i + chunk:
                rss_early = rss_mb()
        times.append(time.perf_counter() - t0)
        if len(times) == 1:
            rss_growth = rss_mb() - rss_early
    latency = [e.latency_s for e in events]
    return {"seconds": min(times), "x_real_time": len(rec.signal) / rec.fs / min(times), "beats": len(events),
            "latency_p50": float(np.percentile(latency, 50)), "latency_p99": float(np.percentile(latency, 99)),
            "peak_rss_mb": peak_rss_mb(), "rss_growth_mb": rss_growth, "minutes": len(rec.signal) / rec.fs / 60}


def bench_streaming(models: dict[str, Path], record: str = "100", chunks_s: tuple[float, ...] = (1.0, 0.1),
                    repeat: int = 3) -> list[dict]:
    """The streaming classifier on a 30-minute record, per backend and chunk size, and the signal path alone
    beside them, each in its own process."""
    first = str(next(iter(models.values())))
    rows = []
    for c in chunks_s:
        rows.extend({"backend": name, "chunk_s": c, **fresh(stream_run, str(path), record, c, repeat)}
                    for name, path in models.items())
        rows.append({"backend": SIGNAL_ONLY, "chunk_s": c, **fresh(stream_run, first, record, c, repeat, True)})
    return rows


def backend_models(checkpoint: Path, folder: Path) -> dict[str, Path]:
    """The model files to measure: a trained checkpoint on both backends (its ONNX export written into `folder`),
    or, before any training (a fresh clone), the published model shipped with the package on ONNX Runtime."""
    from ecg_utils.model.shipped import MODEL_PATH

    if not checkpoint.is_file():
        return {"onnxruntime": MODEL_PATH}
    from ecg_utils.model.export import export_onnx

    return {"onnxruntime": export_onnx(checkpoint, folder / "model.onnx"), "pytorch": checkpoint}


def print_inference(checkpoint: Path = RUNS_DIR / "inter_patient_cnn_lstm" / "best.pt") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        models = backend_models(checkpoint, Path(tmp))
        backends = bench_backends(models)
        streams = bench_streaming(models)
    if "pytorch" not in models:
        print(f"no trained model at {checkpoint} (`make reproduce` trains one): the shipped model on ONNX Runtime only")
    print("CNN-LSTM inference backends, one thread, each in a fresh process:")
    print("  backend       batch 256        batch 1 latency p50 / p99   peak memory (RSS)")
    for name, r in backends.items():
        print(f"  {name:12s} {r['beats_per_s']:7,.0f} beats/s   {r['p50_ms']:5.2f} / {r['p99_ms']:5.2f} ms"
              f"             {r['peak_rss_mb']:4.0f} MB")
    d = streams[0]
    print(f"streaming classifier, record 100 ({d['minutes']:.0f} min, {d['beats']:,} beats), one thread, "
          "each in a fresh process (best of 3):")
    print("  backend             chunk   whole record   x real time   latency p50 / p99   peak RSS   RSS growth after min 3"
          "   model's time / signal path's")
    for d in streams:
        alone = next(a for a in streams if a["backend"] == SIGNAL_ONLY and a["chunk_s"] == d["chunk_s"])
        share = "" if d is alone else f"{(d['seconds'] - alone['seconds']) / alone['seconds']:5.2f}"
        print(f"  {d['backend']:18s} {d['chunk_s']:4.1f} s   {d['seconds']:8.2f} s   {d['x_real_time']:9,.0f} x"
              f"     {d['latency_p50']:4.2f} / {d['latency_p99']:4.2f} s    {d['peak_rss_mb']:5.0f} MB"
              f"   {d['rss_growth_mb']:+6.1f} MB{share:>27s}")
    print("  targets: >= 3,000 x real time in 1 s chunks, >= 1,000 x in 0.1 s chunks, RSS growth after min 3 < 2 MB; "
          "the model's time at most the signal path's (ratio <= 1)")
    return {"backends": backends, "streams": streams}
