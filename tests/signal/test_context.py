import numpy as np
import pytest

from ecg_utils.signal.context import RunningTemplate, record_inputs, record_starts, relative_inputs


def _windows(n: int = 40, w: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beat = np.sin(np.linspace(0, 3, w)) * 2
    return (beat + 0.1 * rng.standard_normal((n, w))).astype(np.float32)


def test_template_is_the_median_of_the_last_beats():
    x = _windows()
    out = RunningTemplate(5, x.shape[1])(x)
    for i in (0, 2, 4, 20, 39):
        template = np.median(x[max(0, i - 4): i + 1], axis=0)
        np.testing.assert_allclose(out[i], relative_inputs(x[i:i + 1], template[None])[0], rtol=1e-5, atol=1e-6)
    assert np.abs(out[0, 1]).max() == 0  # the first beat is its own template


@pytest.mark.parametrize("beats, batch", [(6, 1), (6, 3), (6, 7), (6, 40), (15, 11), (15, 9), (4, 2)])
def test_same_inputs_whatever_the_batching(beats, batch):
    # (15, 11): a batch larger than the one-by-one path but shorter than the template, at a stream's start
    x = _windows()
    whole = RunningTemplate(beats, x.shape[1])(x)
    running = RunningTemplate(beats, x.shape[1])
    parts = np.concatenate([running(x[i:i + batch]) for i in range(0, len(x), batch)])
    np.testing.assert_array_equal(parts, whole)


@pytest.mark.parametrize("beats, batch", [(6, 3), (6, 40), (15, 11), (16, 9), (1, 7)])
def test_selected_rows_are_the_rows_of_the_whole(beats, batch):
    """`select` gives the kept rows of what the template gives every row, bit for bit, batch after batch (the start
    of a record, where fewer beats than the template's came before, included)."""
    x = _windows(60)
    keep = np.random.default_rng(1).random(len(x)) < 0.3
    keep[[0, 2]] = True
    whole = RunningTemplate(beats, x.shape[1])(x)
    running = RunningTemplate(beats, x.shape[1])
    parts = np.concatenate([running.select(x[i:i + batch], keep[i:i + batch]) for i in range(0, len(x), batch)])
    np.testing.assert_array_equal(parts, whole[keep])


def test_inputs_do_not_depend_on_gain_or_offset():
    x = _windows()
    a = RunningTemplate(8, x.shape[1])(x)
    b = RunningTemplate(8, x.shape[1])(x * 250.0 + 1024.0)  # ADC units instead of mV
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_an_ectopic_beat_stands_out_from_its_template():
    x = _windows()
    x[30] = -x[30] * 1.5  # an odd beat among regular ones
    out = RunningTemplate(9, x.shape[1])(x)
    diff = np.abs(out[:, 1]).mean(axis=1)
    assert diff[30] > 5 * np.median(diff[10:])


def test_flat_line_gives_finite_inputs():
    out = RunningTemplate(3, 20)(np.zeros((4, 20), np.float32))
    assert np.isfinite(out).all() and not out.any()


def test_records_start_afresh():
    x = _windows(20)
    record = np.array(["a"] * 8 + ["b"] * 12)
    out = record_inputs(x, record, 4)
    np.testing.assert_array_equal(out[8:], RunningTemplate(4, x.shape[1])(x[8:]))
    np.testing.assert_array_equal(record_starts(record), [0] * 8 + [8] * 12)
    with pytest.raises(ValueError, match="at least 1"):
        RunningTemplate(0, 20)
