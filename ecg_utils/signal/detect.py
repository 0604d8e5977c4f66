"""Causal R-peak detection (Pan & Tompkins 1985, with Hamilton & Tompkins' 1986 decision rules).

`QRSDetector` takes samples in chunks of any size and returns the R peaks it has decided on; it
keeps only a few seconds of history, so memory stays bounded for endless input. Every decision
is made at a data-driven point (a local maximum of the integrated signal, or 200 ms after one),
never at a chunk boundary, and the filters carry their state across chunks: the same samples give
the same beats whatever the chunk size. `detect_r_peaks` runs it over a whole signal at once.

Stages: band-pass 5-15 Hz (QRS energy) → 5-point derivative → absolute value → 150 ms moving
integral. The absolute value (Hamilton & Tompkins) rather than Pan & Tompkins' square keeps the
dynamic range linear, so a small or wide beat after large ones still clears the threshold. Local
maxima of the integral are QRS candidates; of candidates less than 200 ms apart only the largest
is kept (so a tall P wave or the first hump of a wide QRS cannot pre-empt the beat). A candidate is
a beat above an adaptive threshold between the running signal and noise peak levels, with a 200 ms
refractory period, T-wave rejection (a candidate within 360 ms of the last beat with less than half
its slope) and search-back at half the threshold when no beat came for 1.66 times the mean RR.

A second decision stage, the **rhythm check**, reads the rhythm around a doubtful beat. In a regular rhythm a
candidate that comes early (under `PREMATURE` of the median of the last 8 intervals, which a missed beat's long
interval does not move) and is weak (under `WEAK` of the running QRS peak level) waits for the next beat. An ectopic
beat resets the rhythm: the next beat comes about a cycle after it, so the interval over both is longer than a cycle
(over `RESET` times the mean RR), and it is kept. A noise peak between two beats does not: the next beat comes when
the last one's rhythm expected it, and the peak is dropped as noise. In an irregular rhythm (atrial fibrillation,
where the median absolute deviation of the last 8 intervals is `REGULAR` of their median or more) nothing waits. A
waiting beat is decided at the latest when search-back would look for a missed one. The classifier reads each beat's
next interval, so it waits for the next beat anyway: a beat that waits is classified when it would have been, and
only the beat before it waits about one interval longer. On DS1 records with noise mixed in it removes many false
detections for a few true beats (notebook 05's design table, where its settings were chosen).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps

from ecg_utils.data.aami import beat_mask
from ecg_utils.data.records import read_record
from ecg_utils.signal.filters import FIRFilter, SectionFilter

#: Pass band (Hz) where the QRS complex has most of its energy, and P/T waves and baseline little.
#: Pan & Tompkins' own. A band reaching higher (6-18 Hz) lets less electrode motion through but more
#: muscle noise: on the DS1 records with each mixed in it traded one for the other (notebook 05).
QRS_BAND = (5.0, 15.0)
#: How far (s) a detection may move to the largest deflection of the zero-phase filtered signal.
REFINE_S = 0.050
#: The rhythm check (chosen on DS1 records with noise mixed in, notebook 05): a beat sooner than PREMATURE of the median
#: RR and weaker than WEAK of the QRS peak level waits in a regular rhythm (median absolute deviation of the last
#: intervals under REGULAR of their median); it is kept if the next beat comes over RESET mean RRs after the one before.
PREMATURE, WEAK, RESET, REGULAR = 0.75, 0.7, 1.15, 0.1


class QRSDetector:
    """Streaming R-peak detector; `process(chunk)` returns newly decided R-peak sample indices."""

    def __init__(self, fs: float, learn_s: float = 2.0, band: tuple[float, float] = QRS_BAND,
                 rhythm_check: bool = True) -> None:
        self.fs = fs
        self.rhythm_check = rhythm_check
        sos = sps.butter(2, band, btype="bandpass", fs=fs, output="sos")
        self._bandpass = SectionFilter(sos)
        # The causal band-pass delays the QRS by its group delay at the band's centre (16 samples for 5-15 Hz
        # at 360 Hz); R peaks are reported with that delay taken off.
        centre = float(np.sqrt(band[0] * band[1]))
        self._delay = round(float(sps.group_delay(sps.sos2tf(sos), w=[centre], fs=fs)[1][0]))
        self._derivative = FIRFilter(np.array([2, 1, 0, -1, -2]) * fs / 8.0)
        self._win = max(1, round(0.150 * fs))
        self._integral = FIRFilter(np.full(self._win, 1.0 / self._win))
        self._refractory = round(0.200 * fs)
        self._blank = round(0.200 * fs)  # candidates closer than this compete; the largest goes on
        self._held: tuple[int, float] | None = None  # the largest candidate not decided yet: (peak, height)
        self._twave = round(0.360 * fs)
        self._search = round(0.250 * fs)  # how far back from the integral's peak the R peak may lie
        self._learn = round(learn_s * fs)
        self._keep = round(4.0 * fs)  # history carried from one piece to the next: R-peak location and slope
        self._second = round(fs)
        self._bp = np.zeros(0)
        self._mwi = np.zeros(0)
        self._piece = round(60.0 * fs)
        self._learn_max = 0.0
        self._n = 0  # samples consumed
        self._spk = self._npk = 0.0
        self._ready = False
        self._last_qrs = -10**9  # sample of the last accepted integral peak
        self._last_r = -10**9  # sample of the last R peak
        self._last_slope = 0.0
        self._rr: deque[int] = deque(maxlen=8)
        self._noise_peaks: list[tuple[int, int, float, float]] = []  # (peak, R, height, slope) since last beat
        self._waiting: tuple[int, int, float, float] | None = None  # a beat the rhythm check holds: (peak, R, height, slope)
        self._next_candidate = 1  # first sample index not yet examined as a local maximum

    @property
    def _threshold(self) -> float:
        return self._npk + 0.3125 * (self._spk - self._npk)

    def process(self, chunk: np.ndarray) -> list[int]:
        x = np.asarray(chunk, dtype=np.float64)
        if x.size == 0:
            return []
        # The filters carry their state, so filtering the whole chunk at once is exact; the
        # decisions then walk through it in pieces of at most a minute to keep the history bounded.
        bp = self._bandpass(x)
        mwi = self._integral(np.abs(self._derivative(bp)))
        beats: list[int] = []
        for i in range(0, len(x), self._piece):
            beats.extend(self._advance(bp[i:i + self._piece], mwi[i:i + self._piece]))
        return beats

    def _advance(self, bp: np.ndarray, mwi: np.ndarray) -> list[int]:
        if not self._ready:
            learning = mwi[: max(0, self._learn - self._n)]
            self._learn_max = max(self._learn_max, float(learning.max()) if len(learning) else 0.0)
        # The kept history and this piece, for the decisions of this piece; then only the history is kept.
        self._bp = np.concatenate([self._bp, bp])
        self._mwi = np.concatenate([self._mwi, mwi])
        self._n += len(bp)
        if self._ready or self._n >= self._learn:
            if not self._ready:
                # Initial levels from the learning period: the largest beat sets the signal level.
                self._spk, self._npk = 0.5 * self._learn_max, 0.05 * self._learn_max
                self._ready = True
            beats = self._scan()
        else:
            beats = []
        self._bp, self._mwi = self._bp[-self._keep:], self._mwi[-self._keep:]
        return beats

    def _scan(self) -> list[int]:
        mwi, offset = self._mwi, self._n - len(self._mwi)
        beats: list[int] = []
        # A local maximum at i needs i + 1 to be known: examine [next_candidate, n - 1).
        lo = max(self._next_candidate, offset + 1)
        hi = self._n - 1
        if hi <= lo:
            return beats
        seg = mwi[lo - offset - 1: hi - offset + 1]
        mid = seg[1:-1]
        peaks = np.nonzero((mid > seg[:-2]) & (mid >= seg[2:]))[0] + lo
        self._next_candidate = hi
        # Of candidates closer than the blanking interval the largest goes on: which ones depends on the signal
        # alone, not on the decisions, so they are found first and their R peaks and slopes measured together.
        held, going, blank, height = self._held, [], self._blank, mwi.item
        for p in peaks.tolist():
            if held is not None and p - held[0] <= blank:
                h = height(p - offset)
                if h > held[1]:
                    held = (p, h)
                continue
            if held is not None:
                going.append(held)
            held = (p, height(p - offset))
        # Every candidate within the blanking interval has been seen: the held one can be decided.
        if held is not None and hi > held[0] + blank:
            going.append(held)
            held = None
        self._held = held
        if going:
            for (p, h), r, sl in zip(going, *self._measures([p - offset for p, _ in going], offset)):
                beats.extend(self._decide(p, h, r, sl))
        return beats

    def _measures(self, at: list[int], offset: int) -> tuple[list[int], list[float]]:
        """The R peak (the largest |band-passed| sample within `_search` before the candidate, the first on a tie,
        less the filter's delay) and slope (the integral's steepest step over the `_win` samples up to it) of the
        candidates at history indices `at`. A stream's chunk brings a beat or two, measured one by one; a record's
        block brings thousands, measured in array operations (the same values)."""
        if len(at) <= 8:
            return [self._r_peak(i) + offset for i in at], [self._slope(i) for i in at]
        at = np.asarray(at)
        top = np.abs(self._bp[: at.max() + 1])
        steps = np.abs(np.diff(self._mwi[: at.max() + 1]))
        r, slope = np.zeros(len(at), np.int64), np.zeros(len(at))
        far = (at >= self._search) & (at >= self._win)  # all but the first candidates of a signal
        window = at[far, None] - self._search + np.arange(self._search + 1)
        r[far] = at[far] - self._search - self._delay + top[window].argmax(axis=1)
        slope[far] = steps[at[far, None] - self._win + np.arange(self._win)].max(axis=1)
        for i in np.flatnonzero(~far):
            r[i], slope[i] = self._r_peak(int(at[i])), self._slope(int(at[i]))
        return (r + offset).tolist(), slope.tolist()

    def _r_peak(self, i: int) -> int:
        """The R peak of the candidate at history index i, as a history index less the filter's delay."""
        a = max(0, i - self._search)
        return a + int(np.abs(self._bp[a: i + 1]).argmax()) - self._delay

    def _slope(self, i: int) -> float:
        a = max(0, i - self._win)
        w = self._mwi[a: i + 1]
        return float(np.abs(w[1:] - w[:-1]).max()) if i > a else 0.0

    def _accept(self, p: int, r: int, height: float, slope: float, searchback: bool) -> int:
        if self._last_r > 0:
            self._rr.append(r - self._last_r)
        weight = 0.25 if searchback else 0.125
        self._spk = weight * height + (1 - weight) * self._spk
        self._last_qrs, self._last_r, self._last_slope = p, r, slope
        self._noise_peaks = []
        return r

    def _decide(self, p: int, height: float, r: int, slope: float) -> list[int]:
        out = []
        # Noise peaks too far back to be searched back to are let go, so that memory stays bounded through
        # asystole or a lead-off stretch: those whose R-peak search (`_search` before them) reaches past the `_keep`
        # samples before the whole second of the signal in which the candidate is decided (the first at least a
        # blanking interval after it). Whole seconds of the signal, not of the chunks, so that any chunking gives the
        # same beats.
        if self._noise_peaks:
            second = -(-(p + self._blank + 2) // self._second) * self._second
            limit = max(0, second - self._keep) + self._search
            if self._noise_peaks[0][0] <= limit:
                self._noise_peaks = [c for c in self._noise_peaks if c[0] > limit]
        mean_rr = sum(self._rr) / len(self._rr) if self._rr else 0.0
        # A waiting beat is kept once no beat came for as long as search-back waits (it looks from that beat on).
        if self._waiting is not None and p - self._last_qrs > 1.66 * mean_rr:
            out.append(self._keep_waiting())
        # Search-back: a long gap since the last beat means one was missed; take the largest
        # noise peak since then that clears half the threshold.
        if self._rr and p - self._last_qrs > 1.66 * mean_rr:
            cands = [c for c in self._noise_peaks
                     if c[2] > 0.5 * self._threshold and c[1] - self._last_r >= self._twave]
            if cands:
                q, rq, h, sl = max(cands, key=lambda c: c[2])
                out.append(self._accept(q, rq, h, sl, searchback=True))
        # A waiting beat is the last beat for the refractory period and the T-wave rule, as if it had been accepted.
        last_r, last_slope = (self._waiting[1], self._waiting[3]) if self._waiting else (self._last_r, self._last_slope)
        if r - last_r < self._refractory:
            return out  # the same beat seen again (its tail, or a wide QRS's second hump)
        is_qrs = height > self._threshold
        if is_qrs and r - last_r < self._twave and slope < 0.5 * last_slope:
            is_qrs = False  # a T wave: it rises more slowly than the beat before it
        if is_qrs and self._waiting is not None:
            if r - self._last_r > RESET * mean_rr:  # the rhythm reset after the waiting beat: an ectopic beat
                out.append(self._keep_waiting())
            else:  # this beat came when the rhythm before the waiting one expected it: that one was noise
                self._noise(*self._waiting)
                self._waiting = None
        elif is_qrs and self.rhythm_check and self._doubtful(r, height):
            self._waiting = (p, r, height, slope)
            return out
        if is_qrs:
            out.append(self._accept(p, r, height, slope, searchback=False))
        else:
            self._noise(p, r, height, slope)
        return out

    def _noise(self, p: int, r: int, height: float, slope: float) -> None:
        self._npk = 0.125 * height + 0.875 * self._npk
        self._noise_peaks.append((p, r, height, slope))

    def _doubtful(self, r: int, height: float) -> bool:
        """Early and weak in a regular rhythm: a beat the rhythm check holds until the next one."""
        if len(self._rr) < 4 or height >= WEAK * self._spk:
            return False
        median = statistics.median(self._rr)
        if r - self._last_r >= PREMATURE * median:
            return False
        return statistics.median(abs(v - median) for v in self._rr) < REGULAR * median

    def _keep_waiting(self) -> int:
        """Accept the waiting beat as it would have been accepted when it came (noise peaks after it stay)."""
        p, r, height, slope = self._waiting
        later = [c for c in self._noise_peaks if c[0] > p]
        self._waiting = None
        beat = self._accept(p, r, height, slope, searchback=False)
        self._noise_peaks = later
        return beat


def detect_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of a whole signal (the streaming detector in one chunk)."""
    return np.asarray(QRSDetector(fs).process(x), dtype=np.int64)


def refine_peaks(x: np.ndarray, peaks: np.ndarray, half: int) -> np.ndarray:
    """Move each detection to the largest |x| within ±`half` samples of it.

    `x` is the zero-phase band-passed signal the beat windows are cut from: the detector's causal
    filters place a peak within a few samples of the R wave, and the training windows are centred
    on the annotated R peak, which is the largest deflection of that signal in all but a few beats.
    """
    out = np.asarray(peaks, dtype=np.int64).copy()
    inside = (out >= half) & (out + half < len(x))  # all but a peak at either end: one array operation
    if inside.any():
        out[inside] += np.abs(x[out[inside, None] + np.arange(-half, half + 1)]).argmax(axis=1) - half
    for i in np.flatnonzero(~inside):
        lo, hi = max(0, out[i] - half), min(len(x), out[i] + half + 1)
        out[i] = lo + int(np.argmax(np.abs(x[lo:hi])))
    return out


def label_detected_beats(detected: np.ndarray, ref_sample: np.ndarray, ref_label: np.ndarray,
                         tolerance: int) -> np.ndarray:
    """The reference class of each detected beat: that of the nearest reference beat within
    `tolerance` samples, or '' for a detection that matches none (a false detection)."""
    det, ref = np.asarray(detected), np.asarray(ref_sample)
    if len(ref) == 0:
        return np.full(len(det), "", dtype="<U1")
    right = np.clip(np.searchsorted(ref, det), 0, len(ref) - 1)
    left = np.clip(right - 1, 0, len(ref) - 1)
    nearest = np.where(np.abs(ref[left] - det) < np.abs(ref[right] - det), left, right)
    return np.where(np.abs(ref[nearest] - det) <= tolerance, np.asarray(ref_label)[nearest], "")


def ec57_counts(ann_sample: np.ndarray, ann_symbol: np.ndarray, detections: np.ndarray, fs: float,
                tolerance_s: float = 0.150, learning_s: float = 300.0) -> dict[str, int]:
    """True positives, false negatives and false positives of `detections` against reference beats.

    As EC57 (and WFDB's bxb) count them: a detection within `tolerance_s` of a reference beat
    matches it; the first `learning_s` (5 min) are a learning period; ventricular flutter
    episodes ('[' to ']') are left out.
    """
    from wfdb import processing

    beats = ann_sample[beat_mask(ann_symbol)]
    det = np.asarray(detections, dtype=np.int64)
    keep_b, keep_d = beats >= learning_s * fs, det >= learning_s * fs
    starts, ends = ann_sample[ann_symbol == "["], ann_sample[ann_symbol == "]"]
    for lo in starts:
        hi = ends[ends > lo].min(initial=np.iinfo(np.int64).max)
        keep_b &= ~((beats >= lo) & (beats <= hi))
        keep_d &= ~((det >= lo) & (det <= hi))
    cmp = processing.compare_annotations(beats[keep_b], det[keep_d], round(tolerance_s * fs))
    cmp.compare()
    return {"tp": int(cmp.tp), "fn": int(cmp.fn), "fp": int(cmp.fp)}


def detection_table(mitdb_dir: Path, records: Sequence[str]) -> pd.DataFrame:
    """EC57 detection counts, Se and +P per record, for the records at `mitdb_dir`."""
    rows = []
    for name in records:
        rec = read_record(mitdb_dir / name)
        c = ec57_counts(rec.ann_sample, rec.ann_symbol, detect_r_peaks(rec.signal, rec.fs), rec.fs)
        rows.append({"record": name, **c, "se": c["tp"] / max(1, c["tp"] + c["fn"]),
                     "ppv": c["tp"] / max(1, c["tp"] + c["fp"])})
    return pd.DataFrame(rows).set_index("record")
