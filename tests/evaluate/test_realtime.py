"""Scoring real-time use: reference positions, detected beats and a replayed stream side by side."""

import numpy as np
import pytest
import wfdb

from ecg_utils.evaluate.realtime import (
    SOURCES,
    beat_sources,
    compare_sources,
    replay,
    stream_record,
    write_sources_report,
)
from ecg_utils.model.inference import load_classifier
from ecg_utils.streaming import StreamingClassifier
from tests.synthetic_records import cut_and_resample

SECONDS = 240


@pytest.fixture(scope="module")
def clf(tiny_model):
    return load_classifier(tiny_model)


@pytest.fixture(scope="module")
def records(mitdb_dir, tmp_path_factory):
    """Four minutes of record 119 (ventricular bigeminy) at 360 Hz (r360), and resampled to 250 Hz (r250)."""
    folder = tmp_path_factory.mktemp("rt")
    cut_and_resample(mitdb_dir, "119", SECONDS, folder)
    return folder


def test_replay_is_the_streaming_classifier(clf, records):
    x = wfdb.rdrecord(str(records / "r360")).p_signal[:, 0]
    s = StreamingClassifier(clf, 360)
    direct = [e for i in range(0, len(x), 180) for e in s.process(x[i:i + 180])]
    assert [(e.sample, e.pred) for e in replay(clf, x, 360, 0.5)] == [(e.sample, e.pred) for e in direct]


def test_stream_record_reports_beats_at_the_records_rate(clf, records):
    a, b = stream_record(records / "r360", clf, 0.5), stream_record(records / "r250", clf, 0.5)
    assert list(a.columns) == ["sample", "pred", "p_N", "p_S", "p_V", "p_F", "p_Q", "latency_s"]
    assert abs(len(a) - len(b)) <= 1 and len(a) > 250
    n = min(len(a), len(b))
    assert np.abs(b["sample"].to_numpy()[:n] - np.round(a["sample"].to_numpy()[:n] * 250 / 360)).max() <= 2
    assert (a.pred.to_numpy()[:n] == b.pred.to_numpy()[:n]).mean() > 0.95


def test_beat_sources_label_every_beat(clf, records):
    sources = beat_sources(records / "r360", clf, 0.5)
    assert list(sources) == list(SOURCES)
    ref = sources["reference positions"]
    assert (ref.true != "").all() and set(ref.true) == {"N", "V"}  # record 119: normal and ventricular beats
    for name in ("detected beats", "streamed"):
        t = sources[name]
        assert (t.true != "").mean() > 0.98 and abs(len(t) - len(ref)) < 10, name
        # a tiny model, but better than calling every beat N (77 % of them), and it finds the V beats
        assert (t.true == t.pred).mean() > (t.true == "N").mean() + 0.1, name
        assert ((t.true == "V") & (t.pred == "V")).sum() >= 0.9 * (t.true == "V").sum() > 0, name


def test_compare_sources(clf, records):
    figures, unmatched, beats = compare_sources(records, ["r360"], clf, 1.0)
    assert list(figures) == list(SOURCES) and set(unmatched) == set(SOURCES) and unmatched["reference positions"] == 0
    for name, f in figures.items():
        scored = beats[(beats.source == name) & (beats.true != "")]
        assert f["n_beats"] == len(scored)
        assert f["accuracy"] == pytest.approx((scored.true == scored.pred).mean())


def test_sources_report_is_written_whole(tmp_path):
    import json

    import pandas as pd

    beats = pd.DataFrame({"source": ["streamed"] * 100 + ["detected beats"] * 5,
                          "latency_s": list(np.linspace(1.5, 2.5, 100)) + [9.0] * 5})
    figures = {s: {"accuracy": 0.9} for s in SOURCES}
    report = write_sources_report(tmp_path / "d.json", figures, {"streamed": 3}, beats, ["100"], 0.5)
    assert json.loads((tmp_path / "d.json").read_text()) == report
    assert report["stream_latency_s"]["p50"] == pytest.approx(2.0) and report["stream_latency_s"]["p99"] < 2.5
    assert report["records"] == ["100"] and report["chunk_s"] == 0.5 and report["streamed"] == {"accuracy": 0.9}
