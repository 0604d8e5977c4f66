"""Streaming classification: the same beats and classes whatever the chunk size, bounded memory, bad input."""

import numpy as np
import pytest
from scipy import signal as sps

from ecg_utils.classify import classify_record
from ecg_utils.data.records import read_record
from ecg_utils.errors import DataError
from ecg_utils.model.inference import load_classifier
from ecg_utils.streaming import StreamingClassifier

MINUTES = 3


@pytest.fixture(scope="module")
def clf(tiny_model):
    return load_classifier(tiny_model)


@pytest.fixture(params=["tiny_model", "tiny_rhythm_model"], ids=["plain", "rhythm"])
def any_clf(request):
    """The model without and with rhythm context: the stream computes the RR features each reads."""
    return load_classifier(request.getfixturevalue(request.param))


@pytest.fixture(scope="module")
def signal(mitdb_dir):
    return read_record(mitdb_dir / "119").signal[: MINUTES * 60 * 360]  # ventricular bigeminy: not only N beats


def _stream(clf, x, chunk):
    s = StreamingClassifier(clf, 360)
    return [e for i in range(0, len(x), chunk) for e in s.process(x[i:i + chunk])]


@pytest.mark.parametrize("chunk", [36, 360, 1000])
def test_same_beats_and_classes_whatever_the_chunk_size(any_clf, signal, chunk):
    whole = _stream(any_clf, signal, len(signal))
    chunked = _stream(any_clf, signal, chunk)
    assert len(whole) > 150
    assert [e.sample for e in chunked] == [e.sample for e in whole]
    assert [e.pred for e in chunked] == [e.pred for e in whole]
    np.testing.assert_allclose([e.proba for e in chunked], [e.proba for e in whole], atol=1e-5)


@pytest.mark.parametrize("chunk", [14, 36])
def test_samples_waiting_for_the_detector_band_pass_and_gate_delay_no_beat(clf, signal, chunk):
    # The detector waits for half a second of short chunks until a beat's stretch has arrived; the rest waits until
    # a beat is due. A stream made to run everything on every chunk must give each beat on the same chunk, with the
    # same class.
    def by_chunk(eager):
        s = StreamingClassifier(clf, 360)
        if eager:
            s._most_waiting = s._detect_every = 0
        return [(i, e.sample, e.pred) for i in range(0, len(signal), chunk) for e in s.process(signal[i:i + chunk])]

    lazy, eager = by_chunk(False), by_chunk(True)
    assert len(lazy) > 150 and lazy == eager


def test_latency_and_agreement_with_the_offline_classifier(any_clf, signal, mitdb_dir):
    events = _stream(any_clf, signal, 36)
    latency = np.array([e.latency_s for e in events])
    # Window end (0.45 s) + refinement reach (0.05 s) + backward-pass run-in (1 s) after the detected
    # peak, less up to 0.05 s that refinement may move the peak later; chunks of 0.1 s add up to 0.1 s.
    assert 1.45 <= latency.min() and np.median(latency) < 1.7
    offline = classify_record(mitdb_dir / "119", any_clf, beats="detect", progress=False).beats
    offline = offline[offline["sample"] < len(signal) - 4 * 360].set_index("sample")
    streamed = {e.sample: e.pred for e in events}
    # The same detector and the same refinement on the same band: the same R peaks, almost always
    # to the sample; the classes differ only where the running scale and RR mean differ from the
    # whole record's.
    same = offline.index.intersection(list(streamed))
    assert len(same) >= 0.99 * len(offline)
    assert np.mean([streamed[k] == offline.pred[k] for k in same]) >= 0.97


def test_memory_stays_bounded(clf, signal):
    s = StreamingClassifier(clf, 360)
    for i in range(0, len(signal), 3600):
        s.process(signal[i:i + 3600])
    s.process(np.zeros(360 * 30))  # half a minute of flat line: pending beats leave, nothing piles up
    assert len(s._buf) <= s._keep and len(s._cs) <= s._keep and len(s._pending) <= 1
    assert len(s.detector._bp) <= s.detector._keep and len(s.detector._noise_peaks) < 50


def test_memory_stays_bounded_with_resampling(clf, signal):
    at250 = sps.resample_poly(signal, 25, 36)
    s = StreamingClassifier(clf, 250)
    sizes = []
    for i in range(0, len(at250), 2500):
        s.process(at250[i:i + 2500])
        sizes.append((len(s._resampler._history), len(s._buf), len(s._pending)))
    assert len({size[0] for size in sizes}) == 1 and max(size[1] for size in sizes) <= s._keep
    assert max(size[2] for size in sizes) <= 10


def test_a_device_at_another_sampling_rate(clf, signal):
    # The same minutes at 250 Hz, as a device would send them: resampled on the fly to the model's
    # 360 Hz, with the beats reported at 250 Hz.
    at250 = sps.resample_poly(signal, 25, 36)
    s = StreamingClassifier(clf, 250)
    events = [e for i in range(0, len(at250), 25) for e in s.process(at250[i:i + 25])]
    reference = _stream(clf, signal, 36)
    assert len(events) == len(reference)
    expected = np.round(np.array([e.sample for e in reference]) * 250 / 360)
    assert np.abs(np.array([e.sample for e in events]) - expected).max() <= 1
    assert np.mean([a.pred == b.pred for a, b in zip(events, reference)]) > 0.97
    assert min(e.latency_s for e in events) >= 1.45


def test_bad_input(clf):
    with pytest.raises(DataError, match="sampling rate 0 Hz"):
        StreamingClassifier(clf, 0)
    with pytest.raises(DataError, match="NaN samples in the stream"):
        StreamingClassifier(clf, 360).process(np.array([0.1, np.nan]))
    assert StreamingClassifier(clf, 360).process(np.zeros(0)) == []
