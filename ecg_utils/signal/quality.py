"""A signal-quality gate: beats in stretches where the ECG cannot be read are reported as unreadable.

Noise, a flat line (lead off) and clipping (the amplifier at its rail) make the R-peak detector find
beats that are not there and make real beats look abnormal: without a gate they reach the classifier
and come out as S or V. The gate is causal and label-free, and runs the same in `predict`, the
streaming classifier and the service:

- **Noise.** Each beat gets a local signal-to-noise ratio in dB, defined as EC57 defines a noise
  stress test's SNR (QRS peak-to-peak amplitude A and noise RMS σ: SNR = 20 log10(A / (2√2 σ))),
  measured on the signal band-passed to `band_hz`: A within ±50 ms of the R peak, σ robustly (the
  median absolute value over 0.6745; the band-passed signal has no mean) over the `window_s` seconds
  that end where the beat's classifier window ends (at most `NOISE_SAMPLES` of their samples, evenly
  spaced, so a longer window costs no more). With `qrs_s` the noise is measured away from the QRS
  complexes: the samples from `qrs_s[0]` before to `qrs_s[1]` after the beat's R peak and every earlier
  one are left out, so that a run of wide ventricular beats is not taken for noise (samples after the
  beat's own QRS are kept even where the next beat falls, because whether that beat is known yet depends
  on how the signal arrives; a window left with under a quarter of its samples is measured whole). The
  published gate measures the whole window (QRS included), which a run of wide ventricular beats lowers:
  on DS1, measuring away from the QRS removed more false V calls in noise at the same clean-beat budget
  but gated more clean beats of some records (atrial flutter, paced, noisy ones), so it is not published (notebook
  05 calibrates both on DS1 and tables the trade: `robustness.gate_design`).
  A low SNR alone does not tell noise from a run of wide beats, which a clean ECG repeats: each beat also gets a
  **QRS-shape similarity**, the highest correlation (%) of its signal over ±`shape_s` around the R peak (mean
  removed) with that of one of the `shape_beats` beats before it. Noise changes the shape from beat to beat; a clean
  ECG repeats it, ventricular beats included (they repeat earlier ventricular beats).
  A single beat's figure is noisy; each score is the median over the beat and the `beats - 1`
  beats before it, so a noisy stretch is recognised as a whole and an odd-looking beat among clean ones is
  not. That median holds a noisy stretch's low figures for half its beats after the stretch ends; with
  `recover_beats`, each score is the higher of it and the median of the last `recover_beats` beats, so that a
  stretch is still called noise only after a long run of low figures, and let go a few beats after it ends.
  Beats whose SNR score is below `min_snr_db` (and, with `min_similarity`, whose similarity score is below that
  too) are unreadable, once the SNR score is the median of `beats` beats: a record's first beats (its first
  seconds) are never gated for noise, so that a start with few beats to compare (record 208 opens with a run of
  wide ventricular beats) cannot gate clean ones.
- **Flat line.** A run of identical samples at least `flat_s` long.
- **Clipping.** A flat top or bottom: a run of identical samples at least `clip_s` long, higher (or
  lower) than the samples on both sides of it and in the outer half of the range of the beat's
  window.

A beat whose classifier window overlaps a flat or clipped run is unreadable for that reason. Every
decision uses only samples up to the end of the beat's window and never depends on how the signal
was cut into chunks. The thresholds were chosen on DS1 records with noise added (notebook
05-robustness, `robustness.calibrate_gate`), never on DS2; the published gate is
`resources/quality_gate.json`.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections import deque
from dataclasses import asdict, dataclass, fields
from importlib import resources

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as sps

from ecg_utils.errors import DataError
from ecg_utils.signal.filters import SectionFilter

#: Why a beat is unreadable ('' when it is readable), in the order they are checked.
REASONS = ("flat", "clipped", "noise")
GATE_RESOURCE = "resources/quality_gate.json"
NOISE_SAMPLES = 1024  # the noise level is the median of at most this many samples of its window
FEW = 4  # beats scored together up to this many (a stream's) take per-beat paths: fewer calls, the same arithmetic


@dataclass(frozen=True)
class GateConfig:
    band_hz: tuple[float, float] = (8.0, 20.0)  # where the QRS is strong and P/T waves and wander are weak
    window_s: float = 2.5  # noise measured over this stretch, ending at the beat window's end
    qrs_s: tuple[float, float] = (0.0, 0.0)  # left out of the noise: this long before and after each R peak
    beats: int = 15  # the score is the median local SNR of this many beats (the beat and those before)
    recover_beats: int | None = None  # with it, the score is the higher of that and the median of this many (fewer)
    min_snr_db: float | None = None  # beats scoring below are unreadable (None: score only, gate nothing)
    shape_s: float = 0.15  # each QRS shape: the signal this long either side of the R peak, its mean removed
    shape_beats: int = 8  # each beat's shape is compared with this many beats before it
    min_similarity: float | None = None  # with min_snr_db: noise only if the similarity score is below this too (%)
    flat_s: float = 0.5  # identical samples for this long: a flat line
    clip_s: float = 0.014  # identical samples for this long at a flat top or bottom: clipping

    def __post_init__(self) -> None:
        problems = []
        lo, hi = self.band_hz
        if not 0 < lo < hi:
            problems.append(f"band_hz={self.band_hz} (need 0 < low < high)")
        if not self.shape_s > 0 or self.shape_beats < 1:
            problems.append(f"shape_s={self.shape_s}, shape_beats={self.shape_beats} (need > 0 and >= 1)")
        if self.min_similarity is not None and self.min_snr_db is None:
            problems.append("min_similarity without min_snr_db (the similarity narrows the SNR rule; give both)")
        if len(self.qrs_s) != 2 or min(self.qrs_s) < 0:
            problems.append(f"qrs_s={self.qrs_s} (need two lengths >= 0: before and after the R peak)")
        if not self.window_s > 0 or not self.flat_s > 0 or not self.clip_s > 0:
            problems.append(f"window_s={self.window_s}, flat_s={self.flat_s}, clip_s={self.clip_s} (need > 0)")
        if self.beats < 1:
            problems.append(f"beats={self.beats} (need >= 1)")
        if self.recover_beats is not None and not 1 <= self.recover_beats < self.beats:
            problems.append(f"recover_beats={self.recover_beats} (need 1 <= recover_beats < beats={self.beats}, "
                            "or None)")
        if problems:
            raise DataError("quality gate: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict) -> GateConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"quality gate: unknown parameter(s) {unknown}; known: {sorted(known)}")
        values = dict(values)
        for key in ("band_hz", "qrs_s"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def to_dict(self) -> dict:
        return {**asdict(self), "band_hz": list(self.band_hz), "qrs_s": list(self.qrs_s)}


#: Pass as `gate=` to `predict` or the streaming classifier for the gate the package ships.
PUBLISHED = "published"


def published_gate() -> GateConfig:
    """The gate the package ships, with the thresholds calibrated on DS1 (see `robustness`)."""
    text = resources.files("ecg_utils").joinpath(GATE_RESOURCE).read_text()
    return GateConfig.from_dict(json.loads(text)["gate"])


def resolve_gate(gate: GateConfig | str | None) -> GateConfig | None:
    """`PUBLISHED` → the shipped gate; a GateConfig as given; None (score beats, gate none) stays None."""
    if isinstance(gate, str):
        if gate != PUBLISHED:
            raise DataError(f"gate={gate!r}: give {PUBLISHED!r}, a GateConfig, or None for no gate")
        return published_gate()
    return gate


def _medians(recent: deque[float], values: np.ndarray) -> np.ndarray:
    """Each of `values`' median over it and those before it, `recent` holding the last ones (as many as its maxlen);
    `recent` moves on. As sliding windows (for an odd count the middle value itself, as `statistics.median` gives one by
    one; for an even count the mean of the middle two, the same sum halved)."""
    m, h = recent.maxlen or 1, len(recent)
    if h + len(values) < m:
        out = []
        for v in values.tolist():
            recent.append(v)
            out.append(statistics.median(recent))
        return np.array(out)
    both = np.concatenate([np.array(recent, dtype=np.float64), values])
    first = max(0, m - 1 - h)  # the first values have fewer than m - 1 before them: their medians one by one
    out = np.empty(len(values))
    for j in range(first):
        out[j] = statistics.median(both[: h + j + 1].tolist())
    out[first:] = np.median(sliding_window_view(both, m)[h + first + 1 - m:], axis=1)
    recent.extend(values.tolist())
    return out


@dataclass(frozen=True)
class BeatQuality:
    r: int  # the R peak as given (samples at the gate's rate)
    snr_db: float  # the score: median local SNR of the last `beats` beats (see `recover_beats`; NaN: not measurable)
    reason: str  # '' (readable) or one of REASONS
    similarity: float = math.nan  # the score of each one's best QRS correlation (%), as `snr_db` is of the SNR


class SignalQuality:
    """The gate over a stream: `process(chunk, peaks)` takes the next samples and the R peaks found so
    far (in order), and returns the quality of every beat whose window end has arrived.

    The beats a piece of signal completes are scored together, in array operations over all of them
    (a record's block holds thousands); only the median over the last beats' figures and the rare
    beat beside a long constant run are worked out beat by beat.
    """

    def __init__(self, fs: float, config: GateConfig, before: int, after: int) -> None:
        if config.band_hz[1] >= fs / 2:
            raise DataError(f"quality gate: band {config.band_hz} Hz needs a sampling rate above "
                            f"{2 * config.band_hz[1]:g} Hz, not {fs:g}")
        self.fs, self.config = fs, config
        self.before, self.after = before, after  # the classifier window around the R peak, samples
        self._filter = SectionFilter(sps.butter(2, config.band_hz, btype="bandpass", fs=fs, output="sos"))
        self._win = max(2, round(config.window_s * fs))
        self._half = round(0.050 * fs)
        # The causal band-pass delays the QRS by a few samples: the amplitude window reaches 20 ms later.
        self._qrs_offsets = np.arange(2 * self._half + round(0.02 * fs))
        # At most NOISE_SAMPLES samples of the window, evenly spaced: a longer window costs no more.
        self._noise_step = -(-self._win // NOISE_SAMPLES)
        self._noise_offsets = np.arange(0, self._win, self._noise_step)
        self._qrs_before, self._qrs_after = (round(v * fs) for v in config.qrs_s)
        self._mask_qrs = self._qrs_before + self._qrs_after > 0
        # QRS shapes: the signal around each R peak, each beat's against those of the `shape_beats` beats before it.
        half_shape = max(1, round(config.shape_s * fs))
        self._shape_offsets = np.arange(-half_shape, half_shape + 1)
        self._lags = np.arange(config.shape_beats, 0, -1)
        if half_shape >= after:
            raise DataError(f"quality gate: shape_s={config.shape_s} s reaches past the beat's window "
                            f"({after / fs:.2f} s after the R peak); give a shorter shape_s")
        self._shapes = np.full((config.shape_beats, len(self._shape_offsets)), np.nan)  # the last beats' shapes
        # The last beats' figures, for the median of `beats` of them (and of `recover_beats`, with it).
        lengths = [config.beats] + ([config.recover_beats] if config.recover_beats else [])
        self._similar: list[deque[float]] = [deque(maxlen=n) for n in lengths]
        self._flat = max(2, round(config.flat_s * fs))
        self._clip = max(2, round(config.clip_s * fs))
        self._second = round(fs)
        self._piece = round(60 * fs)  # samples taken in at once: bounds the memory a long chunk needs
        # Enough history for a beat's noise window and for a run that began long enough before it.
        self._keep = max(self._win, before + self._flat + self._second) + after + round(4 * fs)
        self._raw = np.zeros(0)
        self._runlen = np.zeros(0, np.int64)  # length of the constant run up to and including each sample
        self._filt = np.zeros(0)
        self._n = 0
        self._waiting: list[int] = []
        self._scored_peaks: list[int] = []  # R peaks already scored whose QRS may still fall in a noise window
        self._recent: list[deque[float]] = [deque(maxlen=n) for n in lengths]
        self._measured = 0  # beats with a local SNR so far: the score is warm once it has `beats` of them
        self._run_value, self._run_len = math.nan, 0  # the constant run in progress at the end
        self.flat_samples = 0  # samples in finished flat runs (and the one in progress, at `finish`)

    def process(self, x: np.ndarray, peaks: list[int] | np.ndarray = ()) -> list[BeatQuality]:
        x = np.asarray(x, dtype=np.float64)
        self._waiting.extend(int(p) for p in peaks)
        out = self._ready()
        for i in range(0, len(x), self._piece):
            piece = x[i:i + self._piece]
            self._runlen = np.concatenate([self._runlen[-self._keep:], self._count_flat(piece)])
            self._raw = np.concatenate([self._raw[-self._keep:], piece])
            self._filt = np.concatenate([self._filt[-self._keep:], self._filter(piece)])
            self._n += len(piece)
            out.extend(self._ready())
        return out

    def _ready(self) -> list[BeatQuality]:
        k = bisect.bisect_right(self._waiting, self._n - self.after)
        if not k:
            return []
        r = np.array(self._waiting[:k], dtype=np.int64)
        del self._waiting[:k]
        return self._score(r, r + self.after)

    def finish(self) -> list[BeatQuality]:
        """The beats whose window runs past the end (not measurable: NaN, unless flat or clipped)."""
        if self._run_len >= self._flat:
            self.flat_samples += self._run_len
            self._run_len = 0
        r = np.array(self._waiting, dtype=np.int64)
        self._waiting.clear()
        return self._score(r, np.minimum(r + self.after, self._n)) if len(r) else []

    def _count_flat(self, x: np.ndarray) -> np.ndarray:
        """Each sample's constant-run length so far; adds up the samples of runs of at least `flat_s`
        (for the record's summary)."""
        if not len(x):
            return np.zeros(0, np.int64)
        new_run = np.concatenate([[True], x[1:] != x[:-1]])
        idx = np.arange(len(x))
        runlen = idx - np.maximum.accumulate(np.where(new_run, idx, 0)) + 1
        change = np.flatnonzero(new_run[1:]) + 1
        lengths = np.diff(np.concatenate([[0], change, [len(x)]]))
        if x[0] == self._run_value:
            lengths[0] += self._run_len
            runlen[: lengths[0] - self._run_len] += self._run_len
        elif self._run_len >= self._flat:
            self.flat_samples += self._run_len
        finished = lengths[:-1]
        self.flat_samples += int(finished[finished >= self._flat].sum())
        self._run_value, self._run_len = float(x[-1]), int(lengths[-1])
        return runlen

    def _score(self, r: np.ndarray, hi: np.ndarray) -> list[BeatQuality]:
        """Quality of the beats at `r` (in order), from the samples before `hi` (each one's window end, or the
        end of the signal)."""
        start = self._n - len(self._raw)
        snr = self._local_snr(r, hi, start, self._qrs_mask(r, start) if self._mask_qrs else None)
        if self._mask_qrs:
            reach = self._n - self._keep - self._qrs_after  # a peak before this cannot reach the kept history
            self._scored_peaks = [p for p in self._scored_peaks if p >= reach] + [p for p in r.tolist() if p >= reach]
        threshold, min_similarity = self.config.min_snr_db, self.config.min_similarity
        score, similar = self._scores(snr, self._similarity(r, hi, start))
        out = []
        for ri, hii, si, ci, near in zip(r.tolist(), hi.tolist(), score, similar, self._long_runs(r, hi, start).tolist()):
            reason = self._runs(ri, start, hii) if near else ""
            if not math.isnan(si):
                self._measured += 1
            warm = self._measured >= self.config.beats  # a record's first beats are never gated for noise
            noisy = threshold is not None and si < threshold and (min_similarity is None or ci < min_similarity)
            out.append(BeatQuality(ri, si, reason or ("noise" if warm and noisy else ""), ci))
        return out

    def _scores(self, snr: np.ndarray, similarity: np.ndarray) -> tuple[list[float], list[float]]:
        """The beats' scores, the medians over the last beats' figures (with `recover_beats`, the higher of the two
        medians): a beat without an SNR has no SNR score, one without a similarity keeps the similarity score as it
        stood. A stream's few beats one by one; a block's in array operations (`_medians`)."""
        if len(snr) <= FEW:
            score, similar = [], []
            for si, ci in zip(snr.tolist(), similarity.tolist()):
                if not math.isnan(si):
                    for recent in self._recent:
                        recent.append(si)
                score.append(max(statistics.median(d) for d in self._recent) if not math.isnan(si) else math.nan)
                if not math.isnan(ci):
                    for recent in self._similar:
                        recent.append(ci)
                similar.append(max(statistics.median(d) for d in self._similar) if self._similar[0] else math.nan)
            return score, similar
        measured, shaped = ~np.isnan(snr), ~np.isnan(similarity)
        scores = np.full(len(snr), np.nan)
        scores[measured] = np.max([_medians(d, snr[measured]) for d in self._recent], axis=0)
        before = max(statistics.median(d) for d in self._similar) if self._similar[0] else math.nan
        medians = np.concatenate([[before], np.max([_medians(d, similarity[shaped]) for d in self._similar], axis=0)])
        return scores.tolist(), medians[np.cumsum(shaped)].tolist()

    def _similarity(self, r: np.ndarray, hi: np.ndarray, start: int) -> np.ndarray:
        """Each beat's QRS shape correlated with those of the `shape_beats` beats before it: the highest correlation,
        in %. A clean ECG repeats its shapes (a ventricular beat those of earlier ventricular beats); noise does not.
        NaN where the beat's shape is not all in the history or no earlier shape is known. A stream's few beats at a time
        take a path of their own, beat by beat, that does the same arithmetic in fewer calls (tested: the same figures)."""
        if len(r) <= FEW:
            return np.array([self._similarity_one(ri, hii, start) for ri, hii in zip(r.tolist(), hi.tolist())])
        idx = (r - start)[:, None] + self._shape_offsets
        whole = (idx[:, 0] >= 0) & (idx[:, -1] < np.minimum(hi, self._n) - start)
        shapes = np.full((len(r), idx.shape[1]), np.nan)
        seg = self._raw[idx[whole]]
        seg = seg - seg.mean(axis=1, keepdims=True)
        norm = np.sqrt((seg * seg).sum(axis=1, keepdims=True))
        shapes[whole] = np.where(norm > 0, seg / np.where(norm > 0, norm, 1.0), np.nan)  # a flat stretch: no shape
        k = len(self._shapes)
        both = np.concatenate([self._shapes, shapes])
        # Row i of `shapes` is row k + i of `both`; its predecessors are rows k + i - lag: all pairs in one product.
        rows = np.arange(k, len(both))
        earlier = both[rows[:, None] - self._lags]  # (beats, shape_beats, samples)
        corr = (earlier * both[rows][:, None, :]).sum(axis=2)
        self._shapes = both[-k:]
        return 100 * np.fmax.reduce(corr, axis=1)

    def _local_snr(self, r: np.ndarray, hi: np.ndarray, start: int, qrs_mask: np.ndarray | None) -> np.ndarray:
        """Each beat's local SNR (dB); NaN where its noise window or QRS is not all in the history. `qrs_mask`: the
        history's samples within the QRS reach of the scored peaks and of `r` (None: none left out)."""
        ok = (hi - self._win >= start) & (r - self._half >= start) & (r + self._half < hi)
        if not ok.all():
            snr = np.full(len(r), np.nan)
            if ok.any():
                snr[ok] = self._local_snr(r[ok], hi[ok], start, qrs_mask)
            return snr
        if len(r) <= FEW and qrs_mask is None:
            return np.array([self._local_snr_one(ri - start, hii - start) for ri, hii in zip(r.tolist(), hi.tolist())])
        filt, r, hi = self._filt, r - start, hi - start
        # The band-passed signal has no mean: its median absolute value is the robust noise level. The beats gather
        # their rows of noise samples from a strided view of |filt| (no index array of rows x samples).
        first = hi - self._win
        dev = sliding_window_view(np.abs(filt), self._win)[:, ::self._noise_step][first]
        k = len(self._noise_offsets) // 2
        if qrs_mask is not None:
            idx = first[:, None] + self._noise_offsets
            qrs = qrs_mask[idx] & (idx < (r + self._qrs_after)[:, None])
            # Each QRS sample out of the median: replaced alternately by a value below every other (-1) and one
            # above (inf), so the middle of the row is the middle of the samples kept.
            qrs[(~qrs).sum(axis=1) < len(self._noise_offsets) // 4] = False
            dev = np.where(qrs, np.where(np.cumsum(qrs, axis=1) % 2 == 1, -1.0, np.inf), dev)
        dev.partition(k, axis=1)
        sigma = dev[:, k] / 0.6745
        # The QRS amplitude up to the window end (a beat at the end of the signal: up to its last sample;
        # repeating that sample leaves the peak-to-peak amplitude as it is).
        idx = np.minimum((r - self._half)[:, None] + self._qrs_offsets, (hi - 1)[:, None])
        amp = np.ptp(filt[idx], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 20 * np.log10(amp / (2 * math.sqrt(2) * sigma))
        return np.where((sigma > 0) & (amp > 0), value, np.where(amp > 0, np.inf, -np.inf))

    def _similarity_one(self, r: int, hi: int, start: int) -> float:
        """`_similarity` of one beat (the beat's shape joins the kept ones): the same samples and arithmetic."""
        a, n = r - start + int(self._shape_offsets[0]), len(self._shape_offsets)
        seg = self._raw[a: a + n] if 0 <= a and a + n <= min(hi, self._n) - start else np.full(n, np.nan)
        seg = seg - seg.mean()
        norm = math.sqrt((seg * seg).sum())
        shape = seg / norm if norm > 0 else np.full(len(seg), np.nan)
        corr = (self._shapes * shape).sum(axis=1)
        self._shapes = np.concatenate([self._shapes[1:], shape[None]])
        return float(100 * np.fmax.reduce(corr))

    def _local_snr_one(self, r: int, hi: int) -> float:
        """`_local_snr` of one beat (history indices, all in the history) in fewer calls, as a stream's beat comes: the
        same samples and arithmetic (tested: the same figures)."""
        dev = np.abs(self._filt[hi - self._win: hi: self._noise_step])
        k = len(self._noise_offsets) // 2
        dev.partition(k)
        sigma = float(dev[k]) / 0.6745
        q = r - self._half
        amp = float(np.ptp(self._filt[q: min(q + len(self._qrs_offsets), hi)]))
        if sigma > 0 and amp > 0:
            return float(20 * np.log10(amp / (2 * math.sqrt(2) * sigma)))
        return math.inf if amp > 0 else -math.inf

    def _qrs_mask(self, r: np.ndarray, start: int) -> np.ndarray:
        """Over the kept history (its first sample is `start`): True within the QRS reach of the scored peaks and
        of `r`."""
        peaks = np.concatenate([np.asarray(self._scored_peaks, np.int64), r]) - start
        edges = np.zeros(len(self._filt) + 1, np.int64)
        np.add.at(edges, np.clip(peaks - self._qrs_before, 0, len(self._filt)), 1)
        np.add.at(edges, np.clip(peaks + self._qrs_after, 0, len(self._filt)), -1)
        return np.cumsum(edges[:-1]) > 0

    def _long_runs(self, r: np.ndarray, hi: np.ndarray, start: int) -> np.ndarray:
        """Whether a constant run at least `clip_s` long ends inside each beat's window: only those beats are looked at
        closer (`_runs`). The common case, no such run, is decided for all the beats at once (a stream's few beats
        by slicing)."""
        if len(r) <= FEW:
            return np.array([top > lo and int(self._runlen[lo:top].max()) >= self._clip
                             for lo, top in zip((max(start, v - self.before) - start for v in r.tolist()),
                                                (v - start for v in hi.tolist()))], dtype=bool)
        lo = np.maximum(start, r - self.before) - start
        top = hi - start
        # One maximum per window over the run lengths (a 0 appended, so that a window may end at the last sample).
        bounds = np.column_stack([lo, np.maximum(top, lo + 1)]).ravel()
        longest = np.maximum.reduceat(np.append(self._runlen, 0), bounds)[::2]
        return (top > lo) & (longest >= self._clip)

    def _runs(self, r: int, start: int, hi: int) -> str:
        """'flat' or 'clipped' if the beat's window overlaps such a run (as far as the samples up to `hi` show)."""
        w_lo = max(start, r - self.before)
        lo = max(start, w_lo - self._flat - self._second)
        seg = self._raw[lo - start: hi - start]
        if len(seg) < 2:
            return ""
        change = np.flatnonzero(np.diff(seg) != 0) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(seg)]])
        overlap = (stops > w_lo - lo) & (stops - starts >= self._clip)
        if not overlap.any():
            return ""
        length = stops[overlap] - starts[overlap]
        if (length >= self._flat).any():
            return "flat"
        window = seg[w_lo - lo:]
        low, high = float(window.min()), float(window.max())
        half_range, mid = 0.5 * (high - low), None
        for a, b in zip(starts[overlap].tolist(), stops[overlap].tolist()):
            # A flat top (or bottom) far from the baseline: higher (lower) than both neighbours, in the
            # outer half of the window's range. A run on the baseline or on a slope is not clipping.
            v = float(seg[a])
            up = (a == 0 or seg[a - 1] < v) and (b == len(seg) or seg[b] < v)
            down = (a == 0 or seg[a - 1] > v) and (b == len(seg) or seg[b] > v)
            # The median lies between the window's extremes: a run no farther than half the range from the far
            # extreme cannot be that far from the median either, and most runs end here without it.
            if not (up and v - low > half_range) and not (down and high - v > half_range):
                continue
            mid = float(np.median(window)) if mid is None else mid
            if (up and v - mid > half_range) or (down and mid - v > half_range):
                return "clipped"
        return ""
