"""Classify every beat of a record: the pipeline behind `predict`, the web service and the evaluation.

A record is a WFDB record (path without extension, or its `.hea`), an EDF/EDF+ file or a CSV file (with
its sampling rate). Beats come from the R-peak detector (the default) or the record's reference annotations
(`beats="atr"`). A record at another sampling rate is resampled to the model's rate; the lead is
picked by name. Stretches of NaN samples are bridged for filtering, and beats whose window touches
one are skipped and counted. The signal-quality gate
(`signal.quality`) scores every beat; beats in noise, on a flat line or in clipping are reported as unreadable (class Q, with the reason in `unreadable`), the model's probabilities
kept beside them. `gate=None` scores but gates nothing.

Whole-record mode: a model that carries an adaptation setting (exported with one only where a method passed on its
DS1 folds; `whole_record` in the shipped model's `model.json` says whether it has one) adapts to each record's own
beats before classifying them: its batch norms take part of the record's statistics (`model.batchnorm`), measured on
up to 4,096 evenly spaced beats in one more pass over the blocks. No label is read, and the answer says what was
adapted (`Prediction.adaptation`). `adapt=False` gives the model as trained, beat for beat what the stream gives.

A record of any length is processed in blocks of `block_s` seconds, each filtered with `margin_s`
seconds of signal on both sides (where the zero-phase filter's start-up transients die out), in two
passes: the first finds the beats and the record's filtered mean and standard deviation, the second
cuts and classifies the windows. Memory stays bounded by the block size, and the beats and classes
are those of the record processed whole (a record shorter than a block *is* processed whole).

A record with gaps (EDF+D) is classified stretch by stretch, each from a fresh start, so that no beat's RR
interval or template spans a gap; samples and times count from the recording's start, gaps included. When the
record carries its start time, every beat also gets its clock time.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ecg_utils.data.aami import CLASSES, PROBA_COLUMNS, beat_mask, to_aami
from ecg_utils.data.readers import RecordSource, Start, StretchSource, open_record
from ecg_utils.data.records import read_record
from ecg_utils.errors import DataError
from ecg_utils.model.batchnorm import measured_rows
from ecg_utils.model.inference import BeatSequence, Classifier
from ecg_utils.signal.context import RunningTemplate
from ecg_utils.signal.detect import REFINE_S, QRSDetector, label_detected_beats, refine_peaks
from ecg_utils.signal.filters import StreamResampler, resample_ratio
from ecg_utils.signal.preprocess import bandpass, normalise, rr_features, rr_names
from ecg_utils.signal.quality import PUBLISHED, REASONS, GateConfig, SignalQuality, resolve_gate

BLOCK_S = 600.0  # seconds of signal per block
MARGIN_S = 20.0  # filtered on each side of a block and dropped: transients of the 0.5 Hz high-pass die out


@dataclass(frozen=True)
class Prediction:
    beats: pd.DataFrame  # sample (record's own rate), time_s, pred, p_N ... p_Q, quality_db, similarity, unreadable
    name: str  # the record
    lead: str
    fs: float  # the record's sampling rate
    n_samples: int  # at the record's rate
    n_found: int  # beats found (annotated or detected)
    n_nan: int  # skipped: window touches NaN samples
    n_edge: int  # skipped: window runs past the record's ends
    flat_s: float = 0.0  # seconds of flat line (identical samples for the gate's flat_s or longer)
    start: Start = None  # when the recording started, if it says
    gaps: tuple[tuple[float, float], ...] = ()  # (start s, length s) of each gap of a record with gaps (EDF+D)
    unclassified: tuple[tuple[float, float, str], ...] = ()  # (start s, length s, why) of stretches too short
    adaptation: dict | None = None  # the batch norms' adaptation to this record and the beats it measured (None: none)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def summary(self) -> dict[str, object]:
        """Beats per class, heart rate (from the median RR of the beats found) and skipped beats."""
        counts = self.beats["pred"].value_counts()
        rr = np.diff(self.beats["sample"].to_numpy()) / self.fs
        return {"record": self.name, "lead": self.lead, "fs": self.fs, "duration_s": round(self.duration_s, 3),
                "beats_found": self.n_found, "beats_classified": len(self.beats),
                "counts": {c: int(counts.get(c, 0)) for c in CLASSES},
                "heart_rate_bpm": round(60.0 / float(np.median(rr)), 1) if len(rr) else None,
                "skipped": {"nan": self.n_nan, "edge": self.n_edge},
                "unreadable": {r: int((self.beats["unreadable"] == r).sum()) for r in REASONS},
                "flat_s": round(self.flat_s, 3),
                "start": None if self.start is None else self.start.isoformat(timespec="milliseconds"),
                "gaps": [{"start_s": a, "duration_s": d} for a, d in self.gaps],
                "unclassified_stretches": [{"start_s": a, "duration_s": d, "reason": w} for a, d, w in self.unclassified],
                "adaptation": self.adaptation}


def mode_text(adaptation: dict | None) -> str:
    """Which model classified a record (`Prediction.adaptation`, or the service's `adaptation`), in words."""
    if adaptation is None:
        return "classified by the model as trained (not adapted to this record), as the stream classifies"
    which = {"all": "every batch norm of the model took {w:g} of its", "conv": "the encoder's batch norms took {w:g} of "
             "their", "rr": "the RR features' batch norm took {w:g} of its"}[adaptation["layers"]]
    return (f"whole-record mode: {which.format(w=adaptation['weight'])} statistics from "
            f"{adaptation['beats_measured']:,} of this record's beats (no label read)")


def clock_times(start: Start, time_s: np.ndarray) -> np.ndarray:
    """Each beat's date and time (ISO 8601, ms) from the record's start; a start without a date gives times of day."""
    if isinstance(start, datetime.datetime):
        stamps = pd.Timestamp(start) + pd.to_timedelta(time_s, unit="s")
        return np.asarray(stamps.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3], dtype=object)
    day = pd.Timestamp(datetime.datetime.combine(datetime.date(2000, 1, 1), start))
    return np.asarray((day + pd.to_timedelta(time_s, unit="s")).strftime("%H:%M:%S.%f").str[:-3], dtype=object)


class _NanRuns:
    """Where the record's NaN stretches are and the valid samples on either side: found in a first
    read, they let every block be bridged exactly as `np.interp` bridges the whole record."""

    def __init__(self, source: RecordSource, block: int) -> None:
        runs: list[list[float]] = []  # start, stop, left value, right value (NaN: none)
        n, last = 0, math.nan
        for raw in source.blocks(block):
            nan = np.isnan(raw)
            if nan.any():
                edges = np.diff(np.concatenate([[0], nan.view(np.int8), [0]]))
                for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
                    if a == 0 and runs and runs[-1][1] == n:  # continues a stretch from the last block
                        runs[-1][1] = n + b
                    else:
                        runs.append([n + a, n + b, raw[a - 1] if a else last, math.nan])
            if runs and math.isnan(runs[-1][3]) and runs[-1][1] < n + len(raw):
                runs[-1][3] = raw[runs[-1][1] - n]
            if len(raw):
                last = raw[-1]
            n += len(raw)
        self.n = n
        self.runs = np.array(runs, dtype=np.float64).reshape(-1, 4)
        if len(self.runs) and (self.runs[:, 1] - self.runs[:, 0]).sum() == n:
            raise DataError(f"record {source.name}: lead {source.lead} has no valid samples (all NaN)")

    def bridge(self, raw: np.ndarray, offset: int) -> np.ndarray:
        """`raw` (samples offset ... offset + len) with its NaN stretches filled by linear interpolation."""
        if not len(self.runs) or not np.isnan(raw).any():
            return raw
        x = raw.copy()
        hit = (self.runs[:, 1] > offset) & (self.runs[:, 0] < offset + len(raw))
        for start, stop, left, right in self.runs[hit]:
            left = right if math.isnan(left) else left
            right = left if math.isnan(right) else right
            i = np.arange(max(start, offset), min(stop, offset + len(raw)), dtype=np.int64)
            x[i - offset] = left + (i - (start - 1)) * (right - left) / (stop - (start - 1))
        return x


def _model_rate(source: RecordSource, runs: _NanRuns, fs: float, block: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The bridged lead at the model's rate `fs`, in consecutive chunks, with the mask of samples that
    were NaN (resampled like the signal: any trace of a NaN sample counts)."""
    up_down = None if math.isclose(source.fs, fs) else resample_ratio(source.fs, fs)
    signal = StreamResampler(*up_down) if up_down else None
    mask = StreamResampler(*up_down) if up_down and len(runs.runs) else None
    offset = 0
    for raw in source.blocks(block):
        nan = np.isnan(raw)
        x = runs.bridge(raw, offset)
        offset += len(raw)
        if signal is None:
            yield x, nan
        else:
            y = signal(x)
            yield y, (mask(nan.astype(float)) > 1e-3) if mask else np.zeros(len(y), bool)
    if signal is not None:
        y = signal.flush()
        yield y, (mask.flush() > 1e-3) if mask else np.zeros(len(y), bool)


def _blocks(chunks: Iterator[tuple[np.ndarray, np.ndarray]], core: int,
            margin: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Overlapping blocks (core start, block start, samples, NaN mask): each core of `core` samples with up
    to `margin` samples on either side; the cores tile the signal."""
    buf, nan = np.zeros(0), np.zeros(0, bool)
    start, cs, ended = 0, 0, False
    while True:
        while start + len(buf) < cs + core + margin and not ended:
            try:
                x, m = next(chunks)
            except StopIteration:
                ended = True
            else:
                buf, nan = np.concatenate([buf, x]), np.concatenate([nan, m])
        if cs >= start + len(buf):
            return
        stop = min(len(buf), cs + core + margin - start)
        yield cs, start, buf[:stop], nan[:stop]
        cs += core
        drop = max(0, cs - margin - start)
        buf, nan, start = buf[drop:], nan[drop:], start + drop


class _Moments:
    """Mean and variance merged over blocks (Chan et al.); one block gives numpy's own figures."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        n, mean, m2 = len(x), float(x.mean()), float(x.var()) * len(x)
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total, delta = self.n + n, mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0


def classify_source(source: RecordSource, classifier: Classifier, beats: str = "detect", batch_size: int = 1024,
                    progress: bool = True, block_s: float = BLOCK_S, margin_s: float = MARGIN_S,
                    gate: GateConfig | str | None = PUBLISHED, adapt: bool = True) -> Prediction:
    """Find and classify every beat of an open record, `block_s` seconds at a time, stretch by stretch where the
    record has gaps.

    `gate`: the signal-quality gate (default: the published one); None scores beats but gates none. `adapt`: adapt the
    model to the record's own beats as the model says (`classifier.adaptation`; a model without a setting is used
    as trained); False: the model as trained, beat for beat what the stream gives.
    """
    args = (classifier, beats, batch_size, progress, block_s, margin_s, gate, adapt)
    if len(source.stretches) == 1:
        result = _classify_stretch(source, *args)
    else:
        result = _classify_stretches(source, *args)
    if source.start is not None and len(result.beats):
        table = result.beats.copy()
        table.insert(2, "clock_time", clock_times(source.start, table["time_s"].to_numpy()))
        result = replace(result, beats=table)
    return replace(result, start=source.start)


def _classify_stretches(source: RecordSource, *args: object) -> Prediction:
    """Each contiguous stretch classified as a record of its own, its beats moved to where it lies."""
    fs, parts, gaps, unclassified, end = source.fs, [], [], [], 0
    for stretch in source.stretches:
        if stretch.onset > end:
            gaps.append((round(end / fs, 3), round((stretch.onset - end) / fs, 3)))
        end = stretch.onset + stretch.length
        try:
            part = _classify_stretch(StretchSource(source, stretch), *args)  # type: ignore[arg-type]
        except DataError as exc:  # a stretch shorter than a beat or with too few beats: said, not fatal
            unclassified.append((round(stretch.onset / fs, 3), round(stretch.length / fs, 3), str(exc)))
            continue
        table = part.beats.copy()
        table["sample"] += stretch.onset
        table["time_s"] = np.round(table["sample"] / fs, 3)
        parts.append(replace(part, beats=table))
    if not parts:
        raise DataError(f"record {source.name}: none of its {len(source.stretches)} stretches could be classified "
                        f"({unclassified[0][2]})")
    adapted = [p.adaptation for p in parts if p.adaptation is not None]
    adaptation = ({**adapted[0], "beats_measured": sum(a["beats_measured"] for a in adapted), "stretches": len(adapted)}
                  if adapted else None)  # each stretch adapted to its own beats
    return Prediction(pd.concat([p.beats for p in parts], ignore_index=True), source.name, source.lead, fs, end,
                      sum(p.n_found for p in parts), sum(p.n_nan for p in parts), sum(p.n_edge for p in parts),
                      sum(p.flat_s for p in parts), gaps=tuple(gaps), unclassified=tuple(unclassified),
                      adaptation=adaptation)


def _classify_stretch(source: RecordSource, classifier: Classifier, beats: str, batch_size: int, progress: bool,
                      block_s: float, margin_s: float, gate: GateConfig | str | None, adapt: bool) -> Prediction:
    """One contiguous record (or stretch), `block_s` seconds at a time."""
    gate = resolve_gate(gate)
    if beats not in ("detect", "atr"):
        raise ValueError(f"beats={beats!r}: use 'detect' (R-peak detector) or 'atr' (reference annotations)")
    config = classifier.preprocess
    fs = config.fs
    if not math.isclose(source.fs, fs):
        resample_ratio(source.fs, fs)  # an unsupported rate fails here, before any work
    ann = source.annotations() if beats == "atr" else None
    if beats == "atr" and ann is None:
        raise DataError(f"record {source.name} has no reference annotations (.atr); use detected beats instead")
    # The detector decides a beat up to 4 s after its R peak, which must still lie inside the block.
    core, margin = max(1, round(block_s * fs)), max(config.window + round(5 * fs), round(margin_s * fs))
    block_in = max(1, round(block_s * source.fs))
    runs = _NanRuns(source, block_in)
    passes = 3 if adapt and classifier.adaptation is not None else 2
    bar = tqdm(total=passes * math.ceil(runs.n * fs / source.fs / core), desc=f"record {source.name}",
               disable=not progress, unit="block")

    def blocks() -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        return _blocks(_model_rate(source, runs, fs, block_in), core, margin)

    def band(x: np.ndarray) -> np.ndarray:
        return bandpass(x, fs, config.highpass_hz, config.lowpass_hz, config.filter_order)

    if ann is not None:
        keep = beat_mask(ann[1])
        r = np.unique(np.round(ann[0][keep] * fs / source.fs).astype(np.int64))

    # Pass 1: beats (detected R peaks moved to the filtered signal's largest deflection), their
    # quality (at the positions found, before any move) and the filtered signal's moments.
    moments, found, n_model = _Moments(), [], 0
    detector, half = QRSDetector(fs), round(REFINE_S * fs)
    quality = SignalQuality(fs, gate or GateConfig(), config.before, config.after)
    scored = []
    for cs, start, x, _ in blocks():
        n_model = start + len(x)
        if n_model < config.window:
            raise DataError(f"record {source.name} has {runs.n} samples ({runs.n / source.fs:.2f} s), shorter than "
                            f"one beat window ({config.before_s + config.after_s:.2f} s)")
        filtered = band(x)
        ce = min(cs + core, start + len(x))
        moments.add(filtered[cs - start: ce - start])
        if ann is None:
            new = np.asarray(detector.process(x[cs - start: ce - start]), dtype=np.int64)
            found.append(refine_peaks(filtered, new - start, half) + start)
        else:
            new = r[(r >= cs) & (r < ce)]
        scored.extend(quality.process(x[cs - start: ce - start], new))
        bar.update()
    scored.extend(quality.finish())
    snr = np.array([q.snr_db for q in scored], dtype=np.float64)
    similarity = np.array([q.similarity for q in scored], dtype=np.float64)
    reason = np.array([q.reason for q in scored], dtype=object)
    if ann is None:
        refined = np.concatenate(found) if found else np.zeros(0, np.int64)
        r, first = np.unique(refined, return_index=True)  # two detections may move to one peak
        snr, similarity, reason = snr[first], similarity[first], reason[first]
    if len(r) < 2:
        raise DataError(f"record {source.name}: found {len(r)} beat(s); at least 2 are needed for RR features")

    rr = rr_features(r, fs, config, classifier.rhythm)
    fits = (r - config.before >= 0) & (r + config.after <= n_model)
    offsets = np.arange(config.window)

    def windows() -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Each block's beats: rows of r, their windows scaled with the record's moments, and how many were left
        out because their window touches a NaN sample."""
        for cs, start, x, nan in blocks():
            filtered = band(x)
            sel = np.flatnonzero(fits & (r >= cs) & (r < cs + core))
            idx = (r[sel] - config.before - start)[:, None] + offsets
            touches = nan[idx].any(axis=1)
            yield sel[~touches], normalise(filtered[idx[~touches]], config, moments.mean, moments.std), int(
                touches.sum())
            bar.update()

    # Whole-record mode: the model's batch norms adapted to the record's own beats (a pass that cuts them and
    # keeps the model inputs of the beats the statistics are measured on), no label read.
    def adapted_to_record() -> tuple[Classifier, dict | None]:
        """The classifier adapted to the beats measured (one more pass; only their model inputs are kept)."""
        candidates = np.flatnonzero(fits)
        measured = candidates[measured_rows(len(candidates), classifier.adaptation.max_beats)]
        template, inputs, rows_in = RunningTemplate(config.template_beats, config.window), [], []
        for sel, w, _ in windows():
            take = np.isin(sel, measured)
            inputs.append(template.select(w, take))  # the rows of the classification's inputs, whatever its batches
            rows_in.append(sel[take])
        measured = np.concatenate(rows_in)
        if len(measured) < 2:
            return classifier, None
        model = classifier.adapt(np.concatenate(inputs), rr[measured, :len(rr_names(classifier.rhythm))],
                                 classifier.adaptation)
        return model, {**model.adaptation.to_dict(), "beats_measured": len(measured)}

    adapted = None
    if adapt and classifier.adaptation is not None:
        classifier, adapted = adapted_to_record()

    # Pass 2: windows cut from each block, scaled with the record's moments, classified.
    kept, probas, n_nan = [], [], 0  # rows of r classified, in order; their probabilities
    sequence = BeatSequence(classifier)  # beats go to it in record order: each one's context is the ones before
    waiting_x, waiting_rows = np.zeros((0, config.window), np.float32), np.zeros(0, np.int64)
    for sel, w, touched in windows():
        n_nan += touched
        waiting_x = np.concatenate([waiting_x, w])
        waiting_rows = np.concatenate([waiting_rows, sel])
        # Full batches only, whatever the block size; the rest waits for the next block (or the end).
        n = len(waiting_x) - len(waiting_x) % batch_size
        for i in range(0, n, batch_size):
            probas.append(sequence(waiting_x[i:i + batch_size], rr[waiting_rows[i:i + batch_size]]))
        kept.append(waiting_rows[:n])
        waiting_x, waiting_rows = waiting_x[n:], waiting_rows[n:]
    bar.close()
    if len(waiting_x):
        probas.append(sequence(waiting_x, rr[waiting_rows]))
        kept.append(waiting_rows)
    sel = np.concatenate(kept)
    proba = np.concatenate(probas) if probas else np.zeros((0, len(CLASSES)), np.float32)
    sample = np.round(r[sel] * source.fs / fs).astype(np.int64)
    pred = np.asarray(CLASSES)[proba.argmax(axis=1)] if len(proba) else np.zeros(0, str)
    unreadable = reason[sel].astype(str) if gate is not None else np.full(len(sel), "")
    pred = np.where(unreadable != "", "Q", pred)
    table = pd.DataFrame({"sample": sample, "time_s": np.round(sample / source.fs, 3), "pred": pred})
    # float64 before rounding: written as CSV or JSON, 0.927 stays "0.927" (a float32 would not).
    table = table.join(pd.DataFrame(np.round(proba.astype(np.float64), 4), columns=PROBA_COLUMNS))
    table["quality_db"] = np.round(snr[sel], 1)
    table["similarity"] = np.round(similarity[sel], 1)
    table["unreadable"] = unreadable
    return Prediction(table, source.name, source.lead, source.fs, runs.n, len(r), n_nan, int((~fits).sum()),
                      quality.flat_samples / fs, adaptation=adapted)


def classify_record(path: str | Path, classifier: Classifier, beats: str = "detect", lead: str | None = None,
                    fs: float | None = None, batch_size: int = 1024, progress: bool = True,
                    block_s: float = BLOCK_S, gate: GateConfig | str | None = PUBLISHED, adapt: bool = True) -> Prediction:
    """Find and classify every beat of the record at `path` (WFDB without extension, `.edf` or `.csv` with `fs`)."""
    source = open_record(path, lead=lead, fs=fs, preferred=classifier.preprocess.leads)
    return classify_source(source, classifier, beats, batch_size, progress, block_s, gate=gate, adapt=adapt)


def reference_labels(path: str | Path, sample: np.ndarray, tolerance_s: float = 0.150) -> np.ndarray:
    """AAMI class of the reference beat each sample matches within `tolerance_s` ('' if none):
    to score classification on detected beats against a record's annotations."""
    rec = read_record(path, fs=None)
    beats = beat_mask(rec.ann_symbol)
    return label_detected_beats(sample, rec.ann_sample[beats], to_aami(rec.ann_symbol[beats]),
                                round(tolerance_s * rec.fs))
