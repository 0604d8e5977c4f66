"""Writing WFDB records for the tests: a real record cut short, and the same at another sampling rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb
from scipy import signal as sps


def write_record(folder: Path, name: str, x: np.ndarray, fs: float, ann_sample, ann_symbol, lead: str = "MLII") -> Path:
    """One-lead record `name` (16-bit, mV) with its .atr annotations; returns the path without extension."""
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=[lead], p_signal=x[:, None], fmt=["16"], write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(ann_sample), np.asarray(ann_symbol), write_dir=str(folder))
    return folder / name


def cut_and_resample(mitdb_dir: Path, record: str, seconds: int, folder: Path) -> tuple[Path, Path, wfdb.Annotation]:
    """The first `seconds` of a record's MLII as written at 360 Hz (`r360`) and resampled to 250 Hz (`r250`)."""
    rec = wfdb.rdrecord(str(mitdb_dir / record), channel_names=["MLII"], sampto=seconds * 360)
    ann = wfdb.rdann(str(mitdb_dir / record), "atr", sampto=seconds * 360)
    x = rec.p_signal[:, 0]
    at360 = write_record(folder, "r360", x, 360, ann.sample, ann.symbol)
    at250 = write_record(folder, "r250", sps.resample_poly(x, 25, 36), 250,
                         np.round(ann.sample * 250 / 360).astype(int), ann.symbol)
    return at360, at250, ann


def write_edf(path: Path, signal: np.ndarray, fs: float, labels: list[str], units: str = "mV") -> Path:
    """An EDF file of `signal` (n, leads) in mV, stored in `units` (mV or uV)."""
    from edfio import Edf, EdfSignal

    scale = {"mV": 1.0, "uV": 1e3}[units]
    signals = [EdfSignal(signal[:, i] * scale, fs, label=label, physical_dimension=units)
               for i, label in enumerate(labels)]
    Edf(signals).write(path)
    return path


def write_csv(path: Path, signal: np.ndarray, names: list[str], fs: float, time_column: bool = False) -> Path:
    """A CSV file, one column per lead (mV), optionally with a time column first."""
    import pandas as pd

    frame = pd.DataFrame(signal, columns=names)
    if time_column:
        frame.insert(0, "time_s", np.arange(len(signal)) / fs)
    frame.to_csv(path, index=False)
    return path
