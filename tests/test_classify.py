"""The record pipeline: reference or detected beats, other sampling rates, both backends, blocks, bad input."""

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_utils.classify import classify_record, reference_labels
from ecg_utils.errors import DataError
from ecg_utils.model.inference import load_classifier

from .synthetic_records import cut_and_resample, write_csv, write_edf, write_edf_d, write_record


def test_reference_beats(tiny_model, rec100):
    at360, _, ann = rec100
    result = classify_record(at360, load_classifier(tiny_model), beats="atr", progress=False)
    beats = [s for s, sym in zip(ann.sample, ann.symbol) if sym in "NLRejAaJSVEF/fQ"]
    assert result.n_found == len(beats) and len(result.beats) == len(beats) - result.n_edge
    assert list(result.beats.columns) == ["sample", "time_s", "pred", "p_N", "p_S", "p_V", "p_F", "p_Q", "quality_db",
                                          "similarity", "unreadable"]
    assert set(result.beats["sample"]) <= set(beats) and result.lead == "MLII"
    assert (result.beats.pred == "N").mean() > 0.9  # record 100 is almost all normal beats


@pytest.mark.parametrize("backend", ["pytorch", "onnx"])
@pytest.mark.parametrize("beats", ["atr", "detect"])
def test_other_sampling_rate_is_resampled(tiny_model, tiny_onnx, mitdb_dir, tmp_path_factory, backend, beats):
    """Record 119 (ventricular bigeminy) at 250 Hz gives the beats and classes it gives at 360 Hz, V beats included
    (record 100's first minutes are nearly all N, which an all-N answer would match)."""
    at360, at250, _ = cut_and_resample(mitdb_dir, "119", 240, tmp_path_factory.mktemp("r119"))
    clf = load_classifier(tiny_model if backend == "pytorch" else tiny_onnx)
    a = classify_record(at360, clf, beats=beats, progress=False).beats
    b = classify_record(at250, clf, beats=beats, progress=False).beats
    assert len(a) == len(b) and np.abs(b["sample"].to_numpy() - np.round(a["sample"].to_numpy() * 250 / 360)).max() <= 1
    ectopic = (a.pred != "N").to_numpy() | (b.pred != "N").to_numpy()
    assert ectopic.sum() >= 50 and (a.pred.to_numpy()[ectopic] == b.pred.to_numpy()[ectopic]).mean() > 0.95
    np.testing.assert_allclose(a.time_s, b.time_s, atol=0.005)


def test_detected_beats(tiny_model, rec100):
    at360, _, ann = rec100
    result = classify_record(at360, load_classifier(tiny_model), beats="detect", progress=False)
    n_ref = sum(sym in "NLRejAaJSVEF/fQ" for sym in ann.symbol)
    assert abs(result.n_found - n_ref) <= 3


def test_onnx_backend_gives_the_same_classes(tiny_model, tiny_onnx, rec100):
    at360 = rec100[0]
    a = classify_record(at360, load_classifier(tiny_model), beats="atr", progress=False).beats
    b = classify_record(at360, load_classifier(tiny_onnx), beats="atr", progress=False).beats
    assert (a.pred == b.pred).all()
    assert np.abs(a[["p_N", "p_V"]].to_numpy() - b[["p_N", "p_V"]].to_numpy()).max() <= 2e-4


def test_nan_stretch_skips_its_beats(tiny_model, rec100, tmp_path):
    at360, _, ann = rec100
    rec = wfdb.rdrecord(str(at360))
    x = rec.p_signal[:, 0].copy()
    x[36_000:39_600] = np.nan  # 10 s of lost signal
    path = write_record(tmp_path, "gap", x, 360, ann.sample, ann.symbol)
    result = classify_record(path, load_classifier(tiny_model), beats="atr", progress=False)
    assert 10 <= result.n_nan <= 16
    assert not ((result.beats["sample"] > 36_000 - 162) & (result.beats["sample"] < 39_600 + 90)).any()
    assert len(result.beats) == result.n_found - result.n_nan - result.n_edge


def test_bad_input(tiny_model, rec100, tmp_path):
    clf = load_classifier(tiny_model)
    with pytest.raises(DataError, match=r"record nothing: no header nothing\.hea"):
        classify_record(tmp_path / "nothing", clf, progress=False)
    with pytest.raises(DataError, match=r"none of the leads \['V1'\] .* it has \['MLII'\]"):
        classify_record(rec100[0], clf, lead="V1", progress=False)
    short = write_record(tmp_path, "short", np.zeros(200), 360, [100], ["N"])
    with pytest.raises(DataError, match="shorter than one beat window"):
        classify_record(short, clf, progress=False)
    with pytest.raises(DataError, match="unknown model file type"):
        load_classifier(tmp_path / "short.dat")


def test_reference_labels(rec100):
    at360, _, ann = rec100
    first = next(s for s, sym in zip(ann.sample, ann.symbol) if sym == "N")
    got = reference_labels(at360, np.array([first + 10, first + 200]))
    assert got.tolist() == ["N", ""]


@pytest.mark.parametrize("which", ["r360", "r250"])
def test_blocks_give_the_whole_records_beats(tiny_onnx, rec100, which):
    """Classified 30 s at a time, a record gives the beats and classes it gives in one piece, also with a NaN
    stretch across a block boundary and at another sampling rate."""
    at360, at250, _ = rec100
    path = at360 if which == "r360" else at250
    rec = wfdb.rdrecord(str(path))
    x = rec.p_signal[:, 0].copy()
    fs = rec.fs
    x[int(29 * fs): int(32 * fs)] = np.nan  # across the first block boundary
    holed = write_record(path.parent, f"{which}_nan", x, fs, [10], ["N"])
    clf = load_classifier(tiny_onnx)
    for record in (path, holed):
        whole = classify_record(record, clf, progress=False)
        blocked = classify_record(record, clf, progress=False, block_s=30)
        pd.testing.assert_frame_equal(blocked.beats, whole.beats)
        assert (blocked.n_found, blocked.n_nan, blocked.n_edge) == (whole.n_found, whole.n_nan, whole.n_edge)
    assert whole.n_nan >= 1 and whole.beats["time_s"].between(28.6, 32.3).sum() == 0


def test_edf_and_csv_give_the_wfdb_beats(tiny_onnx, rec100, tmp_path):
    at360, _, _ = rec100
    rec = wfdb.rdrecord(str(at360))
    clf = load_classifier(tiny_onnx)
    want = classify_record(at360, clf, progress=False).beats
    csv = classify_record(write_csv(tmp_path / "r.csv", rec.p_signal, ["MLII"], 360), clf, fs=360, progress=False)
    pd.testing.assert_frame_equal(csv.beats, want)
    edf = classify_record(write_edf(tmp_path / "r.edf", rec.p_signal, 360, ["ECG MLII"]), clf, progress=False)
    assert (edf.beats["sample"].to_numpy() == want["sample"].to_numpy()).mean() > 0.99
    assert edf.lead == "ECG MLII"




def test_edf_plus_d_is_classified_stretch_by_stretch(tiny_onnx, rec100, tmp_path):
    """Each stretch of an EDF+D file gets the beats it gets as a file of its own, moved to its onset; the gap
    holds no beat and is reported; the clock time follows the file's start."""
    import datetime

    at360, _, _ = rec100
    x = wfdb.rdrecord(str(at360)).p_signal
    first, second = x[:60 * 360], x[60 * 360: 150 * 360]
    clf = load_classifier(tiny_onnx)
    start = datetime.datetime(2026, 3, 1, 23, 59, 30)
    path = write_edf_d(tmp_path / "d.edf", [(0, first), (300, second), (400, np.zeros((360, 1)))], 360,
                       ["ECG1"], start=start)
    result = classify_record(path, clf, progress=False)
    alone = [classify_record(write_edf(tmp_path / f"{i}.edf", part, 360, ["ECG1"]), clf, progress=False).beats
             for i, part in enumerate((first, second))]
    got = result.beats
    assert list(got.columns[:3]) == ["sample", "time_s", "clock_time"]
    early, late = got[got["sample"] < 60 * 360], got[got["sample"] >= 300 * 360]
    assert len(early) + len(late) == len(got) and len(early) and len(late)
    np.testing.assert_array_equal(early["sample"].to_numpy(), alone[0]["sample"].to_numpy())
    np.testing.assert_array_equal(late["sample"].to_numpy(), alone[1]["sample"].to_numpy() + 300 * 360)
    np.testing.assert_array_equal(late["pred"].to_numpy(), alone[1]["pred"].to_numpy())
    summary = result.summary()
    assert summary["gaps"] == [{"start_s": 60.0, "duration_s": 240.0}, {"start_s": 390.0, "duration_s": 10.0}]
    assert summary["start"] == "2026-03-01T23:59:30.000" and result.duration_s == 401.0
    # a flat second holds no beat: said, not fatal
    assert [(a, d) for a, d, _ in result.unclassified] == [(400.0, 1.0)]
    row = late.iloc[0]
    assert row["clock_time"] == (start + datetime.timedelta(seconds=float(row["time_s"]))).isoformat(
        timespec="milliseconds")
    assert row["clock_time"].startswith("2026-03-02T00:")  # past midnight: the date moves on


def test_clock_time_from_a_wfdb_base_time(tiny_onnx, rec100, tmp_path):
    at360, _, _ = rec100
    rec = wfdb.rdrecord(str(at360))
    wfdb.wrsamp("timed", fs=360, units=["mV"], sig_name=["MLII"], p_signal=rec.p_signal, fmt=["16"],
                write_dir=str(tmp_path), base_time=__import__("datetime").time(10, 0, 5))
    got = classify_record(tmp_path / "timed", load_classifier(tiny_onnx), progress=False).beats
    assert got["clock_time"].iloc[0] == f"10:00:{5 + got['time_s'].iloc[0]:06.3f}"
    plain = classify_record(at360, load_classifier(tiny_onnx), progress=False).beats
    assert "clock_time" not in plain.columns
    pd.testing.assert_frame_equal(got.drop(columns="clock_time"), plain)


def test_whole_record_mode_adapts_to_the_record_and_says_so(tiny_model, tiny_onnx, rec100, tmp_path):
    """A model that carries an adaptation setting adapts to each record's own beats by default, the same whatever the
    block size and on either backend; adapt=False gives the model as trained, beat for beat."""
    from ecg_utils.data.aami import PROBA_COLUMNS
    from ecg_utils.model.batchnorm import Adaptation
    from ecg_utils.model.export import export_onnx

    at360, _, _ = rec100
    clf = load_classifier(export_onnx(tiny_model, tmp_path / "adaptive.onnx", Adaptation("all", 0.5)))
    adapted = classify_record(at360, clf, beats="atr", progress=False)
    plain = classify_record(at360, clf, beats="atr", progress=False, adapt=False)
    trained = classify_record(at360, load_classifier(tiny_onnx), beats="atr", progress=False)
    assert adapted.adaptation == {"layers": "all", "weight": 0.5, "max_beats": 4096,
                                  "beats_measured": len(adapted.beats)}  # a 5-minute record: every beat measured
    assert adapted.summary()["adaptation"] == adapted.adaptation
    assert plain.adaptation is None and trained.adaptation is None and trained.summary()["adaptation"] is None
    pd.testing.assert_frame_equal(plain.beats, trained.beats)
    proba = adapted.beats[PROBA_COLUMNS].to_numpy()
    assert np.abs(proba - plain.beats[PROBA_COLUMNS].to_numpy()).max() > 1e-2  # adapting changed the model
    pd.testing.assert_frame_equal(classify_record(at360, clf, beats="atr", progress=False, block_s=60).beats,
                                  adapted.beats)
    torch_clf = load_classifier(tiny_model)
    torch_clf.adaptation = Adaptation("all", 0.5)
    via_torch = classify_record(at360, torch_clf, beats="atr", progress=False)
    assert np.abs(via_torch.beats[PROBA_COLUMNS].to_numpy() - proba).max() <= 2e-4  # tables round to 4 decimals
    assert (via_torch.beats.pred == adapted.beats.pred).mean() > 0.99


def test_whole_record_mode_reads_no_label_keeps_no_state_and_leaves_the_stream_as_trained(tiny_model, tiny_onnx,
                                                                                         rec100, tmp_path):
    """The adaptation reads the signal only: the record without its .atr gives the same classes; one record's
    adaptation does not carry over to the next one classified; the stream keeps the model as trained."""
    import shutil

    from ecg_utils.data.aami import PROBA_COLUMNS
    from ecg_utils.data.records import read_record
    from ecg_utils.model.batchnorm import Adaptation
    from ecg_utils.model.export import export_onnx
    from ecg_utils.streaming import StreamingClassifier

    at360, at250, _ = rec100
    clf = load_classifier(export_onnx(tiny_model, tmp_path / "adaptive.onnx", Adaptation("all", 0.5)))
    first = classify_record(at360, clf, progress=False)
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(at360.with_suffix(suffix), unlabelled / f"r360{suffix}")
    without_atr = classify_record(unlabelled / "r360", clf, progress=False)
    columns = ["sample", "pred", *PROBA_COLUMNS]
    pd.testing.assert_frame_equal(without_atr.beats[columns], first.beats[columns])
    assert without_atr.adaptation == first.adaptation
    classify_record(at250, clf, progress=False)  # another record, adapted to its own beats in between
    pd.testing.assert_frame_equal(classify_record(at360, clf, progress=False).beats, first.beats)

    x = read_record(at360).signal
    as_trained = load_classifier(tiny_onnx)
    streams = []
    for c in (clf, as_trained):
        stream = StreamingClassifier(c, 360)
        streams.append([e for i in range(0, len(x), 360) for e in stream.process(x[i:i + 360])])
    assert len(streams[0]) > 300
    assert [(e.sample, e.pred) for e in streams[0]] == [(e.sample, e.pred) for e in streams[1]]
    np.testing.assert_array_equal([e.proba for e in streams[0]], [e.proba for e in streams[1]])
