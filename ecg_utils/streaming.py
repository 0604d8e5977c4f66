"""Real-time beat classification: samples arrive in chunks, each beat's class leaves as soon as it can.

`StreamingClassifier.process(chunk)` returns the beats it could classify with that chunk. Per beat:
the causal detector (`detect.QRSDetector`) finds the R peak; once the window end plus a filter margin
has arrived and the next beat is known (for the next-RR feature), the beat's stretch of raw signal
is band-passed forward and backward (the training filter, applied locally: its transients die out
within the margin), scaled by the running standard deviation of the filtered stream since the start
(the causal stand-in for the record z-score the model was trained with), and classified with RR
features whose record mean is the running mean so far. Memory is bounded: a fixed-length sample
buffer, and a handful of beats in flight.

Every decision depends only on the samples, never on chunk boundaries, so a record streamed in any
chunk size gives the same beats and the same classes as the record fed in one piece.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from .aami import CLASSES
from .detect import QRSDetector
from .errors import DataError
from .inference import Classifier


@dataclass(frozen=True)
class BeatEvent:
    sample: int  # R peak, samples since the stream started
    pred: str
    proba: np.ndarray  # (5,) in CLASSES order
    latency_s: float  # from the R peak to the sample whose arrival made the beat classifiable


class StreamingClassifier:
    def __init__(self, classifier: Classifier, fs: float, margin_s: float = 1.0, max_wait_s: float = 4.0) -> None:
        cfg = classifier.preprocess
        if not np.isclose(fs, cfg.fs):
            raise DataError(f"the stream is sampled at {fs:g} Hz but the model at {cfg.fs:g} Hz; resample the "
                            "device signal to the model's rate before streaming")
        if cfg.normalize != "record":
            raise DataError(f"streaming supports models trained with normalize='record', not {cfg.normalize!r}")
        self.classifier, self.cfg, self.fs = classifier, cfg, fs
        self.detector = QRSDetector(fs)
        self._sos = sps.butter(cfg.filter_order, [cfg.highpass_hz, cfg.lowpass_hz], btype="bandpass", fs=fs,
                               output="sos")
        # The forward-backward filter's power response |H|^2, run causally, gives the running scale.
        self._sos2 = np.vstack([self._sos, self._sos])
        self._zi2 = np.zeros((self._sos2.shape[0], 2))
        self._margin = round(margin_s * fs)
        self._max_wait = round(max_wait_s * fs)  # a beat with no successor by then uses its previous RR as next
        self._keep = self._max_wait + cfg.window + 2 * self._margin
        # Raw samples and prefix sums of the causally filtered stream (its sum and sum of squares
        # up to each sample), aligned, for the last `_keep` samples.
        self._buf = np.zeros(0)
        self._cs = np.zeros(0)
        self._cq = np.zeros(0)
        self._n = 0  # samples received
        self._pending: deque[tuple[int, int]] = deque()  # (R sample, samples received when it was detected)
        self._prev_r: int | None = None
        self._pre_rr: deque[float] = deque(maxlen=cfg.local_rr_beats)
        self._rr_sum, self._rr_n = 0.0, 0

    def process(self, chunk: np.ndarray) -> list[BeatEvent]:
        x = np.asarray(chunk, dtype=np.float64)
        if x.size == 0:
            return []
        if np.isnan(x).any():
            raise DataError("NaN samples in the stream; bridge or drop them before streaming")
        ready: list[tuple[int, float, np.ndarray, list[float]]] = []
        step = round(self.fs)  # at most 1 s at a time, so the bounded buffer never skips a beat
        for i in range(0, len(x), step):
            ready.extend(self._advance(x[i:i + step]))
        if not ready:
            return []
        # One model call for all beats this chunk completed: the classes do not depend on batching.
        proba = self.classifier.predict_proba(np.asarray([b[2] for b in ready], np.float32)[:, None, :],
                                              np.asarray([b[3] for b in ready], np.float32))
        return [BeatEvent(r, CLASSES[int(p.argmax())], p, latency) for (r, latency, _, _), p in zip(ready, proba)]

    def _advance(self, x: np.ndarray) -> list[tuple[int, float, np.ndarray, list[float]]]:
        y, self._zi2 = sps.sosfilt(self._sos2, x, zi=self._zi2)
        last_s = self._cs[-1] if len(self._cs) else 0.0
        last_q = self._cq[-1] if len(self._cq) else 0.0
        self._buf = np.concatenate([self._buf, x])[-self._keep:]
        self._cs = np.concatenate([self._cs, last_s + np.cumsum(y)])[-self._keep:]
        self._cq = np.concatenate([self._cq, last_q + np.cumsum(y * y)])[-self._keep:]
        self._n += len(x)
        self._pending.extend((r, self._n) for r in self.detector.process(x))
        return self._classify_ready()

    def _scale_at(self, k: int) -> float:
        """Standard deviation of the filtered stream over its first k samples."""
        j = k - 1 - (self._n - len(self._cs))
        mean = self._cs[j] / k
        return float(np.sqrt(max(self._cq[j] / k - mean * mean, 1e-12)))

    def _classify_ready(self) -> list[tuple[int, float, np.ndarray, list[float]]]:
        """Model inputs of every beat that can be classified now: (R, latency s, window, RR features)."""
        out = []
        need_after = self.cfg.after + self._margin
        start = self._n - len(self._buf)
        while self._pending:
            r, _ = self._pending[0]
            if self._n < r + need_after:
                break
            if len(self._pending) >= 2:
                r_next, seen_next = self._pending[1]
                ready_at = max(seen_next, r + need_after)
            elif self._n >= r + self._max_wait:
                r_next, ready_at = None, r + self._max_wait
            else:
                break
            self._pending.popleft()
            lo = r - self.cfg.before - self._margin
            seg = self._buf[max(0, lo - start): r + need_after - start]
            if lo < start:  # the stream's first second: pad with its first sample
                seg = np.concatenate([np.full(start - lo, seg[0]), seg])
            filt = sps.sosfiltfilt(self._sos, seg)
            window = filt[self._margin: self._margin + self.cfg.window] / self._scale_at(r + self.cfg.after)
            out.append((r, (ready_at - r) / self.fs, window, self._rr_features(r, r_next)))
        return out

    def _rr_features(self, r: int, r_next: int | None) -> list[float]:
        """Previous, next, causal local-mean and running-mean RR (s), as the dataset's RR features."""
        pre = (r - self._prev_r) / self.fs if self._prev_r is not None else None
        post = (r_next - r) / self.fs if r_next is not None else pre
        pre = pre if pre is not None else post
        if pre is None:  # a lone first beat: nothing to measure yet
            pre = post = 1.0
        self._pre_rr.append(pre)
        self._rr_sum += pre
        self._rr_n += 1
        self._prev_r = r
        return [pre, post, sum(self._pre_rr) / len(self._pre_rr), self._rr_sum / self._rr_n]
