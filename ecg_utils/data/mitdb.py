"""The MIT-BIH Arrhythmia Database 1.0.0 on disk: where it is, download from PhysioNet, checksums.

Run as `python -m ecg_utils.data.mitdb` (what `make data` does): with MITDB_DIR set it verifies that
local copy in place and never writes to it; otherwise it downloads the release into
data/raw/mitdb and verifies it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from tqdm.auto import tqdm

from ecg_utils.data.physionet import (
    PHYSIONET_INDEX_URL,
    SUMS_FILE,
    data_step,
    fetch_release,
    parse_checksums,
    sha256_file,
)
from ecg_utils.errors import ChecksumError, DataError
from ecg_utils.paths import DEFAULT_MITDB_DIR, project_path

DB = "mitdb"
VERSION = "1.0.0"
FS = 360

#: The 48 records of the database, as listed in its RECORDS file.
RECORDS: tuple[str, ...] = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "111", "112",
    "113", "114", "115", "116", "117", "118", "119", "121", "122", "123", "124", "200",
    "201", "202", "203", "205", "207", "208", "209", "210", "212", "213", "214", "215",
    "217", "219", "220", "221", "222", "223", "228", "230", "231", "232", "233", "234",
)  # fmt: skip
RECORD_EXTENSIONS = ("hea", "dat", "atr")


def check_record_names(records: Iterable[str] | None) -> tuple[str, ...]:
    """Validate record names (None means all 48) so a typo fails before any work starts."""
    if records is None:
        return RECORDS
    records = tuple(str(r) for r in records)
    unknown = [r for r in records if r not in RECORDS]
    if unknown:
        raise DataError(
            f"unknown MIT-BIH record name(s) {unknown}; the database has these 48: {', '.join(RECORDS)}"
        )
    if not records:
        raise DataError("no records given; pass record names such as ['100', '208'] or None for all 48")
    return records


def required_files(records: Iterable[str]) -> list[str]:
    """The files this project reads for each record: header, signal and reference annotations."""
    return [f"{r}.{ext}" for r in records for ext in RECORD_EXTENSIONS]


def release_checksums() -> dict[str, str]:
    """The 1.0.0 checksums the project carries, for copies that lack SHA256SUMS.txt."""
    text = resources.files("ecg_utils").joinpath("resources/mitdb-1.0.0.sha256").read_text()
    return parse_checksums(text)


def _listed_checksums(root: Path) -> dict[str, str]:
    """Checksums to verify `root` against: its own SHA256SUMS.txt if present, else the carried list.

    A SHA256SUMS.txt that disagrees with the carried 1.0.0 digests belongs to another release.
    """
    carried = release_checksums()
    sums_path = root / SUMS_FILE
    if not sums_path.is_file():
        return carried
    listed = parse_checksums(sums_path.read_text())
    differ = sorted(f for f, h in carried.items() if f in listed and listed[f] != h)
    if differ:
        raise ChecksumError(
            f"{sums_path} gives other checksums than MIT-BIH {VERSION} for {differ[:5]}: this copy is "
            f"not release {VERSION}. Download it with `make data` (without MITDB_DIR)."
        )
    return {**carried, **listed}


def verify_copy(root: str | Path, records: Iterable[str] | None = None, progress: bool = False) -> int:
    """Check that `root` holds every needed file of `records` and that every file present matches.

    Files the checksum list names but the copy lacks (documentation, extra annotators) are
    skipped, as `sha256sum -c --ignore-missing` does. Returns the number of files checked.
    """
    root = Path(root)
    records = check_record_names(records)
    if not root.is_dir():
        raise DataError(
            f"no MIT-BIH copy at {root}: run `make data` to download it from PhysioNet, "
            "or set MITDB_DIR to a folder that holds the 1.0.0 files"
        )
    sums = _listed_checksums(root)
    needed = required_files(records)
    missing = [f for f in needed if not (root / f).is_file()]
    if missing:
        names = sorted({f.split(".")[0] for f in missing})
        raise DataError(
            f"{root} lacks {len(missing)} file(s) of records {names}, e.g. {missing[:3]}; restore them "
            "from PhysioNet's mitdb 1.0.0 (`make data` downloads a complete copy)"
        )
    to_check = sorted({f for f in sums if (root / f).is_file()} | set(needed))
    bad = [f for f in tqdm(to_check, desc="sha256", disable=not progress) if sha256_file(root / f) != sums[f]]
    if bad:
        raise ChecksumError(
            f"checksum mismatch in {root} for {bad}: these files are corrupt or not from mitdb "
            f"{VERSION}. Replace them with PhysioNet's files (`make data` re-downloads them)."
        )
    return len(to_check)


def resolve_mitdb_dir(mitdb_dir: str | Path | None = None) -> Path:
    """Where the raw records are: the argument, else $MITDB_DIR, else data/raw/mitdb."""
    value = mitdb_dir or os.environ.get("MITDB_DIR")
    path = project_path(Path(value).expanduser()) if value else DEFAULT_MITDB_DIR
    if not path.is_dir():
        raise DataError(
            f"no MIT-BIH copy at {path}: run `make data` to download it, or point MITDB_DIR "
            "at an existing copy of mitdb 1.0.0"
        )
    return path


def download(
    dest: str | Path = DEFAULT_MITDB_DIR,
    records: Sequence[str] | None = None,
    index_url: str = PHYSIONET_INDEX_URL,
    progress: bool = True,
) -> Path:
    """Download mitdb 1.0.0 with wfdb into `dest`, verify it, and only then make `dest` appear.

    See `physionet.fetch_release`: files are staged, resumed and verified before `dest` appears.
    """
    dest = project_path(dest)
    records = check_record_names(records)
    if dest.is_dir():
        try:
            verify_copy(dest, records)
        except DataError as exc:
            problem = str(exc).split(";")[0].split(":")[0]
            raise type(exc)(f"{dest} was altered after its download was verified ({problem}): delete the folder "
                            "and run `make data` again") from None
        return dest
    files = [SUMS_FILE, "RECORDS", *required_files(records)]
    return fetch_release(DB, VERSION, files, dest, index_url, _listed_checksums, progress)


def main(argv: Sequence[str] | None = None) -> int:
    return data_step(
        argv, __doc__.splitlines()[0], "MITDB_DIR", DEFAULT_MITDB_DIR,
        verify=lambda root: f"verified local copy {root}: {verify_copy(root, progress=True)} files match mitdb {VERSION}",
        fetch=lambda dest, url: (f"mitdb {VERSION} ready in {download(dest, index_url=url)} ({len(RECORDS)} records, "
                                 "checksums verified)"))


if __name__ == "__main__":
    sys.exit(main())
