"""Classify every beat of any WFDB record: `python -m ecg_utils.predict RECORD --model CKPT --out beats.csv`.

Beats come from the record's reference annotations (`--beats atr`) or from the R-peak detector
(the default). A record at another sampling rate is resampled to the model's rate; the lead is
picked by name. Stretches of NaN samples are bridged for filtering, and beats whose window
touches one are skipped and counted. The model may be a PyTorch checkpoint or an ONNX export.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps
from tqdm.auto import tqdm

from .aami import CLASSES, beat_mask, to_aami
from .atomic import atomic_open
from .detect import REFINE_S, detect_r_peaks, refine_peaks
from .errors import DataError
from .evaluation import PROBA_COLUMNS, label_detected_beats
from .filters import resample_ratio
from .inference import Classifier, load_classifier
from .preprocess import bandpass, prepare_beats
from .records import read_record


@dataclass(frozen=True)
class Prediction:
    beats: pd.DataFrame  # sample (record's own rate), time_s, pred, p_N ... p_Q
    lead: str
    fs: float  # the record's sampling rate
    n_found: int  # beats found (annotated or detected)
    n_nan: int  # skipped: window touches NaN samples
    n_edge: int  # skipped: window runs past the record's ends


def resample(x: np.ndarray, fs: float, target: float) -> np.ndarray:
    """Polyphase resampling to `target` Hz (anti-aliased, no phase shift)."""
    if np.isclose(fs, target):
        return x
    return sps.resample_poly(x, *resample_ratio(fs, target))


def _bridge_nans(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over NaN stretches (so filters can run), and the NaN mask."""
    nan = np.isnan(x)
    if nan.all():
        raise DataError("the signal has no valid samples (all NaN)")
    if nan.any():
        idx = np.arange(len(x))
        x = x.copy()
        x[nan] = np.interp(idx[nan], idx[~nan], x[~nan])
    return x, nan


def classify_record(path: str | Path, classifier: Classifier, beats: str = "detect", lead: str | None = None,
                    batch_size: int = 1024, progress: bool = True) -> Prediction:
    """Find and classify every beat of the record at `path` (no extension)."""
    if beats not in ("detect", "atr"):
        raise ValueError(f"beats={beats!r}: use 'detect' (R-peak detector) or 'atr' (reference annotations)")
    config = classifier.preprocess
    rec = read_record(path, [lead] if lead else config.leads, fs=None, annotator="atr" if beats == "atr" else None)
    fs_model = config.fs
    raw, nan = _bridge_nans(rec.signal)
    x = resample(raw, rec.fs, fs_model)
    nan = resample(nan.astype(float), rec.fs, fs_model) > 1e-3 if nan.any() else np.zeros(len(x), bool)
    if len(x) < config.window:
        raise DataError(f"record {rec.name} has {len(rec.signal)} samples ({len(rec.signal) / rec.fs:.2f} s), "
                        f"shorter than one beat window ({config.before_s + config.after_s:.2f} s)")
    if beats == "atr":
        keep = beat_mask(rec.ann_symbol)
        r = np.round(rec.ann_sample[keep] * fs_model / rec.fs).astype(np.int64)
    else:
        filtered = bandpass(x, fs_model, config.highpass_hz, config.lowpass_hz, config.filter_order)
        r = np.unique(refine_peaks(filtered, detect_r_peaks(x, fs_model), round(REFINE_S * fs_model)))
    if len(r) < 2:
        raise DataError(f"record {rec.name}: found {len(r)} beat(s); at least 2 are needed for RR features")
    windows, fits, rr = prepare_beats(x, fs_model, r, config)
    start = r[fits] - config.before
    touches_nan = np.zeros(len(start), bool)
    if nan.any():
        csum = np.concatenate([[0], np.cumsum(nan)])
        touches_nan = (csum[start + config.window] - csum[start]) > 0
    ok = ~touches_nan
    windows, rr_in, r_in = windows[ok], rr[fits][ok], r[fits][ok]
    proba = np.zeros((len(windows), len(CLASSES)), dtype=np.float32)
    for i in tqdm(range(0, len(windows), batch_size), desc=f"record {rec.name}", disable=not progress):
        proba[i:i + batch_size] = classifier.predict_proba(windows[i:i + batch_size, None, :], rr_in[i:i + batch_size])
    sample = np.round(r_in * rec.fs / fs_model).astype(np.int64)
    table = pd.DataFrame({"sample": sample, "time_s": np.round(sample / rec.fs, 3),
                          "pred": np.asarray(CLASSES)[proba.argmax(axis=1)]})
    table = table.join(pd.DataFrame(np.round(proba, 4), columns=PROBA_COLUMNS))
    return Prediction(table, rec.lead, rec.fs, len(r), int(touches_nan.sum()), int((~fits).sum()))


def reference_labels(path: str | Path, sample: np.ndarray, tolerance_s: float = 0.150) -> np.ndarray:
    """AAMI class of the reference beat each sample matches within `tolerance_s` ('' if none):
    to score classification on detected beats against a record's annotations."""
    rec = read_record(path, fs=None)
    beats = beat_mask(rec.ann_symbol)
    return label_detected_beats(sample, rec.ann_sample[beats], to_aami(rec.ann_symbol[beats]),
                                round(tolerance_s * rec.fs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("record", help="WFDB record path without extension, e.g. data/raw/mitdb/208")
    parser.add_argument("--model", required=True, help="best.pt checkpoint or .onnx export")
    parser.add_argument("--out", required=True, type=Path, help="CSV file: one row per beat")
    parser.add_argument("--beats", choices=["detect", "atr"], default="detect",
                        help="beat positions: R-peak detector (default) or the record's .atr annotations")
    parser.add_argument("--lead", help="lead name (default: the model's preference, MLII first)")
    args = parser.parse_args(argv)
    try:
        classifier = load_classifier(args.model)
        result = classify_record(args.record, classifier, args.beats, args.lead)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with atomic_open(args.out, "w") as handle:
        result.beats.to_csv(handle, index=False)
    counts = result.beats.pred.value_counts()
    print(f"{args.record}: lead {result.lead}, {result.fs:g} Hz, {result.n_found} beats found ({args.beats}), "
          f"{len(result.beats)} classified ({classifier.backend}) -> {args.out}")
    if result.n_nan or result.n_edge:
        print(f"  skipped {result.n_nan} beats whose window touches NaN samples and {result.n_edge} at the record edges")
    print("  " + "  ".join(f"{c} {counts.get(c, 0)}" for c in CLASSES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
