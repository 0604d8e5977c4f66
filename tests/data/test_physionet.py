"""The download path for real: wfdb against a loopback server laid out like PhysioNet."""

import shutil

import pytest

from ecg_utils.data import mitdb
from ecg_utils.errors import ChecksumError, DataError, DownloadError
from tests.physionet_server import PhysioNetServer

RECORDS = ["100", "114"]
FILES = ["SHA256SUMS.txt", "RECORDS", *mitdb.required_files(RECORDS)]


@pytest.fixture
def server(mitdb_dir):
    with PhysioNetServer(mitdb_dir) as srv:
        yield srv


def _flip_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def test_complete_download_of_all_records(server, tmp_path):
    dest = mitdb.download(tmp_path / "mitdb", index_url=server.index_url, progress=False)
    assert dest == tmp_path / "mitdb" and not (tmp_path / "mitdb.partial").exists()
    assert mitdb.verify_copy(dest) == 48 * 3 + 1
    assert sorted(server.requests("GET")) == sorted(["SHA256SUMS.txt", "RECORDS", *mitdb.required_files(mitdb.RECORDS)])
    # A second call finds the verified copy and downloads nothing.
    n = len(server.log)
    mitdb.download(dest, index_url=server.index_url, progress=False)
    assert len(server.log) == n


def test_corrupted_file_is_named_deleted_and_fetched_again(server, tmp_path):
    server.alter["114.dat"] = _flip_byte
    dest = tmp_path / "mitdb"
    with pytest.raises(ChecksumError, match=r"\['114\.dat'\] .* failed their SHA-256 check and were deleted"):
        mitdb.download(dest, RECORDS, index_url=server.index_url, progress=False)
    staging = tmp_path / "mitdb.partial"
    assert not dest.exists()  # nothing that looks like a finished copy
    assert not (staging / "114.dat").exists()
    assert (staging / "100.dat").exists()

    server.alter.clear()
    server.log.clear()
    mitdb.download(dest, RECORDS, index_url=server.index_url, progress=False)
    assert server.requests("GET") == ["114.dat"]  # only the deleted file travels again
    assert mitdb.verify_copy(dest, RECORDS) == len(FILES) - 1  # SHA256SUMS.txt does not list itself


def test_interrupted_download_resumes(server, tmp_path):
    server.cut_after["100.dat"] = 300_000  # the connection drops after 300 kB, once
    dest = tmp_path / "mitdb"
    with pytest.raises(DownloadError, match=r"Re-run `make data` to resume"):
        mitdb.download(dest, RECORDS, index_url=server.index_url, progress=False)
    assert not dest.exists()
    finished = {p.name for p in (tmp_path / "mitdb.partial").iterdir()}
    assert finished and "100.dat" not in finished

    server.log.clear()
    mitdb.download(dest, RECORDS, index_url=server.index_url, progress=False)
    assert "100.dat" in server.requests("GET")
    # Files that finished before the interruption are checked by size, not fetched again.
    assert not set(server.requests("GET")) & finished
    assert mitdb.verify_copy(dest, RECORDS) == len(FILES) - 1  # SHA256SUMS.txt does not list itself


def test_partly_written_file_is_completed_with_a_range_request(server, tmp_path, mitdb_dir):
    staging = tmp_path / "mitdb.partial"
    staging.mkdir()
    full = (mitdb_dir / "100.dat").read_bytes()
    (staging / "100.dat").write_bytes(full[:500_000])
    shutil.copyfile(mitdb_dir / "100.hea", staging / "100.hea")
    dest = mitdb.download(tmp_path / "mitdb", RECORDS, index_url=server.index_url, progress=False)
    ranged = [(f, r) for m, f, r in server.log if m == "GET" and f == "100.dat"]
    assert ranged == [("100.dat", "bytes=500000-")]
    assert "100.hea" not in server.requests("GET")
    assert (dest / "100.dat").read_bytes() == full


def test_missing_file_on_server(server, tmp_path, mitdb_dir):
    root = tmp_path / "served"
    root.mkdir()
    for name in FILES:
        if name != "114.atr":
            shutil.copyfile(mitdb_dir / name, root / name)
    server.root = root
    with pytest.raises(DownloadError, match=r"download of mitdb 1\.0\.0 from http://127\.0\.0\.1.* failed"):
        mitdb.download(tmp_path / "mitdb", RECORDS, index_url=server.index_url, progress=False)


def test_altered_finished_download_says_delete_and_rerun(server, tmp_path):
    dest = mitdb.download(tmp_path / "mitdb", RECORDS, index_url=server.index_url, progress=False)
    (dest / "114.atr").unlink()
    with pytest.raises(DataError, match=r"was altered after its download was verified \(.* lacks 1 file\(s\) of records \['114'\], e\.g\. \['114\.atr'\]\): delete the folder"):
        mitdb.download(dest, RECORDS, index_url=server.index_url, progress=False)
