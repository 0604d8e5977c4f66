"""Signal-level preprocessing: the configuration, filtering, beat windows, normalisation, RR and rhythm features.

Filter choice: a Butterworth band-pass (0.5–40 Hz by default) run forward and backward with
`scipy.signal.sosfiltfilt`. Running it both ways makes it zero-phase, so R peaks and QRS
onsets stay where the annotations put them; the high-pass edge removes baseline wander
(respiration, electrode motion, < 0.5 Hz) and the low-pass edge removes muscle noise and 60 Hz
mains while keeping the QRS energy (mostly 5–30 Hz). It is the common choice in CNN beat
classifiers and far cheaper than de Chazal's 200/600 ms median filters.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal as sps

from ecg_utils.data.mitdb import FS, RECORDS, check_record_names
from ecg_utils.data.records import DEFAULT_LEADS
from ecg_utils.params import reject_unknown

NORMALIZATIONS = ("record", "beat", "none")
_PERCENTILE = re.compile(r"p([1-9][0-9]?)")  # "p75": the 75th percentile of the window
# What every model reads, and the pair a model with rhythm context reads after them (`rr_features`).
BEAT_RR = ("pre_rr", "post_rr", "local_rr", "mean_rr")
RHYTHM_RR = ("sinus_rr", "irregularity")
RR_FEATURES = BEAT_RR + RHYTHM_RR


def rr_names(rhythm: bool) -> tuple[str, ...]:
    """The RR feature columns a model reads, in order."""
    return RR_FEATURES if rhythm else BEAT_RR


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that determines the beat dataset; a change in any field rebuilds the cache."""

    records: tuple[str, ...] = RECORDS  # MIT-BIH record names
    leads: tuple[str, ...] = DEFAULT_LEADS  # preferred leads, by name, first present wins
    fs: float = FS  # Hz the records must have
    before_s: float = 0.25  # window start, seconds before the R peak
    after_s: float = 0.45  # window end, seconds after the R peak
    highpass_hz: float = 0.5  # band-pass lower edge (baseline wander)
    lowpass_hz: float = 40.0  # band-pass upper edge (muscle noise, mains)
    filter_order: int = 2  # Butterworth order of one pass; sosfiltfilt doubles it
    normalize: str = "record"  # "record": z-score per record; "beat": per window; "none"
    local_rr_beats: int = 10  # beats in the causal local-average RR
    mean_rr_beats: int = 256  # beats in the causal running RR (the patient's rhythm)
    mean_rr_stat: str = "median"  # "mean", "median" or a percentile "pNN" (`running_quantile` says why)
    template_beats: int = 15  # beats in the running template each beat is compared with (`context`)
    sinus_beats: int = 64  # beats whose previous RR give the underlying cycle (`sinus_rr`)
    sinus_quantile: float = 0.9  # the quantile of those RR taken as the underlying cycle
    irregularity_beats: int = 16  # successive RR differences the irregularity is measured over

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", check_record_names(self.records))
        object.__setattr__(self, "leads", tuple(self.leads))
        problems = []
        if self.before_s < 0 or self.after_s <= 0:
            problems.append(f"window before_s={self.before_s}, after_s={self.after_s} (need before_s >= 0, after_s > 0)")
        if not 0 < self.highpass_hz < self.lowpass_hz < self.fs / 2:
            problems.append(f"band {self.highpass_hz}-{self.lowpass_hz} Hz (need 0 < highpass < lowpass < fs/2)")
        if self.normalize not in NORMALIZATIONS:
            problems.append(f"normalize={self.normalize!r} (allowed: {', '.join(NORMALIZATIONS)})")
        if min(self.filter_order, self.local_rr_beats, self.mean_rr_beats, self.template_beats, self.sinus_beats,
               self.irregularity_beats) < 1:
            problems.append("filter_order, local_rr_beats, mean_rr_beats, template_beats, sinus_beats and "
                            "irregularity_beats must be >= 1")
        if self.mean_rr_stat not in ("mean", "median") and not _PERCENTILE.fullmatch(str(self.mean_rr_stat)):
            problems.append(f"mean_rr_stat={self.mean_rr_stat!r} (allowed: mean, median, or a percentile p1 to p99 "
                            "such as p75)")
        if not 0 <= self.sinus_quantile <= 1:
            problems.append(f"sinus_quantile={self.sinus_quantile} (need 0 <= sinus_quantile <= 1)")
        if not self.leads:
            problems.append("leads is empty")
        if problems:
            raise ValueError("invalid preprocessing configuration: " + "; ".join(problems))

    @property
    def running_quantile(self) -> float | None:
        """The quantile `mean_rr` takes of its window, None for a mean. Early beats pull a mean at once; a
        q-quantile only once more than 1 - q of the window is early, so a high percentile follows the underlying
        cycle of a record whose beats are mostly ectopic, where a median takes the ectopic beats' own interval."""
        if self.mean_rr_stat == "mean":
            return None
        return 0.5 if self.mean_rr_stat == "median" else int(self.mean_rr_stat[1:]) / 100

    @property
    def before(self) -> int:
        """Window samples before the R peak."""
        return round(self.before_s * self.fs)

    @property
    def after(self) -> int:
        """Window samples after the R peak (the R peak itself counts among them)."""
        return round(self.after_s * self.fs)

    @property
    def window(self) -> int:
        return self.before + self.after

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PreprocessConfig:
        """Build from a parameters mapping, rejecting misspelt keys instead of ignoring them. A mapping without
        `mean_rr_stat` was written before the option existed (datasets, checkpoints, the ONNX file): a running mean."""
        reject_unknown(values, cls, "preprocessing")
        values = {"mean_rr_stat": "mean", **values}
        if values.get("records") is None:
            values.pop("records", None)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["records"] = list(self.records)
        d["leads"] = list(self.leads)
        if self.mean_rr_stat == "mean":  # the form before the option existed: earlier datasets and models stay current
            del d["mean_rr_stat"]
        return d


def bandpass(x: np.ndarray, fs: float, low: float, high: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass; NaN samples raise rather than spread through the record."""
    n_nan = int(np.isnan(x).sum())
    if n_nan:
        first = int(np.flatnonzero(np.isnan(x))[0])
        raise ValueError(
            f"signal has {n_nan} NaN samples (first at sample {first}, {first / fs:.1f} s); "
            "interpolate them or cut the record before filtering"
        )
    sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def zscore(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Standardise to zero mean and unit variance; a flat input maps to zeros instead of NaN."""
    mean = x.mean(axis=axis, keepdims=axis is not None)
    std = x.std(axis=axis, keepdims=axis is not None)
    return (x - mean) / np.where(std > 0, std, 1.0)


def segment(x: np.ndarray, r_samples: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut `before + after` samples around each R peak; returns (windows, kept mask).

    A beat whose window would run past either end of the record is dropped, never padded:
    padding would invent signal the model could learn from.
    """
    r_samples = np.asarray(r_samples, dtype=np.int64)
    start = r_samples - before
    keep = (start >= 0) & (r_samples + after <= len(x))
    idx = start[keep, None] + np.arange(before + after)
    return x[idx], keep


def rr_features(r_samples: np.ndarray, fs: float, config: PreprocessConfig, rhythm: bool = True) -> np.ndarray:
    """RR features (`RR_FEATURES`) for each beat: previous and next RR (s), their local and running averages
    and, with `rhythm`, the underlying cycle and the irregularity of the rhythm.

    Every feature but the next RR is causal (a trailing window of previous-RR values), so a streaming
    classifier computes what the dataset holds (`RhythmState` does, beat by beat) and nothing depends on the
    length of the record. The first beat has no previous RR and the last no next RR; they borrow their
    neighbour's interval.

    Why the rhythm pair: "premature" measured against a local mean is blurred where ectopic beats are
    frequent, because the mean contains them, and an irregular rhythm (atrial fibrillation) makes normal
    beats look premature. `sinus_rr`, a high quantile of the recent RR, follows the underlying cycle and
    not the early beats; `irregularity`, the median absolute successive RR difference over the mean RR,
    is high in fibrillation and stays low beside isolated ectopics (each moves only two differences).
    """
    r = np.asarray(r_samples, dtype=np.float64)
    if len(r) < 2:
        raise ValueError(f"RR features need at least 2 beats, got {len(r)}")
    d = np.diff(r) / fs
    pre = np.concatenate([[d[0]], d])
    post = np.concatenate([d, [d[-1]]])
    q = config.running_quantile
    running = _trailing_mean(pre, config.mean_rr_beats) if q is None else _trailing_quantile(pre, config.mean_rr_beats, q)
    columns = [pre, post, _trailing_mean(pre, config.local_rr_beats), running]
    if rhythm:
        diffs = np.abs(np.diff(pre, prepend=pre[0]))  # the first beat's difference is 0
        k = config.irregularity_beats
        columns += [_trailing_quantile(pre, config.sinus_beats, config.sinus_quantile),
                    _trailing_quantile(diffs, k, 0.5) / _trailing_mean(pre, k)]
    return np.stack(columns, axis=1).astype(np.float32)


def _trailing_mean(values: np.ndarray, beats: int) -> np.ndarray:
    """Mean of each value and the `beats - 1` before it (fewer at the start)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    i = np.arange(len(values))
    lo = np.maximum(0, i + 1 - beats)
    return (csum[i + 1] - csum[lo]) / (i + 1 - lo)


def _quantile_of_sorted(ordered: Any, q: float) -> Any:
    """The q-quantile of values sorted along the last axis (a list, or rows of an array), interpolated linearly
    between the nearest ranks as numpy's default does; one formula for the dataset and the stream."""
    n = len(ordered) if isinstance(ordered, list) else ordered.shape[-1]
    g = (n - 1) * q
    lo = int(g)
    t, hi = g - lo, min(lo + 1, n - 1)
    a, b = (ordered[lo], ordered[hi]) if isinstance(ordered, list) else (ordered[..., lo], ordered[..., hi])
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)


def _trailing_quantile(values: np.ndarray, beats: int, q: float, block: int = 8192) -> np.ndarray:
    """The q-quantile of each value and the `beats - 1` before it (fewer at the start), in blocks of rows so
    that memory stays bounded on a 24-hour record."""
    out = np.empty(len(values))
    head = min(beats - 1, len(values))
    for i in range(head):
        out[i] = _quantile_of_sorted(sorted(values[:i + 1].tolist()), q)
    if len(values) >= beats:
        windows = np.lib.stride_tricks.sliding_window_view(values, beats)
        for a in range(0, len(windows), block):
            out[head + a: head + a + block] = _quantile_of_sorted(np.sort(windows[a:a + block], axis=1), q)
    return out


class RhythmState:
    """The causal RR features of `rr_features`, one beat at a time, for a stream: the same values (the means up
    to float rounding), from the last beats' previous-RR values only (bounded memory). A stream asks for one beat
    at a time, so this is plain Python, with the quantiles' windows kept sorted as they slide."""

    def __init__(self, config: PreprocessConfig, rhythm: bool = True) -> None:
        self.config, self.rhythm = config, rhythm
        q = self._quantile = config.running_quantile
        self._pre: deque[float] = deque(maxlen=max(config.local_rr_beats,  # the means' intervals (a quantile's are sorted)
                                                   config.mean_rr_beats if q is None else 1,
                                                   config.irregularity_beats if rhythm else 1))
        self._sinus, self._diffs = _SortedWindow(config.sinus_beats), _SortedWindow(config.irregularity_beats)
        self._running = None if q is None else _SortedWindow(config.mean_rr_beats)

    def __call__(self, pre: float, post: float) -> list[float]:
        """The features of the next beat, given its previous and next RR (s)."""
        c = self.config
        if self.rhythm:
            self._diffs.add(abs(pre - self._pre[-1]) if self._pre else 0.0)
            self._sinus.add(pre)
        self._pre.append(pre)
        recent = list(self._pre)

        def mean(beats: int) -> float:
            return sum(recent[-beats:]) / len(recent[-beats:])

        if self._running is not None:
            self._running.add(pre)
        running = (mean(c.mean_rr_beats) if self._running is None
                   else _quantile_of_sorted(self._running.ordered, self._quantile))
        out = [pre, post, mean(c.local_rr_beats), running]
        if self.rhythm:
            out += [_quantile_of_sorted(self._sinus.ordered, c.sinus_quantile),
                    _quantile_of_sorted(self._diffs.ordered, 0.5) / mean(c.irregularity_beats)]
        return out


class _SortedWindow:
    """The last `size` values, in arrival order and sorted."""

    def __init__(self, size: int) -> None:
        self.size, self.window, self.ordered = size, deque[float](), []

    def add(self, value: float) -> None:
        if len(self.window) == self.size:
            del self.ordered[bisect.bisect_left(self.ordered, self.window.popleft())]
        self.window.append(value)
        bisect.insort(self.ordered, value)


def normalise(windows: np.ndarray, config: PreprocessConfig, mean: float, std: float) -> np.ndarray:
    """Scale cut windows as `config.normalize` says: "record" with the record's filtered mean and standard
    deviation (computed over the whole record, or merged over its blocks), "beat" per window, "none" as is.

    Scaling windows after cutting them gives the same values, to the bit, as z-scoring the whole record
    first, so a record processed in blocks is scaled as one processed whole.
    """
    if config.normalize == "record":
        windows = (windows - mean) / (std if std > 0 else 1.0)
    elif config.normalize == "beat":
        windows = zscore(windows, axis=1)
    return windows.astype(np.float32)


def prepare_beats(x: np.ndarray, fs: float, r_samples: np.ndarray,
                  config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model inputs for the beats at `r_samples` of one lead: (windows, kept mask, RR features).

    The place that turns a whole signal into what the models see, used to build the dataset; records
    classified in blocks (`predict`) use the same steps (`bandpass`, `segment`, `normalise`,
    `rr_features`), so training and inference cannot drift apart. RR features are computed over all
    beats, also those whose window does not fit and is dropped.
    """
    filtered = bandpass(x, fs, config.highpass_hz, config.lowpass_hz, config.filter_order)
    rr = rr_features(r_samples, fs, config)
    windows, keep = segment(filtered, r_samples, config.before, config.after)
    return normalise(windows, config, float(filtered.mean()), float(filtered.std())), keep, rr
