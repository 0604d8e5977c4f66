"""What real-time use costs: one model scored on reference positions, detected beats and a replayed stream.

A monitor has no reference annotations: it finds the beats itself and classifies each one from
the samples it has so far. `beat_sources` classifies a record three ways and gives every beat its
true class from the reference annotations, so the AAMI figures of the three can stand side by side.
These are the model's own figures: the signal-quality gate is off here (`robustness` measures it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ecg_utils.atomic import write_json
from ecg_utils.classify import classify_record, reference_labels
from ecg_utils.data.aami import CLASSES
from ecg_utils.data.records import read_record
from ecg_utils.evaluate.protocols import PROBA_COLUMNS, summarize
from ecg_utils.model.inference import Classifier
from ecg_utils.signal.quality import GateConfig
from ecg_utils.streaming import BeatEvent, StreamingClassifier

SOURCES = ("reference positions", "detected beats", "streamed")


def replay(classifier: Classifier, x: np.ndarray, fs: float, chunk_s: float,
           gate: GateConfig | None = None) -> list[BeatEvent]:
    """Feed a whole signal sampled at `fs` to a fresh streaming classifier, `chunk_s` seconds at a time."""
    stream = StreamingClassifier(classifier, fs, gate=gate)
    chunk = max(1, round(chunk_s * fs))
    return [e for i in range(0, len(x), chunk) for e in stream.process(x[i:i + chunk])]


def stream_record(path: str | Path, classifier: Classifier, chunk_s: float, lead: str | None = None) -> pd.DataFrame:
    """A record replayed as a stream at its own sampling rate, as a device would send it: one row per
    beat (`sample`, `pred`, a probability per class, `latency_s`)."""
    rec = read_record(path, [lead] if lead else classifier.preprocess.leads, fs=None, annotator=None)
    return events_table(replay(classifier, rec.signal, rec.fs, chunk_s))


def events_table(events: list[BeatEvent]) -> pd.DataFrame:
    """Streamed beats as a table: `sample`, `pred`, a probability per class (4 decimals, as `predict`), `latency_s`."""
    table = pd.DataFrame({"sample": np.array([e.sample for e in events], dtype=np.int64),
                          "pred": [e.pred for e in events]})
    proba = np.array([e.proba for e in events]).reshape(-1, len(CLASSES))
    return table.join(pd.DataFrame(np.round(proba, 4), columns=PROBA_COLUMNS)).assign(
        latency_s=[e.latency_s for e in events])


def beat_sources(path: str | Path, classifier: Classifier, chunk_s: float) -> dict[str, pd.DataFrame]:
    """The record's beats classified at the reference positions, at the detected beats and as a stream (all by the
    model as trained, as the stream runs it), each with a `true` column: the class of the reference beat within 150 ms
    ('' for a false detection)."""
    out = {"reference positions": classify_record(path, classifier, beats="atr", progress=False, gate=None,
                                                  adapt=False).beats,
           "detected beats": classify_record(path, classifier, beats="detect", progress=False, gate=None,
                                             adapt=False).beats,
           "streamed": stream_record(path, classifier, chunk_s)}
    for name, table in out.items():
        tolerance = 0.0 if name == "reference positions" else 0.150
        table["true"] = reference_labels(path, table["sample"].to_numpy(), tolerance_s=tolerance)
    return out


def compare_sources(mitdb_dir: Path, records: Sequence[str], classifier: Classifier,
                    chunk_s: float) -> tuple[dict[str, dict], dict[str, int], pd.DataFrame]:
    """AAMI figures per source over `records`, the count of unmatched detections per source, and every beat.

    Detections that match no reference beat have no true class: they are counted, not scored.
    """
    tables: dict[str, list[pd.DataFrame]] = {s: [] for s in SOURCES}
    for name in tqdm(records, desc="records"):
        for source, table in beat_sources(mitdb_dir / name, classifier, chunk_s).items():
            tables[source].append(table.assign(record=name))
    beats = pd.concat([pd.concat(t).assign(source=s) for s, t in tables.items()], ignore_index=True)
    scored = beats[beats.true != ""]
    figures = {s: summarize(g.true.to_numpy(), g.pred.to_numpy()) for s, g in scored.groupby("source", sort=False)}
    unmatched = {s: int((beats[beats.source == s].true == "").sum()) for s in SOURCES}
    return figures, unmatched, beats


def write_sources_report(path: str | Path, figures: dict[str, dict], unmatched: dict[str, int], beats: pd.DataFrame,
                         records: Sequence[str], chunk_s: float) -> dict:
    """Write `detected_vs_reference.json` (from `compare_sources`): the figures per source, the unmatched
    detections, the records, the chunk size and the streamed beats' latency; returns what it wrote."""
    latency = beats.loc[beats.source == "streamed", "latency_s"].to_numpy()
    report = {**figures, "unmatched_detections": unmatched, "records": list(records), "chunk_s": chunk_s,
              "stream_latency_s": {"p50": float(np.median(latency)), "p99": float(np.percentile(latency, 99))}}
    write_json(path, report)
    return report
