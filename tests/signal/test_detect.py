import numpy as np
import pytest

from ecg_utils.data.aami import beat_mask
from ecg_utils.data.records import read_record
from ecg_utils.signal.detect import QRSDetector, detect_r_peaks, ec57_counts


@pytest.fixture(scope="module")
def rec100(mitdb_dir):
    return read_record(mitdb_dir / "100")


@pytest.mark.parametrize("record", ["100", "119", "208"])
def test_detects_reference_beats(mitdb_dir, record):
    # 119 has ventricular bigeminy, 208 frequent V and F beats: not only clean sinus rhythm.
    rec = read_record(mitdb_dir / record)
    c = ec57_counts(rec.ann_sample, rec.ann_symbol, detect_r_peaks(rec.signal, rec.fs), rec.fs)
    assert c["tp"] / (c["tp"] + c["fn"]) > 0.97 and c["tp"] / (c["tp"] + c["fp"]) > 0.97, c


def test_meets_the_ec57_target_on_all_records(mitdb_dir):
    # The acceptance figure: Se and +P of at least 99.5 % each over all 48 records.
    from ecg_utils.data.mitdb import RECORDS
    from ecg_utils.signal.detect import detection_table

    t = detection_table(mitdb_dir, RECORDS).sum()
    assert t.tp / (t.tp + t.fn) >= 0.995 and t.tp / (t.tp + t.fp) >= 0.995, t[["tp", "fn", "fp"]].to_dict()


def test_a_tall_p_wave_does_not_pre_empt_the_beat(mitdb_dir):
    # Record 108's P waves are nearly as tall as its QRS complexes in the QRS band; without
    # keeping the largest of competing candidates, a fifth of its beats were found 170 ms early.
    rec = read_record(mitdb_dir / "108")
    c = ec57_counts(rec.ann_sample, rec.ann_symbol, detect_r_peaks(rec.signal, rec.fs), rec.fs)
    assert c["fn"] < 20 and c["fp"] < 50, c


@pytest.mark.parametrize("chunk", [1, 37, 360, 1000])
def test_same_beats_whatever_the_chunk_size(rec100, chunk):
    x = rec100.signal[: 360 * (30 if chunk > 1 else 10)]
    whole = detect_r_peaks(x, 360)
    det = QRSDetector(360)
    streamed = [b for i in range(0, len(x), chunk) for b in det.process(x[i:i + chunk])]
    assert len(whole) > 8
    np.testing.assert_array_equal(streamed, whole)


def test_memory_stays_bounded(rec100):
    det = QRSDetector(360)
    x = rec100.signal
    for i in range(0, len(x), 3600):
        det.process(x[i:i + 3600])
    det.process(np.zeros(360 * 60))  # a minute of lead-off: no beats, noise peaks must not pile up
    assert len(det._bp) <= det._keep and len(det._mwi) <= det._keep
    assert len(det._noise_peaks) < 50


def test_ec57_counting_rules():
    sample = np.array([100, 200, 300, 400, 500, 600, 700])
    symbol = np.array(["N", "N", "[", "N", "]", "N", "+"])
    det = np.array([105, 230, 410, 612, 900])
    c = ec57_counts(sample, symbol, det, fs=100, learning_s=1.5)  # learning period: samples < 150
    # 200 and 230 are 0.30 s apart, beyond the 0.15 s tolerance: a miss and a false detection;
    # 400 and 410 lie in the flutter episode; 600 and 612 (0.12 s apart) match; 900 is a false detection.
    assert c == {"tp": 1, "fn": 1, "fp": 2}
    # the tolerance is 0.15 s: 0.16 s apart is a miss and a false detection
    assert ec57_counts(sample, symbol, np.array([616]), fs=100, learning_s=1.5) == {"tp": 0, "fn": 2, "fp": 1}


def test_detection_table(mitdb_dir):
    from ecg_utils.signal.detect import detection_table

    t = detection_table(mitdb_dir, ["100", "101"])
    assert list(t.index) == ["100", "101"] and (t.se > 0.99).all() and (t.ppv > 0.99).all()
    assert {"tp", "fn", "fp", "se", "ppv"} <= set(t.columns)


def test_r_peaks_sit_on_the_annotated_beats(rec100):
    # The causal band-pass delays the QRS by ~16 samples; the detector takes that off, and
    # refinement on the zero-phase training band moves nearly every peak onto the annotation.
    from ecg_utils.signal.detect import refine_peaks
    from ecg_utils.signal.preprocess import bandpass

    ref = rec100.ann_sample[beat_mask(rec100.ann_symbol)]
    det = detect_r_peaks(rec100.signal, 360)
    refined = refine_peaks(bandpass(rec100.signal, 360, 0.5, 40, 2), det, 18)

    def offsets(d):
        i = np.clip(np.searchsorted(ref, d), 1, len(ref) - 1)
        nearest = np.where(np.abs(ref[i - 1] - d) < np.abs(ref[i] - d), ref[i - 1], ref[i])
        return d - nearest

    assert abs(np.median(offsets(det))) <= 3
    assert np.mean(np.abs(offsets(refined)) <= 3) > 0.95


def test_refine_peaks_moves_to_the_largest_deflection_within_reach():
    from ecg_utils.signal.detect import refine_peaks

    x = np.zeros(100)
    x[[10, 40, 47, 90]] = [5.0, 2.0, -3.0, 9.0]
    # 12 -> 10; 44 -> 47 (|-3| beats 2); 98 -> 93: the spike at 90 is out of reach (±5), and on a
    # flat stretch the first sample of the reach wins.
    np.testing.assert_array_equal(refine_peaks(x, np.array([12, 44, 98]), 5), [10, 47, 93])


def test_search_back_takes_the_largest_missed_peak():
    # Hamilton & Tompkins' search-back: after a long gap, the largest peak above half the threshold is the missed
    # beat. Here a small beat (below the threshold) is followed by a smaller bump; taking the latest candidate
    # instead (as the detector once did) reports the bump, 0.5 s after the beat.
    fs = 360
    t = np.arange(30 * fs) / fs

    def pulse(at: float, amp: float) -> np.ndarray:
        return amp * np.exp(-0.5 * ((t - at) / 0.010) ** 2)

    beats = [0.5 + 0.8 * k for k in range(20)] + [17.7 + 0.8 * k for k in range(8)]
    missed = beats[19] + 0.8
    x = sum(pulse(b, 1.0) for b in beats) + pulse(missed, 0.25) + pulse(missed + 0.5, 0.2)
    found = detect_r_peaks(x, fs) / fs
    assert np.abs(found - missed).min() < 0.02, found[18:24]
    assert np.abs(found - (missed + 0.5)).min() > 0.2, found[18:24]
    assert len(found) == len(beats) + 1


@pytest.mark.parametrize("chunk", [1, 37, 360, 1000, 90_000])
def test_the_same_beats_over_minutes_and_a_pause_whatever_the_chunk_size(chunk):
    # A stretch longer than the minute the detector decides on at once, in one piece, in several or sample by sample;
    # with a 6-second pause in which search-back takes a bump for the missed beat (how far back it may look is
    # counted in whole seconds of the signal, not in chunks). A block's candidates are measured in array operations,
    # a short chunk's one by one: the same beats.
    fs = 360
    t = np.arange(100 * fs) / fs

    def pulse(at: float, amp: float) -> np.ndarray:
        return amp * np.exp(-0.5 * ((t - at) / 0.010) ** 2)

    beats = [0.5 + 0.8 * k for k in range(80)] + [70.3 + 0.8 * k for k in range(36)]
    x = sum(pulse(b, 1.0) for b in beats) + pulse(64.6, 0.16) + pulse(68.1, 0.1)
    whole = detect_r_peaks(x, fs)
    det = QRSDetector(fs)
    streamed = [b for i in range(0, len(x), chunk) for b in det.process(x[i:i + chunk])]
    np.testing.assert_array_equal(streamed, whole)
    found = whole / fs
    assert np.abs(found - 64.6).min() < 0.02 and np.abs(found - 68.1).min() > 0.2  # search-back took the larger bump
    assert all(np.abs(found - b).min() < 0.02 for b in beats)


def test_refine_peaks_gives_what_a_beat_by_beat_search_gives():
    from ecg_utils.signal.detect import refine_peaks

    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=2000), 1)  # rounded: ties, where the first largest sample must win
    peaks = np.sort(rng.choice(np.arange(-3, 2003), 300)).clip(0, 1999)
    one_by_one = [max(0, p - 7) + int(np.argmax(np.abs(x[max(0, p - 7): p + 8]))) for p in peaks]
    np.testing.assert_array_equal(refine_peaks(x, peaks, 7), one_by_one)


def _pulses(fs: int, seconds: float, at: list[tuple[float, float]]) -> np.ndarray:
    t = np.arange(round(seconds * fs)) / fs
    return sum(amp * np.exp(-0.5 * ((t - b) / 0.010) ** 2) for b, amp in at)


@pytest.mark.parametrize(("rhythm_check", "fs"), [(True, 360), (False, 360), (True, 128), (True, 250)])
def test_rhythm_check_drops_a_weak_early_peak_the_rhythm_ignores_and_keeps_an_ectopic_beat(rhythm_check, fs):
    # A regular rhythm (0.8 s). At 12.1 s a weak peak half-way between two beats: the next beat comes on time
    # (12.5 s), so it was noise. At 20.1 s a weak early beat after which the rhythm starts again from it (the next
    # beat at 20.9 s, 1.2 s after the one before): an ectopic beat, kept. Without the check both are beats. The rule
    # reads intervals and heights, not samples: the same at other sampling rates.
    beats = [0.5 + 0.8 * k for k in range(25)] + [20.1] + [20.9 + 0.8 * k for k in range(10)]
    x = _pulses(fs, 30, [(b, 0.5 if b == 20.1 else 1.0) for b in beats] + [(12.1, 0.5)])
    found = detect_r_peaks(x, fs) if rhythm_check else np.asarray(QRSDetector(fs, rhythm_check=False).process(x))
    found = found / fs
    assert all(np.abs(found - b).min() < 0.02 for b in beats)  # the ectopic beat too, either way
    assert (np.abs(found - 12.1).min() < 0.02) != rhythm_check  # the noise peak, only without the check
    assert len(found) == len(beats) + (not rhythm_check)


def test_rhythm_check_waits_for_nothing_in_an_irregular_rhythm():
    # The same weak peak between two beats, in an irregular rhythm (intervals of 0.6 to 1.0 s, as in atrial
    # fibrillation), 0.4 s after a beat with the next one 0.8 s after it (on time for the mean interval): no rhythm
    # tells it from a beat, so it is kept as without the check.
    fs = 360
    rr = np.resize([0.6, 1.0, 0.7, 0.95, 0.65, 0.9, 0.8], 35)
    beats = 0.5 + np.concatenate([[0], np.cumsum(rr)])
    extra = beats[20] + 0.4
    assert rr[20] == 0.8
    x = _pulses(fs, beats[-1] + 1, [(b, 1.0) for b in beats] + [(extra, 0.5)])
    found = detect_r_peaks(x, fs) / fs
    assert np.abs(found - extra).min() < 0.02 and len(found) == len(beats) + 1


@pytest.mark.parametrize("chunk", [1, 37, 360, 1000])
def test_rhythm_check_gives_the_same_beats_whatever_the_chunk_size(mitdb_dir, nstdb_dir, chunk):
    # Electrode motion noise at 6 dB on record 100 (after its first five minutes, as the noise stress test adds
    # it): beats wait for the rhythm check across chunk boundaries, and the stream gives what the whole signal gives.
    from ecg_utils.evaluate.robustness import read_noise, with_noise

    rec = read_record(mitdb_dir / "100", ["MLII"])
    x = with_noise(rec, read_noise(nstdb_dir, "em"), 6.0)[0][300 * 360: 300 * 360 + 360 * (60 if chunk > 1 else 20)]
    whole = detect_r_peaks(x, 360)
    det = QRSDetector(360)
    streamed = [b for i in range(0, len(x), chunk) for b in det.process(x[i:i + chunk])]
    np.testing.assert_array_equal(streamed, whole)
    assert len(whole) != len(QRSDetector(360, rhythm_check=False).process(x))  # the check acted on this stretch
