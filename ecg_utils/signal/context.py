"""Patient-relative beat inputs, causal and label-free: each beat beside a running template of the patient's own beats.

A new patient's normal beats differ from every training patient's, but his ectopic beats differ from his
own normal ones. The template is the sample-wise median of the last `beats` windows (this one included),
so an occasional ectopic beat barely moves it. The model sees two channels: the beat, and the beat minus
the template, both centred on the template's mean and divided by its standard deviation. That makes the
input independent of the recording's gain and offset (ADC units, lead amplitude, record-level scaling),
which is why the offline record z-score and the stream's running scale give the same input.

The same `RunningTemplate` runs where the dataset is turned into model inputs, in `predict` and in the
stream: a beat's input depends only on it and the beats before it, never on how the beats are batched.
Its memory is the last `beats - 1` windows.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CHANNELS = ("beat", "beat - template")
MIN_SCALE = 1e-6  # a flat template (flat line) scales by 1 instead of dividing by ~0


class RunningTemplate:
    """Turns windows (n, window), given in beat order, into model inputs (n, 2, window)."""

    def __init__(self, beats: int, window: int) -> None:
        if beats < 1:
            raise ValueError(f"template beats={beats}: need at least 1")
        self.beats = beats
        self._history = np.zeros((0, window), np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows, np.float32)
        n, h, m = len(windows), len(self._history), self.beats
        full = np.concatenate([self._history, windows])
        template = np.empty_like(windows)
        # A few beats (the stream's case) one by one; many (a record) in one vectorised pass over sliding
        # windows of beats. The beats of a stream's start have fewer predecessors: the median of those there are.
        first_full = min(n, max(0, m - 1 - h)) if n > 8 else n
        for i in range(first_full):
            template[i] = _median(full[max(0, h + i - m + 1): h + i + 1], axis=0)
        if first_full < n:
            template[first_full:] = _median(sliding_window_view(full[h + first_full - m + 1:], m, axis=0), axis=2)
        self._history = full[max(0, len(full) - (m - 1)):] if m > 1 else full[:0]
        return relative_inputs(windows, template)

    def select(self, windows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """What `self(windows)[keep]` gives (`keep`: a boolean mask), the history moving on over every window, at the
        cost of the kept rows only: whole-record mode measures a long record's statistics on a few of its beats."""
        windows = np.asarray(windows, np.float32)
        h, m = len(self._history), self.beats
        full = np.concatenate([self._history, windows])
        rows = np.flatnonzero(keep)
        template = np.empty((len(rows), windows.shape[1]), np.float32)
        early = rows < m - 1 - h  # a stream's first beats: the median of the predecessors there are
        for j in np.flatnonzero(early):
            template[j] = _median(full[max(0, h + rows[j] - m + 1): h + rows[j] + 1], axis=0)
        late = rows[~early]
        if len(late):
            template[~early] = _median(full[(h + late - m + 1)[:, None] + np.arange(m)], axis=1)
        self._history = full[max(0, len(full) - (m - 1)):] if m > 1 else full[:0]
        return relative_inputs(windows[rows], template)


def _median(stack: np.ndarray, axis: int) -> np.ndarray:
    """The median along `axis`; for an odd count the middle value itself, found by partition (the same value
    np.median gives, at half the cost). The beats go to the last axis of a contiguous copy that is partitioned in
    place: half the time of partitioning the strided view of sliding windows."""
    count = stack.shape[axis]
    if count == 1:  # (a sliding view of one beat would not be copied, and it is read-only)
        return np.take(stack, 0, axis=axis)
    if count % 2:
        work = np.ascontiguousarray(np.moveaxis(stack, axis, -1))
        work.partition(count // 2, axis=-1)
        return work[..., count // 2]
    return np.median(stack, axis=axis)


def relative_inputs(windows: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(n, 2, window): the beat and the beat minus its template, in units of the template's spread."""
    centre = template.mean(axis=1, keepdims=True)
    scale = np.maximum(template.std(axis=1, keepdims=True), MIN_SCALE)
    return np.stack([(windows - centre) / scale, (windows - template) / scale], axis=1).astype(np.float32)


def record_inputs(windows: np.ndarray, record: np.ndarray, beats: int) -> np.ndarray:
    """Model inputs for a dataset's windows, each record's template starting afresh at its first beat.

    Rows must be grouped by record and in beat order within each, as `dataset.build_dataset` writes them.
    """
    out = np.empty((len(windows), len(CHANNELS), windows.shape[1]), np.float32)
    starts = np.flatnonzero(np.r_[True, record[1:] != record[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(record)]):
        out[a:b] = RunningTemplate(beats, windows.shape[1])(windows[a:b])
    return out


def record_starts(record: np.ndarray) -> np.ndarray:
    """For every row, the row of its record's first beat (rows grouped by record)."""
    first = np.r_[True, record[1:] != record[:-1]]
    return np.maximum.accumulate(np.where(first, np.arange(len(record)), 0))
