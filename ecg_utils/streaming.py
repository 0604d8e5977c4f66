"""Real-time beat classification: samples arrive in chunks, each beat's class leaves as soon as it can.

`StreamingClassifier.process(chunk)` returns the beats it could classify with that chunk. A device
at another sampling rate is resampled on the fly (`filters.StreamResampler`, the same polyphase filter
as offline resampling) and its beats are reported at its own rate. The
training band-pass runs forward over the stream as it arrives (its state carried across chunks);
the causal detector (`detect.QRSDetector`) finds the R peaks. A beat is classified once the next
beat is known (for the next-RR feature) and its window end plus a run-in margin has arrived: the
backward pass of the zero-phase filter runs over that stretch (its start-up transient dies out
within the margin), the R peak moves to the largest deflection within 50 ms as in
`predict.classify_record`, and the window is scaled by the running standard deviation of the
filtered stream since the start (the causal stand-in for the record z-score; the model's input is
relative to the running template, `context`, so the scale cancels). RR features are causal, as in the
dataset. All beats a chunk completes go to the model together (`inference.BeatSequence`, which keeps
the template's last windows and the last encodings). Memory is bounded: a fixed-length sample buffer,
the last windows and encodings, and a handful of beats in flight.

The signal-quality gate (`quality.SignalQuality`) runs beside the detector on the same samples:
a beat in noise, on a flat line or in clipping is reported as Q with its reason, as `predict` does.

The detector decides when a beat can leave: once the oldest beat's stretch has arrived, it runs on every
chunk (the beat leaves with the next detection); before that, in short chunks, it waits for half a second
of them. The training band-pass, the running scale and the gate matter only when a beat leaves, so their
samples wait until a beat is due (or a second has gathered) and go through them in one piece: in short
chunks, most chunks cost nothing but their bookkeeping. Every stage carries its state, so waiting changes
no output, and no beat leaves later (tested).

Every decision depends only on the samples, never on chunk boundaries, so a record streamed in any
chunk size gives the same beats and the same classes as the record fed in one piece.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError
from ecg_utils.model.inference import BeatSequence, Classifier
from ecg_utils.signal.detect import REFINE_S, QRSDetector
from ecg_utils.signal.filters import SectionFilter, StreamResampler, backward, resample_ratio
from ecg_utils.signal.preprocess import RhythmState, rr_names
from ecg_utils.signal.quality import PUBLISHED, BeatQuality, GateConfig, SignalQuality, resolve_gate

#: Samples (s) the detector may wait for before it runs, while no beat is waiting on it: below a beat's earliest leave
#: (the window after the R peak, the R-peak search and the run-in margin, 1.5 s by default) minus the detector's delay.
DETECT_EVERY_S = 0.5


@dataclass(frozen=True)
class BeatEvent:
    sample: int  # R peak, samples since the stream started (at the stream's own rate)
    pred: str
    proba: np.ndarray  # (5,) in CLASSES order
    latency_s: float  # stream time from the R peak to the end of the chunk that let the beat be classified
    quality_db: float = float("nan")  # the gate's score (local SNR, dB)
    unreadable: str = ""  # why the gate reported the beat as Q ('' if readable)
    similarity: float = float("nan")  # the gate's QRS-shape similarity score (%)


class StreamingClassifier:
    def __init__(self, classifier: Classifier, fs: float, margin_s: float = 1.0, max_wait_s: float = 4.0,
                 gate: GateConfig | str | None = PUBLISHED) -> None:
        """`gate`: the signal-quality gate (default: the published one); None scores beats but gates none."""
        cfg = classifier.preprocess
        if not fs > 0:
            raise DataError(f"sampling rate {fs!r} Hz: give the device's rate in Hz, a positive number")
        if cfg.normalize != "record":
            raise DataError(f"streaming supports models trained with normalize='record', not {cfg.normalize!r}")
        self.classifier, self.cfg, self.fs_in = classifier, cfg, fs
        # A device at another rate is resampled as it streams, exactly as `predict.resample` does offline;
        # everything after works at the model's rate, `fs`.
        self._resampler = None if np.isclose(fs, cfg.fs) else StreamResampler(*resample_ratio(fs, cfg.fs))
        self._n_in = 0  # samples received at the device's rate
        self.fs = fs = cfg.fs
        self.detector = QRSDetector(fs)
        self.gate = resolve_gate(gate)
        self._quality = SignalQuality(fs, self.gate or GateConfig(), cfg.before, cfg.after)
        self._scores: dict[int, BeatQuality] = {}  # gate results of the beats in flight
        self._sos = sps.butter(cfg.filter_order, [cfg.highpass_hz, cfg.lowpass_hz], btype="bandpass", fs=fs,
                               output="sos")
        self._forward = SectionFilter(self._sos)
        # The forward-filtered stream filtered once more, causally, has the zero-phase filter's power
        # response |H|^2: its running standard deviation is the scale.
        self._power = SectionFilter(self._sos)
        self._margin = round(margin_s * fs)  # backward pass run-in after the window
        self._half = round(REFINE_S * fs)
        self._max_wait = round(max_wait_s * fs)  # a beat with no successor by then uses its previous RR as next
        self._keep = self._max_wait + cfg.window + 2 * self._half + self._margin
        # The forward-filtered stream and prefix sums of the power-filtered one (its sum and sum of
        # squares up to each sample), aligned, for the last `_keep` samples.
        self._buf = np.zeros(0)
        self._cs = np.zeros(0)
        self._cq = np.zeros(0)
        self._n = 0  # samples received, at the model's rate
        # Samples the detector has seen and the band-pass, scale and gate have not, with the beats found in them.
        self._waiting: list[np.ndarray] = []
        self._n_waiting = 0
        self._waiting_peaks: list[int] = []
        self._most_waiting = round(fs)
        # Until a beat's stretch has arrived nothing waits on the detector, so in short chunks it runs on a few
        # chunks at once; a beat is still detected long before it can leave, and none leaves later for it.
        self._n_undetected = 0
        self._detect_every = round(DETECT_EVERY_S * fs)
        self._pending: deque[int] = deque()  # detected R peaks not classified yet
        self._prev_r: int | None = None
        self._rhythm = RhythmState(cfg, classifier.rhythm)
        self._sequence = BeatSequence(classifier)  # the template's last windows and the last encodings

    def process(self, chunk: np.ndarray) -> list[BeatEvent]:
        x = np.asarray(chunk, dtype=np.float64)
        if x.size == 0:
            return []
        if np.isnan(x).any():
            raise DataError("NaN samples in the stream; bridge or drop them before streaming")
        self._n_in += len(x)
        ready: list[tuple[int, int | None, float, np.ndarray, BeatQuality]] = []
        step = round(self.fs_in)  # at most 1 s at a time, so the bounded buffer never skips a beat
        for i in range(0, len(x), step):
            piece = x[i:i + step] if self._resampler is None else self._resampler(x[i:i + step])
            if len(piece):
                ready.extend(self._advance(piece))
        if not ready:
            return []
        return self._classify(ready)

    def _advance(self, x: np.ndarray) -> list[tuple[int, int | None, float, np.ndarray, BeatQuality]]:
        self._n += len(x)
        self._waiting.append(x)
        self._n_waiting += len(x)
        self._n_undetected += len(x)
        if self._n_undetected < self._detect_every and not self._may_be_due():
            return []
        self._detect()
        if self._n_waiting < self._most_waiting and not self._due():
            return []
        self._catch_up()
        return self._collect()

    def _may_be_due(self) -> bool:
        """Whether the oldest pending beat's stretch has arrived: from then on, whether it can leave depends on the
        next detection, so the detector must see every chunk."""
        return bool(self._pending) and self._n >= self._pending[0] + self.cfg.after + self._half + self._margin

    def _detect(self) -> None:
        """Run the detector over the samples it has not seen (the last of the waiting ones)."""
        k, self._n_undetected = self._n_undetected, 0
        x = self._waiting[-1][-k:] if len(self._waiting[-1]) >= k else np.concatenate(self._waiting)[-k:]
        new = self.detector.process(x)
        self._pending.extend(new)
        self._waiting_peaks.extend(new)

    def _due(self) -> bool:
        """Whether the oldest pending beat can leave now: its stretch has arrived, and so has the next beat or
        `max_wait` (the others wait behind it)."""
        return self._may_be_due() and (len(self._pending) >= 2 or self._n >= self._pending[0] + self._max_wait)

    def _catch_up(self) -> None:
        """Run the waiting samples through the band-pass, the running scale and the gate, in one piece."""
        x = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting)
        self._waiting, self._n_waiting = [], 0
        y = self._forward(x)
        z = self._power(y)
        last_s = self._cs[-1] if len(self._cs) else 0.0
        last_q = self._cq[-1] if len(self._cq) else 0.0
        self._buf = np.concatenate([self._buf, y])[-self._keep:]
        self._cs = np.concatenate([self._cs, last_s + np.cumsum(z)])[-self._keep:]
        self._cq = np.concatenate([self._cq, last_q + np.cumsum(z * z)])[-self._keep:]
        for q in self._quality.process(x, self._waiting_peaks):
            self._scores[q.r] = q
        self._waiting_peaks = []

    def _scale_at(self, k: int) -> float:
        """Standard deviation of the power-filtered stream over its first k samples."""
        j = k - 1 - (self._n - len(self._cs))
        mean = self._cs[j] / k
        return float(np.sqrt(max(self._cq[j] / k - mean * mean, 1e-12)))

    def _collect(self) -> list[tuple[int, int | None, float, np.ndarray, BeatQuality]]:
        """Every beat whose stretch has arrived: (detected R, next detected R, scale, forward-filtered stretch,
        quality).

        A stretch runs from the window start of the earliest R peak refinement may choose to the
        window end of the latest, plus the backward pass's run-in.
        """
        out = []
        before, after = self.cfg.before + self._half, self.cfg.after + self._half + self._margin
        start = self._n - len(self._buf)
        while self._due():
            r = self._pending.popleft()
            r_next = self._pending[0] if self._pending else None  # none yet after max_wait: its previous RR stands in
            lo = r - before
            seg = self._buf[max(0, lo - start): r + after - start]
            if lo < start:  # the stream's first second: pad with its first sample
                seg = np.concatenate([np.full(start - lo, seg[0]), seg])
            out.append((r, r_next, self._scale_at(r + self.cfg.after), seg, self._scores.pop(r)))
        return out

    def _classify(self, ready: list[tuple[int, int | None, float, np.ndarray, BeatQuality]]) -> list[BeatEvent]:
        """Backward pass, R-peak refinement, scaling and RR features for the ready beats; one model call."""
        filt = backward(self._sos, np.stack([seg for *_, seg, _ in ready]))
        h, w = self._half, self.cfg.window
        windows, peaks = np.empty((len(ready), w), np.float32), []
        rr = np.empty((len(ready), len(rr_names(self.classifier.rhythm))), np.float32)
        for i, (r, r_next, scale, _, _) in enumerate(ready):
            shift = int(np.argmax(np.abs(filt[i, self.cfg.before: self.cfg.before + 2 * h + 1]))) - h
            peak = r + shift
            windows[i] = filt[i, h + shift: h + shift + w] / scale
            # RR intervals between detected positions: the next beat's refined one is not known yet.
            rr[i] = self._rr_features(r, r_next)
            peaks.append(peak)
        # All beats this chunk completed go to the model together: the classes do not depend on batching.
        proba = self._sequence(windows, rr)
        return [self._event(p, pr, item[-1]) for p, pr, item in zip(peaks, proba, ready)]

    def _event(self, peak: int, proba: np.ndarray, quality: BeatQuality) -> BeatEvent:
        """The beat at the device's rate; latency up to the last sample received (resampler look-ahead included)."""
        sample = round(peak * self.fs_in / self.fs)
        reason = quality.reason if self.gate is not None else ""
        pred = "Q" if reason else CLASSES[int(proba.argmax())]
        return BeatEvent(sample, pred, proba, (self._n_in - sample) / self.fs_in, quality.snr_db, reason,
                         quality.similarity)

    def _rr_features(self, r: int, r_next: int | None) -> list[float]:
        """The RR features the model reads, as the dataset's (`preprocess.rr_features`)."""
        pre = (r - self._prev_r) / self.fs if self._prev_r is not None else None
        post = (r_next - r) / self.fs if r_next is not None else pre
        pre = pre if pre is not None else post
        if pre is None:  # a lone first beat: nothing to measure yet
            pre = post = 1.0
        self._prev_r = r
        return self._rhythm(pre, post)
