import numpy as np
import pytest
from scipy import signal as sps

from ecg_utils.signal.preprocess import (
    PreprocessConfig,
    RhythmState,
    _quantile_of_sorted,
    bandpass,
    rr_features,
    segment,
    zscore,
)

FS = 360


def _gain(freq_hz: float, seconds: float = 60) -> float:
    t = np.arange(int(seconds * FS)) / FS
    x = np.sin(2 * np.pi * freq_hz * t)
    y = bandpass(x, FS, 0.5, 40.0)
    mid = slice(len(t) // 4, 3 * len(t) // 4)  # away from the edge transients
    return np.std(y[mid]) / np.std(x[mid])


@pytest.mark.parametrize("freq, lo, hi", [
    (0.05, 0.0, 0.02),   # baseline wander: removed
    (0.2, 0.0, 0.2),
    (5.0, 0.97, 1.01),   # P/T waves and QRS band: kept
    (15.0, 0.97, 1.01),
    (60.0, 0.0, 0.2),    # mains interference: removed
    (120.0, 0.0, 0.02),
])  # fmt: skip
def test_bandpass_frequency_response(freq, lo, hi):
    assert lo <= _gain(freq) <= hi


def test_bandpass_corner_is_minus_6_db():
    # sosfiltfilt applies the 2nd-order filter twice: the corners sit at half amplitude.
    sos = sps.butter(2, [0.5, 40], btype="bandpass", fs=FS, output="sos")
    _, h = sps.sosfreqz(sos, worN=[0.5, 40], fs=FS)
    np.testing.assert_allclose(np.abs(h) ** 2, 0.5, atol=0.02)
    assert 0.45 <= _gain(40.0) <= 0.55


def test_bandpass_is_zero_phase():
    x = np.zeros(FS * 10)
    x[FS * 5] = 1.0  # an impulse: a zero-phase filter keeps its peak in place
    y = bandpass(x, FS, 0.5, 40.0)
    assert int(np.argmax(y)) == FS * 5


def test_bandpass_rejects_nan_with_position():
    x = np.zeros(1000)
    x[400:410] = np.nan
    with pytest.raises(ValueError, match=r"10 NaN samples \(first at sample 400"):
        bandpass(x, FS, 0.5, 40.0)


def test_segment_drops_windows_that_leave_the_record():
    x = np.arange(100, dtype=float)
    windows, keep = segment(x, np.array([2, 3, 50, 96, 97, 98]), before=3, after=3)
    # 2 starts at -1: dropped; 3 starts at 0: kept; 97 ends at 100 (exclusive): kept; 98: dropped
    assert keep.tolist() == [False, True, True, True, True, False]
    np.testing.assert_array_equal(windows[0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(windows[-1], [94, 95, 96, 97, 98, 99])
    assert windows.shape == (4, 6)


def test_segment_puts_the_r_peak_at_index_before():
    x = np.zeros(1000)
    x[500] = 7.0
    windows, _ = segment(x, np.array([500]), before=90, after=162)
    assert windows.shape == (1, 252) and np.argmax(windows[0]) == 90


def test_rr_features():
    r = np.array([0, 360, 720, 1260, 1440])  # RR: 1.0, 1.0, 1.5, 0.5 s
    config = PreprocessConfig(local_rr_beats=2, mean_rr_beats=4, mean_rr_stat="mean")
    rr = rr_features(r, FS, config, rhythm=False)
    assert rr.shape == (5, 4)
    np.testing.assert_allclose(rr[:, 0], [1.0, 1.0, 1.0, 1.5, 0.5])  # previous (first borrows next)
    np.testing.assert_allclose(rr[:, 1], [1.0, 1.0, 1.5, 0.5, 0.5])  # next (last borrows previous)
    np.testing.assert_allclose(rr[:, 2], [1.0, 1.0, 1.0, 1.25, 1.0])  # causal mean of last 2 previous
    np.testing.assert_allclose(rr[:, 3], [1.0, 1.0, 1.0, 1.125, 1.0])  # causal mean of last 4 previous
    # Causal: a beat's features do not change when later beats are added.
    np.testing.assert_array_equal(rr_features(r[:4], FS, config, rhythm=False)[:3], rr[:3])
    with pytest.raises(ValueError, match="at least 2 beats"):
        rr_features(np.array([5]), FS, config)


def test_rhythm_features_follow_the_underlying_cycle_not_the_early_beats():
    # Previous RR: 1.0 (borrowed), 1.0, 0.6 (early), 1.4 (pause), 1.0 s
    r = np.array([0, 360, 576, 1080, 1440])
    config = PreprocessConfig(sinus_beats=3, sinus_quantile=0.5, irregularity_beats=3)
    rr = rr_features(r, FS, config)
    np.testing.assert_array_equal(rr[:, :4], rr_features(r, FS, config, rhythm=False))
    np.testing.assert_allclose(rr[:, 4], [1.0, 1.0, 1.0, 1.0, 1.0], rtol=1e-6)  # median of the last 3 previous RR
    # |successive differences| 0, 0, 0.4, 0.8, 0.4: their median over 3 beats, over the mean RR of those beats
    np.testing.assert_allclose(rr[:, 5], [0, 0, 0 / (2.6 / 3), 0.4 / 1.0, 0.4 / 1.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(rr_features(r[:4], FS, config)[:3], rr[:3])


def test_a_running_median_is_not_pulled_by_a_run_of_early_beats():
    # Previous RR: 1.0 s, then a run of three beats at 0.5 s: the running mean follows them, the median does not.
    r = np.array([0, 360, 720, 1080, 1440, 1620, 1800, 1980])
    mean = rr_features(r, FS, PreprocessConfig(mean_rr_beats=7, mean_rr_stat="mean"), rhythm=False)
    median = rr_features(r, FS, PreprocessConfig(mean_rr_beats=7, mean_rr_stat="median"), rhythm=False)
    np.testing.assert_array_equal(median[:, :3], mean[:, :3])
    np.testing.assert_allclose(mean[-1, 3], (5 * 1.0 + 3 * 0.5 - 1.0) / 7)
    np.testing.assert_allclose(median[:, 3], [1.0] * 8)
    np.testing.assert_array_equal(rr_features(r[:6], FS, PreprocessConfig(mean_rr_beats=7, mean_rr_stat="median"),
                                              rhythm=False)[:5], median[:5])  # causal
    with pytest.raises(ValueError, match="mean_rr_stat='mode'"):
        PreprocessConfig(mean_rr_stat="mode")


@pytest.mark.parametrize("stat", ["p0", "p100", "p7.5", "75", "P75"])
def test_a_running_percentile_is_named_p1_to_p99(stat):
    with pytest.raises(ValueError, match=r"a percentile p1 to p99"):
        PreprocessConfig(mean_rr_stat=stat)


def test_a_high_running_percentile_keeps_the_cycle_where_most_beats_are_early():
    # 256 beats: a 1.0 s cycle, and runs of three early beats (0.6 s) after every sinus beat, so that 3 in 4
    # intervals are early: the median takes the early beats' interval, the 90th percentile keeps the cycle.
    pre = np.tile([1.0, 0.6, 0.6, 0.6], 64)
    r = np.round(np.concatenate([[0.0], np.cumsum(pre)]) * FS)
    def running(stat):
        return rr_features(r, FS, PreprocessConfig(mean_rr_beats=64, mean_rr_stat=stat), rhythm=False)[64:, 3]
    np.testing.assert_allclose(running("median"), 0.6, atol=0.01)
    np.testing.assert_allclose(running("p90"), 1.0, atol=0.01)
    assert PreprocessConfig(mean_rr_stat="p90").running_quantile == 0.9
    assert (PreprocessConfig(mean_rr_stat="median").running_quantile, PreprocessConfig(mean_rr_stat="mean")
            .running_quantile) == (0.5, None)


def test_datasets_and_models_from_before_the_running_median_keep_their_running_mean():
    default = PreprocessConfig()
    assert (default.mean_rr_stat, default.mean_rr_beats) == ("median", 256)
    assert PreprocessConfig.from_dict(default.to_dict()) == default and default.to_dict()["mean_rr_stat"] == "median"
    # A running mean is written as it was before the option existed, and such a mapping is read back as a mean.
    earlier = PreprocessConfig(mean_rr_stat="mean", mean_rr_beats=100).to_dict()
    assert "mean_rr_stat" not in earlier
    assert PreprocessConfig.from_dict(earlier) == PreprocessConfig(mean_rr_stat="mean", mean_rr_beats=100)
    assert PreprocessConfig.from_dict(earlier).to_dict() == earlier


@pytest.mark.parametrize("rhythm,stat", [(False, "mean"), (True, "mean"), (False, "median"), (True, "p75")])
def test_rhythm_state_gives_the_datasets_features_beat_by_beat(rhythm, stat):
    rng = np.random.default_rng(3)
    r = np.cumsum(rng.integers(150, 500, 300))
    config = PreprocessConfig(sinus_beats=40, irregularity_beats=8, mean_rr_beats=100, mean_rr_stat=stat)
    rr = rr_features(r, FS, config, rhythm)
    state = RhythmState(config, rhythm)
    pre = np.concatenate([[r[1] - r[0]], np.diff(r)]) / FS
    post = np.concatenate([np.diff(r), [r[-1] - r[-2]]]) / FS
    stream = np.array([state(a, b) for a, b in zip(pre, post)], np.float32)
    exact = [0, 1, 4] if rhythm else [0, 1]  # the intervals and the quantile: the same to the bit
    exact += [3] if stat != "mean" else []
    np.testing.assert_array_equal(stream[:, exact], rr[:, exact])
    np.testing.assert_allclose(stream, rr, rtol=1e-6)  # the means summed in another order


def test_the_quantile_is_numpy_s_default():
    rng = np.random.default_rng(0)
    for n in (1, 2, 15, 16, 64):
        v = rng.uniform(0.3, 2.0, n)
        for q in (0.0, 0.5, 0.9, 1.0):
            assert _quantile_of_sorted(sorted(v.tolist()), q) == np.quantile(v, q)
            assert _quantile_of_sorted(np.sort(v)[None], q)[0] == np.quantile(v, q)


def test_zscore_handles_flat_windows():
    w = np.vstack([np.ones(10), np.arange(10.0)])
    z = zscore(w, axis=1)
    np.testing.assert_array_equal(z[0], 0)
    assert abs(z[1].mean()) < 1e-12 and abs(z[1].std() - 1) < 1e-12


def test_config_defaults_and_window():
    c = PreprocessConfig()
    assert (c.before, c.after, c.window) == (90, 162, 252)
    assert len(c.records) == 48 and c.leads[0] == "MLII"


def test_config_rejects_unknown_and_invalid_parameters():
    with pytest.raises(ValueError, match=r"unknown preprocessing parameter\(s\) \['windw'\]"):
        PreprocessConfig.from_dict({"windw": 3})
    with pytest.raises(ValueError, match="normalize='minmax'"):
        PreprocessConfig(normalize="minmax")
    with pytest.raises(ValueError, match="need 0 < highpass < lowpass < fs/2"):
        PreprocessConfig(highpass_hz=50, lowpass_hz=40)
    with pytest.raises(Exception, match="unknown MIT-BIH record name"):
        PreprocessConfig(records=["999"])
    assert PreprocessConfig.from_dict({"records": None}).records == PreprocessConfig().records
