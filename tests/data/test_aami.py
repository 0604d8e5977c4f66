import numpy as np
import pytest

from ecg_utils.data.aami import CLASSES, SYMBOL_TO_CLASS, beat_mask, is_beat, to_aami, to_index


def test_mapping_is_pinned():
    # AAMI EC57 grouping of MIT-BIH beat symbols, as the issue specifies it.
    expected = {
        "N": "N", "L": "N", "R": "N", "e": "N", "j": "N",
        "A": "S", "a": "S", "J": "S", "S": "S",
        "V": "V", "E": "V",
        "F": "F",
        "/": "Q", "f": "Q", "Q": "Q",
    }  # fmt: skip
    assert SYMBOL_TO_CLASS == expected
    assert CLASSES == ("N", "S", "V", "F", "Q")


@pytest.mark.parametrize("symbol", list('+~|x"[]!') + ["(", ")", "p", "t", "u", "`", "'", "^", "=", "@", "*", "D"])
def test_non_beat_annotations_are_never_beats(symbol):
    assert not is_beat(symbol)
    with pytest.raises(ValueError, match="not beat symbols"):
        to_aami([symbol])


def test_to_aami_and_index():
    labels = to_aami(["N", "A", "V", "F", "/", "L", "E", "f"])
    assert labels.tolist() == ["N", "S", "V", "F", "Q", "N", "V", "Q"]
    np.testing.assert_array_equal(to_index(labels), [0, 1, 2, 3, 4, 0, 2, 4])


def test_beat_mask():
    assert beat_mask(["+", "N", "~", "V", "/", "x"]).tolist() == [False, True, False, True, True, False]
    assert beat_mask([]).tolist() == []
