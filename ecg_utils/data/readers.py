"""Open an ECG record in any supported format and read one lead, by name, a block at a time.

Formats: WFDB (a `.hea` header with its signal files, `.atr` annotations optional), EDF/EDF+
(edfio) and CSV (a header row naming one column per lead, sampling rate given by the caller).
Every reader gives the same interface, `RecordSource`: the lead's samples in mV read in blocks
(`blocks`) or by position (`read`), so a record of any length is processed in bounded memory. A record
that carries its start (EDF, a WFDB header with a base time) gives it as `start`; a discontinuous EDF+D file
gives where its contiguous stretches lie on the recording's timeline as `stretches`.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

from ecg_utils.data.records import DEFAULT_LEADS, OWN_RECORD_FIX, _check_signal_file, choose_lead, read_header
from ecg_utils.errors import DataError

#: Column names of a CSV file that hold time, not a lead.
TIME_COLUMNS = ("time", "time_s", "t", "seconds", "timestamp", "sample")
# Physical units to mV; a unit not listed is taken as mV.
_TO_MV = {"uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3}


class Stretch(NamedTuple):
    """Samples [first, first + length) of a source lie at `onset` samples from the recording's start."""

    first: int
    length: int
    onset: int


#: When a record started: a date and time, a time of day alone (a WFDB header may give no date), or unknown.
Start = datetime.datetime | datetime.time | None


class RecordSource(Protocol):
    """One lead of one record, readable block by block."""

    name: str
    format: str
    fs: float  # Hz
    lead: str  # the lead being read
    leads: tuple[str, ...]  # every lead of the record
    n_samples: int  # samples stored
    start: Start
    stretches: tuple[Stretch, ...]  # one, from onset 0, unless the record has gaps (EDF+D)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) in mV (float64; NaN where the record marks samples invalid)."""
        ...

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """The whole lead in consecutive blocks of `size` samples (the last may be shorter)."""
        ...

    def annotations(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Reference annotations (sample, symbol) when the record has them, else None."""
        ...


def _pick(record: str, available: Sequence[str], lead: str | None, preferred: Sequence[str]) -> str:
    """The lead asked for by name; without one, the first preferred lead present, or the only lead."""
    if lead:
        return choose_lead(available, [lead], record)
    if len(available) == 1:
        return available[0]
    return choose_lead(available, preferred, record)


def _check_fs(record: str, fs: float | None, where: str) -> float:
    if fs is None or not math.isfinite(fs) or fs <= 0:
        raise DataError(f"record {record}: sampling rate {fs!r} Hz ({where}); give the real rate, a positive number "
                        "of Hz")
    return float(fs)


def _by_position(source: RecordSource, size: int) -> Iterator[np.ndarray]:
    """`blocks` in terms of `read`, for formats with random access."""
    for start in range(0, source.n_samples, size):
        yield source.read(start, min(start + size, source.n_samples))


class WfdbSource:
    format = "wfdb"

    def __init__(self, path: str | Path, lead: str | None = None, preferred: Sequence[str] = DEFAULT_LEADS) -> None:
        import wfdb

        self._wfdb = wfdb
        self.path = Path(path)
        self.name = self.path.name
        header = read_header(self.path)
        # A signal the header leaves unnamed still has to be named to be picked: "signal <i>".
        self.leads = tuple(n or f"signal {i}" for i, n in enumerate(header.sig_name))
        self.lead = _pick(self.name, self.leads, lead, preferred)
        self.channel = self.leads.index(self.lead)
        _check_signal_file(self.path, header, self.channel)
        self.fs = _check_fs(self.name, header.fs, "in its header")
        self.n_samples = int(header.sig_len)
        self.stretches = (Stretch(0, self.n_samples, 0),)
        self.start = (datetime.datetime.combine(header.base_date, header.base_time)
                      if header.base_date and header.base_time else header.base_time)
        # A one-segment record with one sample per frame in the lead is read with the header parsed here, not once per
        # block (`rdrecord` parses it on every call: most of a block's read time); any other through `rdrecord`.
        self._header = header if (isinstance(header, wfdb.Record) and header.samps_per_frame[self.channel] == 1) else None

    def read(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.zeros(0)
        try:
            if self._header is not None:
                return self._read_samples(start, stop)
            rec = self._wfdb.rdrecord(str(self.path), sampfrom=start, sampto=stop, channels=[self.channel])
        except Exception as exc:  # wfdb fails in assorted ways on damaged files
            raise DataError(f"record {self.name}: its signal file could not be read ({exc}); {OWN_RECORD_FIX}") from exc
        return np.asarray(rec.p_signal[:, 0], dtype=np.float64)

    def _read_samples(self, start: int, stop: int) -> np.ndarray:
        """What `rdrecord(..., channels=[channel]).p_signal[:, 0]` gives (tested), by the same wfdb functions it calls
        once the header is parsed: the digital samples, then (digital - baseline) / gain, NaN for the format's
        invalid-sample value."""
        _signal, h, c = self._wfdb.io._signal, self._header, self.channel
        digital = _signal._rd_segment(
            file_name=h.file_name, dir_name=str(self.path.parent.absolute()), pn_dir=None, fmt=h.fmt, n_sig=h.n_sig,
            sig_len=h.sig_len, byte_offset=h.byte_offset, samps_per_frame=h.samps_per_frame, skew=h.skew,
            init_value=h.init_value, sampfrom=start, sampto=stop, channels=[c], ignore_skew=False, no_file=False,
            sig_data=None, return_res=64)[0]
        invalid = digital == _signal._digi_nan(h.fmt)[c]
        out = digital.astype(np.float64)
        np.subtract(out, h.baseline[c], out)
        np.divide(out, h.adc_gain[c], out)
        out[invalid] = np.nan
        return out

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        return _by_position(self, size)

    def annotations(self) -> tuple[np.ndarray, np.ndarray] | None:
        atr = self.path.with_name(self.name + ".atr")
        if not atr.is_file():
            return None
        try:
            ann = self._wfdb.rdann(str(self.path), "atr")
        except Exception as exc:
            raise DataError(f"record {self.name}: annotation file {atr.name} is unreadable ({exc})") from exc
        return np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype=str)


class ArraySource:
    """A lead already in memory (a signal made in code, e.g. a record with noise added), in mV."""

    format = "array"

    def __init__(self, signal: np.ndarray, fs: float, name: str = "signal", lead: str = "signal",
                 annotations: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.signal = np.asarray(signal, dtype=np.float64)
        if self.signal.ndim != 1:
            raise DataError(f"record {name}: give one lead as a 1-D array, not shape {self.signal.shape}")
        self.name, self.lead, self.leads = name, lead, (lead,)
        self.fs = _check_fs(name, fs, "as given")
        self.n_samples = len(self.signal)
        self._ann = annotations
        self.start: Start = None
        self.stretches = (Stretch(0, self.n_samples, 0),)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.signal[start:stop]

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        return _by_position(self, size)

    def annotations(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self._ann


class EdfSource:
    format = "edf"

    def __init__(self, path: str | Path, lead: str | None = None, preferred: Sequence[str] = DEFAULT_LEADS) -> None:
        from edfio import read_edf

        self.path = Path(path)
        self.name = self.path.stem
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._edf = read_edf(self.path, lazy_load_data=True)
            signals = list(self._edf.signals)
        except Exception as exc:  # edfio raises ValueError and friends on malformed headers
            raise DataError(f"{self.path.name} is not a readable EDF/EDF+ file ({exc})") from exc
        if any("Incomplete data record" in str(w.message) for w in caught):
            raise DataError(f"{self.path.name} is truncated: its last data record is incomplete; upload or copy the "
                            "complete file")
        if not signals:
            raise DataError(f"{self.path.name}: the EDF file holds no signals")
        self.leads = tuple(s.label for s in signals)
        self.lead = _pick(self.name, self.leads, lead, preferred)
        self._signal = signals[self.leads.index(self.lead)]
        self.fs = _check_fs(self.name, self._signal.sampling_frequency, f"of signal {self.lead!r}")
        per_record = round(self._signal.samples_per_data_record)
        self.n_samples = self._edf.num_data_records * per_record
        onsets = self._onsets() if not self._edf.is_continuous else None
        self.stretches = (Stretch(0, self.n_samples, 0),) if onsets is None else _stretches(
            self.path.name, onsets, per_record, self.fs, self._edf.data_record_duration)
        try:
            self.start: Start = self._edf.startdatetime + datetime.timedelta(
                seconds=0.0 if onsets is None else float(onsets[0]))
        except Exception:  # noqa: BLE001 - an anonymised EDF may give no usable date; the start is then unknown
            self.start = None
        self.units = self._signal.physical_dimension.strip()
        self._scale = _TO_MV.get(self.units.lower(), 1.0)

    def read(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.zeros(0)
        try:
            x = self._signal.get_data_slice(start / self.fs, stop / self.fs)
        except Exception as exc:
            raise DataError(f"{self.path.name}: samples {start}-{stop} could not be read ({exc})") from exc
        return np.asarray(x, dtype=np.float64) * self._scale

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        return _by_position(self, size)

    def annotations(self) -> None:
        return None

    def _onsets(self) -> np.ndarray:
        """Each data record's onset (s) from the EDF+ timekeeping annotations, which edfio reads but does not
        expose (edfio is pinned, and `test_readers` checks this on an EDF+D file it writes)."""
        from edfio.edf_annotations import _get_data_record_onset

        try:
            keeping = self._edf._timekeeping_signal
            rows = keeping.digital.reshape((-1, keeping._bytes_per_data_record))
            return np.array([float(_get_data_record_onset(r)) for r in rows])
        except Exception as exc:
            raise DataError(f"{self.path.name}: the EDF+D file's timekeeping annotations are unreadable ({exc}); "
                            "export it again, or as continuous EDF+C") from exc


def _stretches(name: str, onsets: np.ndarray, per_record: int, fs: float, duration: float) -> tuple[Stretch, ...]:
    """Data records whose onsets follow on without a gap, joined into stretches on the recording's timeline."""
    if (np.diff(onsets) < duration - 1e-6).any():
        raise DataError(f"{name}: the EDF+D file's data records overlap or go back in time; export it again")
    breaks = np.flatnonzero(np.abs(np.diff(onsets) - duration) > 1e-6) + 1
    out = []
    for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [len(onsets)]])):
        out.append(Stretch(int(a) * per_record, int(b - a) * per_record, round((onsets[a] - onsets[0]) * fs)))
    return tuple(out)


class StretchSource:
    """One contiguous stretch of a source with gaps, read as a record of its own."""

    def __init__(self, source: RecordSource, stretch: Stretch) -> None:
        self._source, self._first = source, stretch.first
        self.name, self.format, self.fs = source.name, source.format, source.fs
        self.lead, self.leads = source.lead, source.leads
        self.n_samples = stretch.length
        self.start: Start = None
        self.stretches = (Stretch(0, stretch.length, 0),)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._source.read(self._first + start, self._first + min(stop, self.n_samples))

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        return _by_position(self, size)

    def annotations(self) -> None:
        return None


class CsvSource:
    format = "csv"

    def __init__(self, path: str | Path, fs: float | None, lead: str | None = None,
                 preferred: Sequence[str] = DEFAULT_LEADS) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.fs = _check_fs(self.name, fs, "a CSV file has none of its own: pass it with the file")
        try:
            head = pd.read_csv(self.path, nrows=5)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DataError(f"{self.path.name} is not a readable CSV file ({exc})") from exc
        columns = [str(c).strip() for c in head.columns]
        if any(_is_number(c) for c in columns):
            raise DataError(f"{self.path.name}: the first row must name the leads (e.g. MLII,V5), but it holds "
                            f"numbers {columns[:4]}")
        self._columns = [c for c in head.columns if str(c).strip().lower() not in TIME_COLUMNS]
        self.leads = tuple(str(c).strip() for c in self._columns)
        if not self.leads:
            raise DataError(f"{self.path.name}: no lead columns (only {columns})")
        self.lead = _pick(self.name, self.leads, lead, preferred)
        self._column = self._columns[self.leads.index(self.lead)]
        lines, last = 0, b""
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                lines, last = lines + chunk.count(b"\n"), chunk[-1:]
        self.n_samples = lines - 1 + (last not in (b"\n", b""))  # rows below the header
        self.start: Start = None
        self.stretches = (Stretch(0, self.n_samples, 0),)

    def _frames(self, size: int, skip: int = 0, nrows: int | None = None) -> Iterator[np.ndarray]:
        try:
            reader = pd.read_csv(self.path, usecols=[self._column], chunksize=size, skiprows=range(1, skip + 1),
                                 nrows=nrows, dtype={self._column: "float64"}, skip_blank_lines=False)
            for frame in reader:
                yield frame[self._column].to_numpy(dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{self.path.name}: column {self.lead!r} holds values that are not numbers ({exc}); "
                            "leave a cell empty for a missing sample") from exc

    def read(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.zeros(0)
        parts = list(self._frames(max(stop - start, 1), skip=start, nrows=stop - start))
        return np.concatenate(parts) if parts else np.zeros(0)

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        yield from self._frames(size)

    def annotations(self) -> None:
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | Path) -> str:
    """The format of the record at `path`: by suffix, or WFDB when `path` + ".hea" exists."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".edf":
        return "edf"
    if suffix == ".csv":
        return "csv"
    if suffix == ".hea" or path.with_name(path.name + ".hea").is_file():
        return "wfdb"
    raise DataError(f"record {path.name}: no header {path.name}.hea, and not an .edf or .csv file: unknown record "
                    "format; give a WFDB record (its .hea header with the signal files), an EDF/EDF+ file (.edf) or a "
                    "CSV file (.csv, with its sampling rate)")


def open_record(path: str | Path, lead: str | None = None, fs: float | None = None,
                preferred: Sequence[str] = DEFAULT_LEADS) -> RecordSource:
    """Open the record at `path` (a WFDB record with or without `.hea`, an `.edf` or a `.csv` file).

    `lead` picks a lead by name; without it the first of `preferred` the record has is read (or its
    only lead). `fs` is needed for CSV files only and must not contradict a WFDB or EDF header.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "csv":
        if not path.is_file():
            raise DataError(f"no CSV file at {path}")
        return CsvSource(path, fs, lead, preferred)
    if kind == "edf":
        if not path.is_file():
            raise DataError(f"no EDF file at {path}")
        source: RecordSource = EdfSource(path, lead, preferred)
    else:
        source = WfdbSource(path.with_suffix("") if path.suffix.lower() == ".hea" else path, lead, preferred)
    if fs is not None and not math.isclose(fs, source.fs):
        raise DataError(f"record {source.name}: its header says {source.fs:g} Hz, not {fs:g} Hz; leave the rate out "
                        "for WFDB and EDF files")
    return source
