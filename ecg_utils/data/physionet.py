"""PhysioNet releases on disk: checksum lists, and a download that verifies before it lets files appear.

Shared by the data steps of the databases this project reads (`mitdb`, `nstdb`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from multiprocessing.pool import ThreadPool
from pathlib import Path

from tqdm.auto import tqdm

from ecg_utils.errors import ChecksumError, DataError, DownloadError
from ecg_utils.paths import project_path

PHYSIONET_INDEX_URL = "https://physionet.org/files/"
SUMS_FILE = "SHA256SUMS.txt"


def parse_checksums(text: str) -> dict[str, str]:
    """Parse a `sha256sum`-style list ('<hex> <name>' lines; '#' comments allowed)."""
    sums = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest.lower()
    return sums


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch_release(db: str, version: str, files: Sequence[str], dest: Path, index_url: str,
                  checksums: Callable[[Path], dict[str, str]], progress: bool = True) -> Path:
    """Download `files` of PhysioNet's `db`/`version` with wfdb into `dest`, verified.

    Files land in `<dest>.partial/` first. An interrupted run keeps what finished there, and
    wfdb completes a partly written file with a range request; files failing their checksum
    (`checksums(staging)` gives the expected digests) are deleted, so nothing that looks valid but
    is not ever reaches `dest`, which appears whole, by one rename.
    """
    from wfdb.io import download as wfdb_download

    staging = dest.with_name(dest.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    db_dir = f"{db}/{version}"

    def fetch(name: str) -> str:
        # wfdb resumes a shorter local file and re-fetches a longer one (its dl_files logic).
        wfdb_download.dl_pn_file((name, "", db_dir, str(staging), False, False))
        return name

    previous_url = wfdb_download.config.db_index_url
    wfdb_download.set_db_index_url(index_url)
    try:
        with ThreadPool(2) as pool:  # two connections, as wfdb's own dl_files uses
            for _ in tqdm(pool.imap_unordered(fetch, files), total=len(files), desc=f"{db} {version}",
                          disable=not progress):
                pass
    except Exception as exc:
        raise DownloadError(
            f"download of {db} {version} from {index_url} failed ({type(exc).__name__}: {exc}). "
            f"Re-run `make data` to resume: finished files are kept in {staging}."
        ) from exc
    finally:
        wfdb_download.set_db_index_url(previous_url)

    sums = checksums(staging)
    bad = [f for f in files if f != SUMS_FILE and sha256_file(staging / f) != sums[f]]
    for name in bad:
        (staging / name).unlink()
    if bad:
        raise ChecksumError(
            f"downloaded files {bad} from {index_url} failed their SHA-256 check and were deleted; "
            "re-run `make data` to fetch them again (a repeated failure means the server or a proxy "
            "alters them)."
        )
    os.replace(staging, dest)
    return dest


def data_step(argv: Sequence[str] | None, description: str, env: str, default_dest: Path,
              verify: Callable[[Path], str], fetch: Callable[[Path, str], str]) -> int:
    """The command line of a data step: verify the local copy `$env` (or `--<env>`) names, else download.

    `verify(root)` and `fetch(dest, index_url)` do the work and return the line to print.
    """
    parser = argparse.ArgumentParser(description=description)
    flag = "--" + env.lower().replace("_", "-")
    parser.add_argument(flag, dest="local", help=f"verify this local copy instead of downloading (default: ${env})")
    parser.add_argument("--dest", default=str(default_dest), help="download target (default: %(default)s)")
    parser.add_argument("--index-url", default=PHYSIONET_INDEX_URL, help="PhysioNet files URL (default: %(default)s)")
    args = parser.parse_args(argv)
    local = args.local or os.environ.get(env)
    try:
        print(verify(project_path(Path(local).expanduser())) if local else fetch(Path(args.dest), args.index_url))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
