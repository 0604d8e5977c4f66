"""The noise stress test database's data step: local copies verified, downloads verified, bad copies named."""

import shutil

import pytest

from ecg_utils.data import nstdb
from ecg_utils.errors import ChecksumError, DataError
from tests.physionet_server import PhysioNetServer


def test_shared_copy_verifies(nstdb_dir):
    assert nstdb.verify_copy(nstdb_dir) == len(nstdb.required_files()) == 42


def test_download_from_a_physionet_like_server(nstdb_dir, tmp_path):
    with PhysioNetServer(nstdb_dir, prefix="/files/nstdb/1.0.0/") as server:
        dest = nstdb.download(tmp_path / "nstdb", index_url=server.index_url, progress=False)
    assert dest == tmp_path / "nstdb" and not (tmp_path / "nstdb.partial").exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(nstdb.required_files())
    assert nstdb.download(dest, index_url="http://127.0.0.1:9/files/", progress=False) == dest  # verified, no fetch


def test_altered_file_on_the_server_is_refused(nstdb_dir, tmp_path):
    with PhysioNetServer(nstdb_dir, prefix="/files/nstdb/1.0.0/") as server:
        server.alter["em.dat"] = lambda data: data[:-1] + bytes([data[-1] ^ 1])
        with pytest.raises(ChecksumError, match="em.dat"):
            nstdb.download(tmp_path / "nstdb", index_url=server.index_url, progress=False)
    assert not (tmp_path / "nstdb").exists() and not (tmp_path / "nstdb.partial" / "em.dat").exists()


def test_incomplete_or_corrupt_copy_is_named(nstdb_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(nstdb_dir, copy)
    (copy / "118e06.atr").unlink()
    with pytest.raises(DataError, match="118e06.atr"):
        nstdb.verify_copy(copy)
    shutil.copyfile(nstdb_dir / "118e06.atr", copy / "118e06.atr")
    (copy / "ma.hea").write_text((copy / "ma.hea").read_text() + "# edited\n")
    with pytest.raises(ChecksumError, match="ma.hea"):
        nstdb.verify_copy(copy)
    with pytest.raises(DataError, match="make data"):
        nstdb.resolve_nstdb_dir(tmp_path / "nowhere")


def test_command_line_verifies_a_local_copy_or_says_why_not(nstdb_dir, tmp_path, capsys):
    assert nstdb.main(["--nstdb-dir", str(nstdb_dir)]) == 0
    assert "42 files match nstdb 1.0.0" in capsys.readouterr().out
    assert nstdb.main(["--nstdb-dir", str(tmp_path)]) == 1
    assert "lacks 42 nstdb file(s)" in capsys.readouterr().err
