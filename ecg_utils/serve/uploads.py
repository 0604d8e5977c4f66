"""Uploaded record files, taken in safely: plain names only, size limits, zips unpacked with care.

Everything is written inside one temporary folder per request. A file name with a path component
(`../x`, `/etc/x`, `a/b`) is refused, never cleaned up into something else; a zip is unpacked entry by
entry with the same rule, and the bytes it really expands to are counted against a limit (its own
header may lie). `find_record` then says which record the files hold.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from ecg_utils.errors import DataError

CHUNK = 1 << 20
MAX_NAME = 128  # characters in an uploaded file name


class UploadError(DataError):
    """A request the service refuses; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024 * 1024  # one request's upload, and what a zip may expand to
    max_files: int = 64  # files in one request or one zip

    @classmethod
    def of_mb(cls, mb: float) -> Limits:
        """The limits for uploads of at most `mb` MB (MiB, as the service counts them)."""
        return cls(max_bytes=int(mb * 1024 * 1024))


def max_upload_mb() -> float:
    """ECG_MAX_UPLOAD_MB (default 256): the service's limit, which the app's uploader shares."""
    raw = os.environ.get("ECG_MAX_UPLOAD_MB", "256")
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"ECG_MAX_UPLOAD_MB={raw!r} is not a number; give the upload limit in MB, e.g. 256") from None
    if not mb > 0:
        raise ValueError(f"ECG_MAX_UPLOAD_MB={raw!r}; give a positive number of MB, e.g. 256")
    return mb


def safe_name(name: str | None) -> str:
    """`name` if it is a plain file name; an UploadError naming it otherwise."""
    if not name:
        raise UploadError("an uploaded file has no file name; send each file with its name (e.g. 100.hea)")
    parts = PurePosixPath(name).parts + PureWindowsPath(name).parts
    if "\x00" in name or len(set(parts)) != 1 or name in (".", "..") or PureWindowsPath(name).drive:
        raise UploadError(f"file name {name!r} has a path component; send plain file names (e.g. 100.hea), "
                          "without folders")
    if len(name) > MAX_NAME:
        raise UploadError(f"file name {name[:40]!r}… is {len(name)} characters long; at most {MAX_NAME} are taken")
    return name


def _copy(src: BinaryIO, dest: Path, budget: int, what: str) -> int:
    """Copy at most `budget` bytes; an UploadError (413) if `src` holds more."""
    n = 0
    with open(dest, "xb") as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            n += len(chunk)
            if n > budget:
                raise UploadError(f"{what} is larger than the limit of {_mb(budget)}", 413)
            out.write(chunk)
    return n


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB"


def save_upload(name: str | None, data: BinaryIO, folder: Path, limits: Limits, used: int = 0) -> tuple[Path, int]:
    """Write one uploaded file into `folder` under its own (plain) name; returns its path and the bytes used so far."""
    name = safe_name(name)
    dest = folder / name
    if dest.exists():
        raise UploadError(f"file {name!r} was sent twice; send each file once")
    n = _copy(data, dest, limits.max_bytes - used, f"the upload (at {name!r})")
    if n == 0:
        raise UploadError(f"file {name!r} is empty")
    return dest, used + n


def expand_zip(path: Path, folder: Path, limits: Limits) -> list[Path]:
    """Unpack the zip at `path` into `folder`: plain entry names only, at most `limits.max_bytes` in all."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UploadError(f"{path.name} is not a readable zip file") from None
    out, used = [], 0
    with archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) > limits.max_files:
            raise UploadError(f"{path.name} holds {len(entries)} files; at most {limits.max_files} are taken")
        for entry in entries:
            name = safe_name(entry.filename)
            dest = folder / name
            if dest.exists():
                raise UploadError(f"{path.name}: entry {name!r} clashes with another file of the upload")
            try:
                with archive.open(entry) as src:
                    used += _copy(src, dest, limits.max_bytes - used, f"{path.name} expanded")
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
                if isinstance(exc, UploadError):
                    raise
                raise UploadError(f"{path.name}: entry {name!r} cannot be unpacked ({exc})") from None
            out.append(dest)
    path.unlink()
    return out


def find_record(paths: list[Path]) -> tuple[Path, str]:
    """The one record among the uploaded files: (path to open, format); 415 for files of no known format."""
    by_suffix: dict[str, list[Path]] = {}
    for p in paths:
        by_suffix.setdefault(p.suffix.lower(), []).append(p)
    names = ", ".join(sorted(p.name for p in paths)) or "none"
    headers, edfs, csvs = by_suffix.get(".hea", []), by_suffix.get(".edf", []), by_suffix.get(".csv", [])
    if len(headers) + len(edfs) + len(csvs) > 1:
        raise UploadError(f"the upload holds more than one record ({names}); send one record per request")
    if headers:
        return headers[0].with_suffix(""), "wfdb"
    if edfs:
        return edfs[0], "edf"
    if csvs:
        return csvs[0], "csv"
    raise UploadError(f"no record in the upload ({names}): send a WFDB record (.hea with its signal files, or a "
                      ".zip of them), one EDF file (.edf) or one CSV file (.csv with the field fs)", 415)


def receive_files(files: list[tuple[str | None, BinaryIO]], folder: Path, limits: Limits) -> tuple[Path, str]:
    """Save the request's files (a zip is unpacked) into `folder` and find the record they hold."""
    if not files:
        raise UploadError("no file in the request; send the record in the multipart field 'files'")
    if len(files) > limits.max_files:
        raise UploadError(f"{len(files)} files in one request; at most {limits.max_files} are taken")
    saved, used = [], 0
    for name, data in files:
        path, used = save_upload(name, data, folder, limits, used)
        saved.append(path)
    if len(saved) == 1 and saved[0].suffix.lower() == ".zip":
        saved = expand_zip(saved[0], folder, limits)
    elif any(p.suffix.lower() == ".zip" for p in saved):
        raise UploadError("send a zip on its own, not beside other files")
    return find_record(saved)
