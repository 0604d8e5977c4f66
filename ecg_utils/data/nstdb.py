"""The MIT-BIH Noise Stress Test Database 1.0.0 on disk: where it is, download from PhysioNet, checksums.

Run as `python -m ecg_utils.data.nstdb` (part of `make data`): with NSTDB_DIR set it verifies that local
copy in place and never writes to it; otherwise it downloads the files this project reads into
data/raw/nstdb and verifies them. The noise records (`bw`, `em`, `ma`) are mixed into clean records
by `noise.mix`; 118 and 119 with electrode-motion noise at 24 ... -6 dB are the EC57 detector test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ecg_utils.data.physionet import PHYSIONET_INDEX_URL, data_step, fetch_release, parse_checksums, sha256_file
from ecg_utils.errors import ChecksumError, DataError
from ecg_utils.paths import RAW_DIR, project_path

DB = "nstdb"
VERSION = "1.0.0"
DEFAULT_NSTDB_DIR = RAW_DIR / "nstdb"
NOISE_RECORDS = ("bw", "em", "ma")
NOISY_RECORDS = tuple(f"{r}e{s}" for r in ("118", "119") for s in ("24", "18", "12", "06", "00", "_6"))
FIX = "run `make data` (it downloads and verifies nstdb), or point NSTDB_DIR at a complete copy of nstdb 1.0.0"


def required_files() -> list[str]:
    """Header and signal of the noise records; header, signal and reference beats of the noisy ones."""
    return [f"{r}.{e}" for r in NOISE_RECORDS for e in ("hea", "dat")] + [
        f"{r}.{e}" for r in NOISY_RECORDS for e in ("hea", "dat", "atr")]


def release_checksums() -> dict[str, str]:
    """The 1.0.0 digests the project carries for the files it reads."""
    return parse_checksums(resources.files("ecg_utils").joinpath("resources/nstdb-1.0.0.sha256").read_text())


def verify_copy(root: str | Path) -> int:
    """Check that `root` holds every file this project reads, each with its 1.0.0 digest; returns how many."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no nstdb copy at {root}: {FIX}")
    sums = release_checksums()
    missing = [f for f in required_files() if not (root / f).is_file()]
    if missing:
        raise DataError(f"{root} lacks {len(missing)} nstdb file(s), e.g. {missing[:3]}: {FIX}")
    bad = [f for f in required_files() if sha256_file(root / f) != sums[f]]
    if bad:
        raise ChecksumError(f"checksum mismatch in {root} for {bad}: these files are corrupt or not from nstdb "
                            f"{VERSION}; replace them with PhysioNet's files ({FIX})")
    return len(required_files())


def resolve_nstdb_dir(nstdb_dir: str | Path | None = None) -> Path:
    """Where the noise stress test records are: the argument, else $NSTDB_DIR, else data/raw/nstdb."""
    value = nstdb_dir or os.environ.get("NSTDB_DIR")
    path = project_path(Path(value).expanduser()) if value else DEFAULT_NSTDB_DIR
    if not path.is_dir():
        raise DataError(f"no nstdb copy at {path}: {FIX}")
    return path


def download(dest: str | Path = DEFAULT_NSTDB_DIR, index_url: str = PHYSIONET_INDEX_URL,
             progress: bool = True) -> Path:
    """Download the files this project reads into `dest`, verified (see `physionet.fetch_release`)."""
    dest = project_path(dest)
    if dest.is_dir():
        verify_copy(dest)
        return dest
    return fetch_release(DB, VERSION, required_files(), dest, index_url, lambda _: release_checksums(), progress)


def main(argv: Sequence[str] | None = None) -> int:
    return data_step(
        argv, __doc__.splitlines()[0], "NSTDB_DIR", DEFAULT_NSTDB_DIR,
        verify=lambda root: f"verified local copy {root}: {verify_copy(root)} files match nstdb {VERSION}",
        fetch=lambda dest, url: f"nstdb {VERSION} ready in {download(dest, index_url=url)} (checksums verified)")


if __name__ == "__main__":
    sys.exit(main())
