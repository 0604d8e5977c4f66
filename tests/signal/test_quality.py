"""The signal-quality gate: flat lines, clipping and noise marked, clean beats left alone, chunk-size invariant."""

import json
from dataclasses import replace

import numpy as np
import pytest
import wfdb
from scipy import signal as sps

from ecg_utils.classify import classify_source
from ecg_utils.data.readers import ArraySource
from ecg_utils.errors import DataError
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH
from ecg_utils.paths import REPORTS_DIR
from ecg_utils.signal.detect import detect_r_peaks
from ecg_utils.signal.filters import SectionFilter
from ecg_utils.signal.quality import GateConfig, SignalQuality, published_gate
from ecg_utils.streaming import StreamingClassifier

FS = 360
GATE = GateConfig(min_snr_db=11.0)  # a threshold near the calibrated one
BEFORE, AFTER = round(0.25 * FS), round(0.45 * FS)


@pytest.fixture(scope="module")
def ecg(mitdb_dir) -> np.ndarray:
    """Two minutes of record 100's MLII: a clean ECG to spoil."""
    rec = wfdb.rdrecord(str(mitdb_dir / "100"), channel_names=["MLII"], sampto=120 * FS)
    return rec.p_signal[:, 0].copy()


def _spoilt(x: np.ndarray) -> np.ndarray:
    """Flat 30-35 s, clipped 50-60 s (at 40 % of the way from the median to the top), noisy 75-95 s."""
    y = x.copy()
    y[30 * FS: 35 * FS] = y[30 * FS]
    med = np.median(x)
    level = med + 0.4 * (x.max() - med)
    y[50 * FS: 60 * FS] = np.minimum(y[50 * FS: 60 * FS], level)
    y[75 * FS: 95 * FS] += np.random.default_rng(0).normal(scale=0.5, size=20 * FS)
    return y


def _gate_peaks(x: np.ndarray, peaks: np.ndarray, config: GateConfig) -> list:
    quality = SignalQuality(FS, config, BEFORE, AFTER)
    return quality.process(x, peaks) + quality.finish()


def _gate(x: np.ndarray, chunk: int, config: GateConfig = GATE) -> tuple[list, float]:
    quality, detector_peaks = SignalQuality(FS, config, BEFORE, AFTER), detect_r_peaks(x, FS)
    out = []
    for i in range(0, len(x), chunk):
        new = detector_peaks[(detector_peaks >= i) & (detector_peaks < i + chunk)]
        out.extend(quality.process(x[i:i + chunk], new))
    out.extend(quality.finish())
    return out, quality.flat_samples / FS


def _in(beats: list, lo_s: float, hi_s: float) -> list:
    return [b for b in beats if lo_s * FS <= b.r < hi_s * FS]


def test_each_kind_of_bad_stretch_is_marked_and_clean_beats_are_not(ecg):
    beats, flat_s = _gate(_spoilt(ecg), len(ecg))
    assert flat_s == pytest.approx(5.0, abs=0.01)
    assert all(b.reason == "" for b in _in(beats, 3, 29)), "clean beats before any damage stay readable"
    assert {b.reason for b in _in(beats, 29.5, 35.5)} <= {"flat"} and not _in(beats, 30.5, 34.5)
    clipped = _in(beats, 50.5, 59.5)
    assert clipped and all(b.reason == "clipped" for b in clipped)
    noisy = _in(beats, 80, 95)
    assert noisy and np.mean([b.reason == "noise" for b in noisy]) > 0.9
    assert all(b.reason == "" for b in _in(beats, 105, 119)), "readable again once the noise is over"


@pytest.mark.parametrize("config", [GATE, replace(GATE, qrs_s=(0.1, 0.15), window_s=5.0),
                                    replace(GATE, min_snr_db=14.0, min_similarity=97.0),
                                    replace(GATE, min_snr_db=14.0, min_similarity=97.0, recover_beats=5)],
                         ids=["whole", "away", "shape", "recover"])
def test_scores_do_not_depend_on_chunk_size(ecg, config):
    x = _spoilt(ecg)
    whole, flat = _gate(x, len(x), config)
    for chunk in (1, 37, FS, 7 * FS + 11):
        got, got_flat = _gate(x, chunk, config)
        assert got_flat == flat
        assert [(b.r, b.reason) for b in got] == [(b.r, b.reason) for b in whole]
        np.testing.assert_array_equal([b.snr_db for b in got], [b.snr_db for b in whole])
        np.testing.assert_array_equal([b.similarity for b in got], [b.similarity for b in whole])


def test_predict_reports_unreadable_beats_as_q_and_says_why(ecg):
    clf = load_classifier(MODEL_PATH)
    result = classify_source(ArraySource(_spoilt(ecg), FS, "spoilt", "MLII"), clf, progress=False, gate=GATE)
    beats, summary = result.beats, result.summary()
    assert summary["flat_s"] == pytest.approx(5.0, abs=0.01)
    assert summary["unreadable"]["flat"] + summary["unreadable"]["clipped"] + summary["unreadable"]["noise"] > 20
    assert (beats.pred[beats.unreadable != ""] == "Q").all()
    inside_flat = beats[(beats.time_s > 30.3) & (beats.time_s < 34.7)]
    assert inside_flat.empty, "no beats inside a flat line"
    ungated = classify_source(ArraySource(_spoilt(ecg), FS, "spoilt", "MLII"), clf, progress=False, gate=None).beats
    assert (ungated.unreadable == "").all() and (ungated.pred != "Q").any()
    np.testing.assert_array_equal(ungated.quality_db, beats.quality_db)


def test_stream_gate_is_the_same_whatever_the_chunk_size(ecg):
    clf, x = load_classifier(MODEL_PATH), _spoilt(ecg)

    def run(chunk: int) -> list:
        stream = StreamingClassifier(clf, FS, gate=GATE)
        # (NaN, a score not measured yet, as None: NaN equals nothing, itself included)
        return [(e.sample, e.pred, e.unreadable, *(None if np.isnan(v) else v for v in (e.quality_db, e.similarity)))
                for i in range(0, len(x), chunk) for e in stream.process(x[i:i + chunk])]

    whole = run(len(x))
    assert {u for _, _, u, *_ in whole} >= {"", "noise", "clipped"}
    assert all(p == "Q" for _, p, u, *_ in whole if u)
    for chunk in (36, FS, 5 * FS + 7):
        assert run(chunk) == whole


@pytest.fixture(scope="module")
def rec208(mitdb_dir) -> tuple[np.ndarray, np.ndarray]:
    """The first minute of record 208 (it opens with a run of ventricular beats) and its detected beats."""
    x = wfdb.rdrecord(str(mitdb_dir / "208"), channel_names=["MLII"], sampto=60 * FS).p_signal[:, 0].copy()
    return x, detect_r_peaks(x, FS)


def test_208s_opening_run_of_ventricular_beats_is_not_gated(rec208):
    """Record 208 opens with wide ventricular beats whose first scores fall below the published threshold (the
    noise window holds their QRS complexes); the warm-up keeps them readable, and nothing in its first 30 s is
    gated. Measured away from the QRS complexes, those first beats score higher."""
    x, peaks = rec208
    gate = published_gate()
    beats = _gate_peaks(x, peaks, gate)
    measured = [b for b in beats if not np.isnan(b.snr_db)]
    assert any(b.snr_db < gate.min_snr_db for b in measured[: gate.beats - 1])  # what the warm-up is there for
    assert not [b for b in beats if b.r < 30 * FS and b.reason]
    away = [b.snr_db for b in _gate_peaks(x, peaks, replace(gate, qrs_s=(0.1, 0.15))) if not np.isnan(b.snr_db)]
    assert min(away[:5]) > max(b.snr_db for b in measured[:5])


def test_the_noise_level_leaves_the_qrs_complexes_out():
    """A clean synthetic ECG of wide complexes: with the QRS in the noise window its SNR is modest, without it the
    noise is only the small noise added, and the score says so."""
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.01, size=30 * FS)
    t = np.arange(-round(0.08 * FS), round(0.08 * FS))
    peaks = np.arange(FS, 29 * FS, round(0.5 * FS))  # 120 beats a minute of 160 ms complexes
    for p in peaks:
        x[p + t] += np.sin(np.pi * (t + len(t) / 2) / len(t) * 3)
    masked = [b.snr_db for b in _gate_peaks(x, peaks, GateConfig(qrs_s=(0.1, 0.15)))][20:-5]
    whole = [b.snr_db for b in _gate_peaks(x, peaks, GateConfig(qrs_s=(0.0, 0.0)))][20:-5]
    assert min(masked) > max(whole) + 10


def test_a_record_that_starts_in_noise_is_gated_only_once_the_score_has_its_beats(ecg):
    """The warm-up: the first `beats` measured beats are never gated for noise; from there on noise is."""
    x = ecg.copy()
    x[: 40 * FS] += np.random.default_rng(1).normal(scale=0.5, size=40 * FS)
    beats = _gate_peaks(x, detect_r_peaks(x, FS), GATE)
    measured = [b for b in beats if not np.isnan(b.snr_db)]
    assert not any(b.reason for b in measured[: GATE.beats - 1])
    later = [b for b in measured[GATE.beats:] if b.r < 38 * FS]
    assert later and np.mean([b.reason == "noise" for b in later]) > 0.9


@pytest.mark.parametrize("config", [GATE, replace(GATE, min_snr_db=14.0, min_similarity=97.0)], ids=["snr", "shape"])
def test_the_gate_lets_go_a_few_beats_after_the_noise_ends_with_a_short_median_beside_the_long(ecg, config):
    """The median of 15 beats holds the noise's low figures for half its length after a noisy stretch ends; the
    higher of it and the median of the last 5 beats lets go within 3 beats, and the stretch itself stays gated."""
    x = _spoilt(ecg)

    def gated_after_the_noise(cfg: GateConfig) -> tuple[int, float]:
        beats, _ = _gate(x, len(x), cfg)
        after = [b for b in beats if b.r >= 95 * FS + AFTER]  # windows wholly after the noise
        first_readable = next(i for i, b in enumerate(after) if b.reason == "")
        assert not any(b.reason for b in after[first_readable:]), "once readable, readable until the end"
        return first_readable, float(np.mean([b.reason == "noise" for b in _in(beats, 80, 95)]))

    held, inside = gated_after_the_noise(config)
    recovered, inside_recover = gated_after_the_noise(replace(config, recover_beats=5))
    assert held >= 5 and recovered <= 3
    assert inside == inside_recover == 1.0


def test_gate_parameters_are_checked():
    with pytest.raises(DataError, match="unknown parameter"):
        GateConfig.from_dict({"min_snr": 3})
    with pytest.raises(DataError, match="band_hz"):
        GateConfig(band_hz=(20.0, 8.0))
    with pytest.raises(DataError, match="qrs_s"):
        GateConfig(qrs_s=(0.1, -0.1))
    assert GateConfig.from_dict(GateConfig(qrs_s=(0.05, 0.2)).to_dict()) == GateConfig(qrs_s=(0.05, 0.2))
    with pytest.raises(DataError, match="sampling rate"):
        SignalQuality(30.0, GateConfig(), 5, 10)
    with pytest.raises(DataError, match="min_similarity without min_snr_db"):
        GateConfig(min_similarity=95.0)
    with pytest.raises(DataError, match="recover_beats=15"):
        GateConfig(beats=15, recover_beats=15)
    with pytest.raises(DataError, match="shape_beats"):
        GateConfig(shape_beats=0)
    with pytest.raises(DataError, match="shape_s=0.5 s reaches past"):
        SignalQuality(FS, GateConfig(shape_s=0.5), BEFORE, AFTER)
    both = GateConfig(min_snr_db=14.0, min_similarity=96.0, shape_s=0.1)
    assert GateConfig.from_dict(both.to_dict()) == both


def test_shipped_gate_is_the_one_calibrated_in_reports():
    report = json.loads((REPORTS_DIR / "quality_gate.json").read_text())
    assert GateConfig.from_dict(report["gate"]) == published_gate()
    assert published_gate().min_snr_db is not None
    assert set(report["calibration"]["records"]).isdisjoint({"100", "103", "105", "111", "113", "117", "121", "123",
                                                             "200", "202", "210", "212", "213", "214", "219", "221",
                                                             "222", "228", "231", "232", "233", "234"}), "DS1 only"


def _reference_reason(x: np.ndarray, r: int, hi: int, flat: int, clip: int) -> str:
    """The flat and clipping rules as stated, run by run over the beat's window and the history before it."""
    lo = max(0, r - BEFORE - flat - FS)
    seg, w_lo = x[lo:hi], max(0, r - BEFORE) - lo
    window = seg[w_lo:]
    mid, half_range = float(np.median(window)), 0.5 * float(np.ptp(window))
    a, found = 0, ""
    while a < len(seg):
        b = a
        while b < len(seg) and seg[b] == seg[a]:
            b += 1
        if b > w_lo and b - a >= clip:
            if b - a >= flat:
                return "flat"
            v, left, right = seg[a], seg[a - 1] if a else None, seg[b] if b < len(seg) else None
            top = (left is None or left < v) and (right is None or right < v) and v - mid > half_range
            bottom = (left is None or left > v) and (right is None or right > v) and mid - v > half_range
            found = found or ("clipped" if top or bottom else "")
        a = b
    return found


@pytest.mark.parametrize("recover", [None, 5])
def test_scores_and_reasons_are_the_plain_rules_computed_beat_by_beat(ecg, recover):
    """What the gate computes in array operations and with its shortcuts (the clipping rule reads the window's
    median only where a run could be that far from it) is, beat by beat, the stated rule: the local SNR from the
    QRS amplitude and the median |band-passed signal| of the noise window, the score the median of the last
    beats' figures (with `recover_beats`, the higher of it and the median of the last few), and the flat and clipping
    rules run over the samples."""
    # Plateaus of every kind: quantised T-wave tops and R peaks, runs on slopes and in the baseline.
    x = np.round(_spoilt(ecg) * 40) / 40
    peaks = detect_r_peaks(x, FS)
    gate = GateConfig(recover_beats=recover)
    beats = _gate_peaks(x, peaks, gate)
    flat, clip = round(gate.flat_s * FS), round(gate.clip_s * FS)
    reasons = [_reference_reason(x, b.r, min(b.r + AFTER, len(x)), flat, clip) for b in beats]
    assert [b.reason for b in beats] == reasons
    assert {"", "flat", "clipped"} <= set(reasons)

    filt = SectionFilter(sps.butter(2, gate.band_hz, btype="bandpass", fs=FS, output="sos"))(x)
    win, half = round(gate.window_s * FS), round(0.05 * FS)
    local = []
    for b in beats:
        hi = b.r + AFTER
        if hi > len(x) or hi - win < 0 or b.r - half < 0:
            continue
        sigma = np.sort(np.abs(filt[hi - win:hi]))[win // 2] / 0.6745  # the upper middle of an even count
        amp = np.ptp(filt[b.r - half: min(b.r + half + round(0.02 * FS), hi)])
        local.append(20 * np.log10(amp / (2 * np.sqrt(2) * sigma)))
        expected = max(np.median(local[-gate.beats:]), np.median(local[-(recover or gate.beats):]))
        assert b.snr_db == pytest.approx(expected, abs=1e-9)
    assert len(local) > 100


def test_similarity_tells_a_repeating_ecg_from_noise(ecg):
    """Clean beats repeat their QRS shape (similarity near 100 %); in noise they do not. With both thresholds a beat is
    noise only where its SNR score and its similarity score are both low: a clean stretch of low SNR stays readable."""
    x = _spoilt(ecg)
    beats, _ = _gate(x, len(x), GateConfig(min_snr_db=30.0, min_similarity=90.0))
    clean, noisy = _in(beats, 5, 29), _in(beats, 80, 95)
    assert min(b.similarity for b in clean) > 95 and max(b.similarity for b in noisy) < 90
    assert all(b.reason == "" for b in clean) and all(b.reason == "noise" for b in noisy)
    assert all(b.snr_db < 30 for b in clean)  # the SNR rule alone would have gated them
