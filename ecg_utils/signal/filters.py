"""Filters for streams: state carried between chunks, so a signal fed in pieces gives what it gives whole.

`SectionFilter` (IIR, second-order sections) and `FIRFilter` run causally; `backward` is the
backward pass of a zero-phase filter over short stretches; `StreamResampler` is polyphase
resampling. A stream fed in short chunks filters a few dozen samples per call, so the cost per call
is what counts: `scipy.signal.sosfilt` validates and reshapes its arguments on every call (about
50 µs) and `lfilter` still spends about 6 of its 9 µs on them. `SectionFilter` runs each section through
the compiled direct form II transposed recursion behind `lfilter` (`_linear_filter`, the call
`lfilter` ends in), with arguments it has already checked; should a scipy release move that
function, it falls back to `lfilter`, which gives the same values, more slowly.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from ecg_utils.errors import DataError

try:
    from scipy.signal._sigtools import _linear_filter
except ImportError:  # a scipy that keeps it elsewhere: the public function below
    _linear_filter = None


def lfilter(b: np.ndarray, a: np.ndarray, x: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)` for float64 arrays the caller has checked (zi shaped as
    lfilter wants it, not broadcast), without lfilter's per-call argument handling."""
    if _linear_filter is None:
        return sps.lfilter(b, a, x, zi=zi)
    return _linear_filter(b, a, x, -1, zi)


class SectionFilter:
    """A filter of second-order sections that keeps its state: `__call__(chunk)` continues the stream."""

    def __init__(self, sos: np.ndarray) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self._sections = [(s[:3].copy(), s[3:].copy()) for s in self.sos]
        self._zi: list[np.ndarray] | None = None  # per section (2,), set from the first sample

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(x, dtype=np.float64)
        if self._zi is None:
            # Start in the steady state for the first sample (as sosfiltfilt does), not from
            # zero: no step transient at the start of the stream.
            self._zi = list(sps.sosfilt_zi(self.sos) * y[0])
        for k, (b, a) in enumerate(self._sections):
            y, self._zi[k] = lfilter(b, a, y, self._zi[k])
        return y


def backward(sos: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The backward pass of a zero-phase filter over each row of `y` (the forward-filtered stretches).

    Each row starts from rest. The forward-filtered signal is band-passed, zero on average, so
    "nothing after the stretch" is a better guess than `sosfiltfilt`'s "the last value forever",
    which leaves a transient as large as the last sample when a stretch ends on a QRS; what error
    remains dies out over the stretch's run-in. All rows go through one `lfilter` call per section.
    """
    zi = np.zeros((len(y), 2))
    out = np.ascontiguousarray(y[:, ::-1], dtype=np.float64)
    for s in np.asarray(sos, dtype=np.float64):
        out, _ = lfilter(s[:3].copy(), s[3:].copy(), out, zi)
    return out[:, ::-1]


class FIRFilter:
    """A causal FIR filter that keeps its last inputs: `__call__(chunk)` continues the stream.

    Each output is the same sum over the same inputs whatever the chunking, so streamed and
    whole-signal outputs agree to the bit.
    """

    def __init__(self, taps: np.ndarray) -> None:
        self.taps = np.asarray(taps, dtype=np.float64)
        self._history = np.zeros(len(self.taps) - 1)  # the stream starts from silence

    def __call__(self, x: np.ndarray) -> np.ndarray:
        extended = np.concatenate([self._history, x])
        self._history = extended[len(extended) - len(self._history):]
        return np.convolve(extended, self.taps, mode="valid")


#: Sampling rates (Hz) a record or device may have: enough for the 0.5-40 Hz band the models see, and
#: ratios to the model's rate that polyphase resampling handles exactly.
MIN_FS, MAX_FS = 100.0, 10_000.0


def resample_ratio(fs: float, target: float) -> tuple[int, int]:
    """(up, down) for polyphase resampling from `fs` to `target` Hz, as small as the rates allow.

    Raises DataError for a rate outside MIN_FS-MAX_FS or one whose ratio to `target` has no exact small
    fraction (the resampled signal would run at a slightly wrong rate).
    """
    if not (math.isfinite(fs) and MIN_FS <= fs <= MAX_FS):
        raise DataError(f"sampling rate {fs:g} Hz is outside the supported {MIN_FS:g}-{MAX_FS:g} Hz; give the "
                        "device's real rate")
    ratio = Fraction(target / fs).limit_denominator(2000)
    if abs(ratio - target / fs) > 1e-9 * target / fs:
        raise DataError(f"sampling rate {fs:g} Hz has no exact ratio to the model's {target:g} Hz (up and down at "
                        "most 2000); resample the record to a round rate first")
    return ratio.numerator, ratio.denominator


class StreamResampler:
    """Polyphase resampling of a stream by up/down, sample for sample what `scipy.signal.resample_poly`
    gives on the whole signal (the same Kaiser-windowed FIR, zero-phase, zeros before the start).

    Output sample m sits at input time m * down / up; it can be computed once the inputs up to half the
    filter length later have arrived (about 10 input samples: 40 ms at 250 Hz), so each chunk returns
    the outputs that became computable.
    """

    def __init__(self, up: int, down: int) -> None:
        self.up, self.down = up, down
        half = 10 * max(up, down)
        h = sps.firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
        self._delay = half  # of the linear-phase FIR, in upsampled samples
        taps = -(-len(h) // up)
        # Polyphase table: phase p uses h[p], h[p + up], ... against x[i], x[i - 1], ...
        self._poly = np.zeros((up, taps))
        for p in range(up):
            tap = h[p::up]
            self._poly[p, :len(tap)] = tap
        self._lags = np.arange(taps)
        self._history = np.zeros(taps - 1)  # the last inputs; zeros stand for the time before the start
        self._n_in = 0  # inputs received
        self._n_out = 0  # outputs returned

    def __call__(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._history, x])
        first = self._n_in - len(self._history)  # input index of buf[0]
        self._n_in += len(x)
        # Output m needs inputs up to (m * down + delay) // up.
        stop = max(self._n_out, -(-(self._n_in * self.up - self._delay) // self.down))
        m = np.arange(self._n_out, stop)
        self._n_out = stop
        self._history = buf[len(buf) - len(self._history):]
        if len(m) == 0:
            return np.zeros(0)
        n = m * self.down + self._delay
        newest = n // self.up
        y = (self._poly[n % self.up] * buf[newest[:, None] - self._lags[None, :] - first]).sum(axis=1)
        return y

    def flush(self) -> np.ndarray:
        """The outputs still owed at the end of a finite signal, computed with zeros after its end (as
        `resample_poly` pads): the stream's outputs then number ceil(inputs * up / down), as resample_poly's do."""
        total = -(-self._n_in * self.up // self.down)
        owed = total - self._n_out
        if owed <= 0:
            return np.zeros(0)
        n_in = self._n_in
        y = self(np.zeros(len(self._history) + 1))
        self._n_in, self._n_out = n_in, total
        return y[:owed]
