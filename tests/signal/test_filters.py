"""Stream filters: chunked equals whole, and forward stream + local backward pass equals zero-phase filtering."""

import numpy as np
import pytest
from scipy import signal as sps

from ecg_utils.data.records import read_record
from ecg_utils.errors import DataError
from ecg_utils.signal import filters
from ecg_utils.signal.filters import FIRFilter, SectionFilter, StreamResampler, backward, lfilter, resample_ratio


@pytest.fixture(scope="module")
def x(mitdb_dir):
    return read_record(mitdb_dir / "208").signal[: 360 * 60]


@pytest.fixture(scope="module")
def sos():
    return sps.butter(2, [0.5, 40], btype="bandpass", fs=360, output="sos")


def _chunked(make, x, chunk):
    f = make()
    return np.concatenate([f(x[i:i + chunk]) for i in range(0, len(x), chunk)])


@pytest.mark.parametrize("chunk", [1, 36, 1000])
def test_section_filter_is_sosfilt_from_the_steady_state(x, sos, chunk):
    expected, _ = sps.sosfilt(sos, x, zi=sps.sosfilt_zi(sos) * x[0])
    np.testing.assert_allclose(_chunked(lambda: SectionFilter(sos), x, chunk), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("compiled", [True, False])
def test_lfilter_is_scipys_to_the_bit_on_rows_and_on_one_signal(x, sos, compiled, monkeypatch):
    # The compiled recursion called directly, or scipy's public function where a release has moved it.
    if not compiled:
        monkeypatch.setattr(filters, "_linear_filter", None)
    b, a = sos[0, :3].copy(), sos[0, 3:].copy()
    rows = np.stack([x[:500], x[500:1000]])
    for signal, zi in ((x, np.full(2, 0.3)), (rows, np.full((2, 2), 0.3))):
        y, zf = lfilter(b, a, signal, zi)
        y_ref, zf_ref = sps.lfilter(b, a, signal, axis=-1, zi=zi)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(zf, zf_ref)


def test_section_filter_starts_without_a_transient(sos):
    # A constant input (a raw ECG's DC offset) gives the band-pass's steady state, zero, from the first sample.
    np.testing.assert_allclose(SectionFilter(sos)(np.full(100, -0.7)), 0.0, atol=1e-9)


@pytest.mark.parametrize("chunk", [1, 7, 360])
def test_fir_filter_chunked_equals_whole_to_the_bit(x, chunk):
    taps = np.full(54, 1 / 54)
    whole = FIRFilter(taps)(x)
    np.testing.assert_array_equal(_chunked(lambda: FIRFilter(taps), x, chunk), whole)
    np.testing.assert_allclose(whole, np.convolve(x, taps)[: len(x)], atol=1e-12)


def test_backward_pass_over_a_stretch_matches_zero_phase_filtering(x, sos):
    # The streaming classifier's scheme: forward over the stream, backward over a stretch that ends
    # 1 s (the run-in) after the part that is used.
    zero_phase = sps.sosfiltfilt(sos, x)
    forward = SectionFilter(sos)(x)
    ends = np.arange(2000, len(x) - 1, 997)
    stretches = np.stack([forward[e - 1000: e] for e in ends])
    used = backward(sos, stretches)[:, :640]  # all but the last 360 samples (1 s)
    expected = np.stack([zero_phase[e - 1000: e - 360] for e in ends])
    err = np.abs(used - expected).max(axis=1) / zero_phase.std()
    assert np.median(err) < 0.05 and err.max() < 0.1, (np.median(err), err.max())


@pytest.mark.parametrize(("up", "down"), [(36, 25), (25, 36), (1, 2)])
@pytest.mark.parametrize("chunk", [1, 37, 5000])
def test_stream_resampler_is_resample_poly_whatever_the_chunk_size(x, up, down, chunk):
    r = StreamResampler(up, down)
    y = np.concatenate([r(x[i:i + chunk]) for i in range(0, len(x), chunk)])
    expected = sps.resample_poly(x, up, down)
    assert len(expected) - len(y) <= 10 * max(up, down) // down + 1  # the look-ahead not yet arrived
    np.testing.assert_allclose(y, expected[: len(y)], rtol=0, atol=1e-12)


def test_resample_ratio():
    assert resample_ratio(250, 360) == (36, 25) and resample_ratio(360, 360) == (1, 1)
    assert resample_ratio(128, 360) == (45, 16)


@pytest.mark.parametrize(("fs", "message"), [(50.0, "outside the supported 100-10000 Hz"),
                                             (1e9, "outside the supported"), (float("nan"), "outside the supported"),
                                             (333.3333, "no exact ratio")])
def test_unsupported_rates_are_refused(fs, message):
    with pytest.raises(DataError, match=message):
        resample_ratio(fs, 360)


def test_common_device_rates_resample_exactly():
    for fs in (125, 128, 200, 250, 256, 300, 500, 512, 1000, 1024, 2048, 4096, 8192, 10_000):
        up, down = resample_ratio(fs, 360)
        assert up * fs == 360 * down
