"""Read one WFDB record: one lead chosen by name, its sampling rate checked, its beat annotations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from .errors import DataError

#: Leads in order of preference. MLII is MIT-BIH's main lead (channel 0 in 46 records, channel 1
#: in record 114); records 102 and 104 have no MLII and fall back to V5.
DEFAULT_LEADS: tuple[str, ...] = ("MLII", "V5", "V1", "V2", "V4")

# Bytes per sample of the WFDB storage formats, to catch truncated signal files before
# wfdb fails on them with a shape error.
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}

_FIX = "re-run `make data` (it verifies and re-downloads) or repair your MITDB_DIR copy"


@dataclass(frozen=True)
class Record:
    """One lead of a record in physical units (mV) with its reference annotations."""

    name: str
    signal: np.ndarray  # (n_samples,) float64, mV
    fs: float
    lead: str
    ann_sample: np.ndarray  # (n_annotations,) int64 sample indices
    ann_symbol: np.ndarray  # (n_annotations,) annotation symbols, beats and non-beats


def choose_lead(available: Sequence[str], leads: Sequence[str]) -> str:
    """The first of `leads` that the record has; positions differ between records, names don't."""
    for lead in leads:
        if lead in available:
            return lead
    raise DataError(f"none of the leads {list(leads)} is in this record; it has {list(available)}")


def _check_signal_file(path: Path, header: wfdb.Record, channel: int) -> None:
    dat = path.parent / header.file_name[channel]
    if not dat.is_file():
        raise DataError(f"record {path.name}: signal file {dat} is missing; {_FIX}")
    fmt = str(header.fmt[channel])
    if fmt not in _BYTES_PER_SAMPLE or header.sig_len is None:
        return
    in_file = sum(1 for f in header.file_name if f == header.file_name[channel])
    offset = (header.byte_offset or [0] * header.n_sig)[channel] or 0
    expected = offset + math.ceil(header.sig_len * in_file * _BYTES_PER_SAMPLE[fmt])
    size = dat.stat().st_size
    if size < expected:
        raise DataError(
            f"record {path.name}: {dat.name} is truncated ({size:,} bytes; the header promises "
            f"{expected:,}); {_FIX}"
        )


def read_header(path: str | Path) -> wfdb.Record:
    """The record's header, with a clear error when it is missing or unreadable."""
    path = Path(path)
    hea = path.with_name(path.name + ".hea")
    if not hea.is_file():
        raise DataError(f"record {path.name}: header {hea} is missing; {_FIX}")
    try:
        return wfdb.rdheader(str(path))
    except Exception as exc:  # wfdb raises assorted errors for malformed headers
        raise DataError(f"record {path.name}: header {hea} is unreadable ({exc}); {_FIX}") from exc


def read_record(
    path: str | Path,
    leads: Sequence[str] = DEFAULT_LEADS,
    fs: float | None = 360,
    annotator: str | None = "atr",
) -> Record:
    """Read the preferred lead of the record at `path` (no extension, as wfdb takes it).

    `fs` is the sampling rate the caller's pipeline is built for; a record at another rate
    raises instead of silently producing windows of the wrong duration (None accepts any rate).
    `annotator=None` reads no annotations (for records without reference beats).
    """
    path = Path(path)
    header = read_header(path)
    try:
        lead = choose_lead(header.sig_name, leads)
    except DataError as exc:
        raise DataError(f"record {path.name}: {exc}; pass leads=[...] with one of its leads") from None
    if fs is not None and not math.isclose(header.fs, fs):
        raise DataError(
            f"record {path.name} is sampled at {header.fs:g} Hz but this pipeline expects {fs:g} Hz; "
            "resample the record first (scipy.signal.resample_poly)"
        )
    channel = header.sig_name.index(lead)
    _check_signal_file(path, header, channel)
    if annotator is not None:
        ann_path = path.with_name(f"{path.name}.{annotator}")
        if not ann_path.is_file():
            raise DataError(f"record {path.name}: annotation file {ann_path} is missing; {_FIX}")
    signal = wfdb.rdrecord(str(path), channels=[channel]).p_signal[:, 0]
    ann_sample, ann_symbol = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=str)
    if annotator is not None:
        ann = wfdb.rdann(str(path), annotator)
        ann_sample, ann_symbol = np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype=str)
    return Record(name=path.name, signal=signal, fs=float(header.fs), lead=lead,
                  ann_sample=ann_sample, ann_symbol=ann_symbol)
