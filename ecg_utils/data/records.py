"""Read one WFDB record: one lead chosen by name, its sampling rate checked, its beat annotations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from ecg_utils.errors import DataError, LeadError

#: Leads in order of preference. MLII is MIT-BIH's main lead (channel 0 in 46 records, channel 1
#: in record 114); records 102 and 104 have no MLII and fall back to V5.
DEFAULT_LEADS: tuple[str, ...] = ("MLII", "V5", "V1", "V2", "V4")

# Bytes per sample of the WFDB storage formats, to catch truncated signal files before
# wfdb fails on them with a shape error.
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}

#: What to do about a damaged record: a user's own file, or an MIT-BIH record of `make data`.
OWN_RECORD_FIX = "replace it with a complete copy of the record (the .hea header with its signal files)"
MITDB_FIX = "re-run `make data` (it verifies and re-downloads) or repair your MITDB_DIR copy"


@dataclass(frozen=True)
class Record:
    """One lead of a record in physical units (mV) with its reference annotations."""

    name: str
    signal: np.ndarray  # (n_samples,) float64, mV
    fs: float
    lead: str
    ann_sample: np.ndarray  # (n_annotations,) int64 sample indices
    ann_symbol: np.ndarray  # (n_annotations,) annotation symbols, beats and non-beats
    ann_aux: np.ndarray  # (n_annotations,) their aux notes ("(AFIB" on a rhythm change), "" where none

    def rhythms(self) -> Rhythms:
        """The record's rhythm episodes from the annotations already read (`read_rhythms` without reading again)."""
        return _episodes(self.name, self.ann_sample, self.ann_symbol, self.ann_aux, len(self.signal), self.fs)


def _lead_key(name: str) -> str:
    """A lead name compared without case, spaces or an "ECG" prefix: EDF files label MLII "ECG MLII"."""
    key = "".join(name.lower().split())
    return key[3:].lstrip("-_:") if key.startswith("ecg") and len(key) > 3 else key


def choose_lead(available: Sequence[str], leads: Sequence[str], record: str = "") -> str:
    """The first of `leads` that the record has; positions differ between records, names don't.

    Names match exactly first, then without case, spaces or an "ECG" prefix.
    """
    for lead in leads:
        if lead in available:
            return lead
    keys = {_lead_key(a): a for a in available}
    for lead in leads:
        if _lead_key(lead) in keys:
            return keys[_lead_key(lead)]
    raise LeadError(record or "?", list(leads), list(available))


def _check_signal_file(path: Path, header: wfdb.Record, channel: int, fix: str = OWN_RECORD_FIX) -> None:
    dat = path.parent / header.file_name[channel]  # wfdb refuses headers whose file names have a folder
    if not dat.is_file():
        raise DataError(f"record {path.name}: signal file {dat.name} is missing; {fix}")
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
            f"{expected:,}); {fix}"
        )


def _stated_fs(hea: Path, parsed: float | None) -> float | None:
    """The sampling rate the header's record line states. wfdb falls back to 250 Hz (the WFDB default
    for a line that gives none) also when the field is there but unreadable ("-360"): that must fail."""
    for line in hea.read_text(errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            if len(fields) < 3:
                return parsed  # no rate given: the WFDB default
            token = fields[2].split("/")[0].split("(")[0]
            try:
                return float(token)
            except ValueError:
                return math.nan
    return parsed


def read_header(path: str | Path, fix: str = OWN_RECORD_FIX) -> wfdb.Record:
    """The record's header, with a clear error when it is missing, unreadable or has no usable sampling rate."""
    path = Path(path)
    hea = path.with_name(path.name + ".hea")
    if not hea.is_file():
        raise DataError(f"record {path.name}: header {hea.name} is missing; {fix}")
    try:
        header = wfdb.rdheader(str(path))
    except Exception as exc:  # wfdb raises assorted errors for malformed headers
        raise DataError(f"record {path.name}: header {hea.name} is unreadable ({exc}); {fix}") from exc
    fs = _stated_fs(hea, header.fs)
    if fs is None or not math.isfinite(fs) or fs <= 0:
        fs = math.nan if fs is None else fs
        raise DataError(f"record {path.name}: header {hea.name} gives the sampling rate as {fs:g} Hz; "
                        "write the record's real rate (a positive number of Hz) on the header's first line")
    if header.n_sig == 0 or not header.sig_len:
        raise DataError(f"record {path.name}: header {hea.name} describes no signal samples; {fix}")
    return header


def read_record(
    path: str | Path,
    leads: Sequence[str] = DEFAULT_LEADS,
    fs: float | None = 360,
    annotator: str | None = "atr",
    fix: str = OWN_RECORD_FIX,
) -> Record:
    """Read the preferred lead of the record at `path` (no extension, as wfdb takes it).

    `fs` is the sampling rate the caller's pipeline is built for; a record at another rate
    raises instead of silently producing windows of the wrong duration (None accepts any rate).
    `annotator=None` reads no annotations (for records without reference beats). `fix` is the advice
    given when a file is missing or damaged.
    """
    path = Path(path)
    header = read_header(path, fix)
    lead = choose_lead(header.sig_name, leads, path.name)
    if fs is not None and not math.isclose(header.fs, fs):
        raise DataError(
            f"record {path.name} is sampled at {header.fs:g} Hz but this pipeline expects {fs:g} Hz; "
            "resample the record first (scipy.signal.resample_poly)"
        )
    channel = header.sig_name.index(lead)
    _check_signal_file(path, header, channel, fix)
    if annotator is not None:
        ann_path = path.with_name(f"{path.name}.{annotator}")
        if not ann_path.is_file():
            raise DataError(f"record {path.name}: annotation file {ann_path.name} is missing; {fix}")
    signal = wfdb.rdrecord(str(path), channels=[channel]).p_signal[:, 0]
    ann_sample, ann_symbol, ann_aux = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=str), np.zeros(0, dtype=str)
    if annotator is not None:
        ann = wfdb.rdann(str(path), annotator)
        ann_sample, ann_symbol = np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype=str)
        ann_aux = np.array([(note or "").strip("\x00 ") for note in ann.aux_note], dtype=str)
    return Record(name=path.name, signal=signal, fs=float(header.fs), lead=lead,
                  ann_sample=ann_sample, ann_symbol=ann_symbol, ann_aux=ann_aux)


@dataclass(frozen=True)
class Rhythms:
    """A record's rhythm episodes from its reference annotations: each label holds from its sample to the next."""

    name: str
    start: np.ndarray  # (n_episodes,) first sample of each episode
    label: np.ndarray  # (n_episodes,) rhythm, e.g. "(N", "(AFIB"; "unannotated" for a record without rhythm marks
    n_samples: int
    fs: float

    def at(self, sample: np.ndarray) -> np.ndarray:
        """The rhythm in force at each sample."""
        return self.label[np.searchsorted(self.start, np.asarray(sample), side="right") - 1]

    def seconds(self) -> dict[str, float]:
        """Seconds of the record under each rhythm."""
        stops = np.append(self.start[1:], self.n_samples)
        out: dict[str, float] = {}
        for label, a, b in zip(self.label, self.start, stops):
            out[str(label)] = out.get(str(label), 0.0) + float(b - a) / self.fs
        return out


def read_rhythms(path: str | Path, annotator: str = "atr", fix: str = OWN_RECORD_FIX) -> Rhythms:
    """The rhythm episodes of the record at `path`: its `+` annotations and their aux notes (the rhythm names)."""
    path = Path(path)
    header = read_header(path, fix)
    ann_path = path.with_name(f"{path.name}.{annotator}")
    if not ann_path.is_file():
        raise DataError(f"record {path.name}: annotation file {ann_path.name} is missing; {fix}")
    ann = wfdb.rdann(str(path), annotator)
    return _episodes(path.name, ann.sample, ann.symbol, [(note or "").strip("\x00 ") for note in ann.aux_note],
                     int(header.sig_len), float(header.fs))


def _episodes(name: str, sample: Sequence[int], symbol: Sequence[str], aux: Sequence[str], n_samples: int,
              fs: float) -> Rhythms:
    """Rhythm episodes from annotations: each `+` with a rhythm name in its (stripped) aux note starts one."""
    marks = [(int(s), str(note)) for s, sym, note in zip(sample, symbol, aux) if sym == "+" and note]
    # The first rhythm named holds from the record's start (MIT-BIH marks it at the first beat).
    start = [0] + [s for s, _ in marks[1:]]
    label = [marks[0][1] if marks else "unannotated"] + [n for _, n in marks[1:]]
    return Rhythms(name, np.asarray(start, dtype=np.int64), np.asarray(label, dtype=object), n_samples, fs)
