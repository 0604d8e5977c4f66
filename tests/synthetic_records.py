"""Writing WFDB records for the tests: a real record cut short, and the same at another sampling rate."""

from __future__ import annotations

import datetime
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


def write_edf_d(path: Path, stretches: list[tuple[float, np.ndarray]], fs: float, labels: list[str],
                start: datetime.datetime | None = None) -> Path:
    """A discontinuous EDF+D file: each stretch (onset s, samples (n, leads) in mV, whole seconds) at its onset.

    edfio writes EDF+C only, so the stretches are written back to back as EDF+C with 1 s data records, and then
    each data record's timekeeping annotation is rewritten with its onset and the header marked EDF+D."""
    from edfio import Edf, EdfAnnotation, EdfSignal, Recording

    data = np.concatenate([x for _, x in stretches])
    onsets = [onset + k for onset, x in stretches for k in range(len(x) // round(fs))]
    signals = [EdfSignal(data[:, i], fs, label=label, physical_dimension="mV") for i, label in enumerate(labels)]
    # A long annotation makes edfio reserve room in every data record for the onsets written below.
    dated = {} if start is None else {"recording": Recording(startdate=start.date()), "starttime": start.time()}
    Edf(signals, annotations=(EdfAnnotation(0, None, "x" * 30),), data_record_duration=1, **dated).write(path)
    raw = bytearray(path.read_bytes())
    header = int(raw[184:192])
    n_signals = int(raw[252:256])
    per_record = [int(raw[256 + n_signals * 216 + i * 8: 256 + n_signals * 216 + i * 8 + 8]) for i in range(n_signals)]
    record_bytes, ann_bytes = 2 * sum(per_record), 2 * per_record[-1]  # the annotation signal comes last
    assert len(raw) == header + len(onsets) * record_bytes
    for i, onset in enumerate(onsets):
        tal = f"+{onset:g}\x14\x14\x00".encode()
        at = header + i * record_bytes + record_bytes - ann_bytes
        assert len(tal) <= ann_bytes
        raw[at: at + ann_bytes] = tal.ljust(ann_bytes, b"\x00")
    raw[192:197] = b"EDF+D"
    path.write_bytes(bytes(raw))
    return path
