import pytest

from ecg_utils.data import mitdb
from ecg_utils.errors import ChecksumError, DataError


def test_release_checksums_cover_every_needed_file():
    sums = mitdb.release_checksums()
    assert set(mitdb.required_files(mitdb.RECORDS)) | {"RECORDS"} == set(sums)
    assert sums["100.dat"] == "b2ea3c250e56e48f4b7b90697832b8ecd1afa1e0bb31f2dcfea4ed6e1075a639"


def test_real_copy_verifies(mitdb_dir):
    # every file the copy has and SHA256SUMS.txt lists: 48 x (hea, dat, atr, xws), the extra
    # annotators, RECORDS, ANNOTATORS
    assert mitdb.verify_copy(mitdb_dir) >= 48 * 3 + 1


def test_checksum_mismatch_names_the_file(copy_records):
    root = copy_records(["100", "101"])
    data = bytearray((root / "101.atr").read_bytes())
    data[100] ^= 0xFF
    (root / "101.atr").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"checksum mismatch in .* for \['101\.atr'\].*make data"):
        mitdb.verify_copy(root, ["100", "101"])


def test_copy_without_sums_file_uses_carried_checksums(copy_records):
    root = copy_records(["100"], sums=False)
    assert mitdb.verify_copy(root, ["100"]) == 4  # 3 record files + RECORDS
    (root / "100.hea").write_bytes((root / "100.hea").read_bytes() + b"# edited\r\n")
    with pytest.raises(ChecksumError, match=r"\['100\.hea'\]"):
        mitdb.verify_copy(root, ["100"])


def test_sums_file_of_another_release_is_refused(copy_records):
    root = copy_records(["100"])
    text = (root / "SHA256SUMS.txt").read_text().replace("b2ea3c25", "00000000")
    (root / "SHA256SUMS.txt").write_text(text)
    with pytest.raises(ChecksumError, match=r"other checksums than MIT-BIH 1\.0\.0 for \['100\.dat'\]"):
        mitdb.verify_copy(root, ["100"])


def test_missing_record_file(copy_records):
    root = copy_records(["100", "101"])
    (root / "101.dat").unlink()
    with pytest.raises(DataError, match=r"lacks 1 file\(s\) of records \['101'\]"):
        mitdb.verify_copy(root, ["100", "101"])


def test_unknown_record_name():
    with pytest.raises(DataError, match=r"unknown MIT-BIH record name\(s\) \['999', '1OO'\]"):
        mitdb.check_record_names(["100", "999", "1OO"])


def test_missing_copy(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no MIT-BIH copy at .*make data"):
        mitdb.verify_copy(tmp_path / "nowhere")
    monkeypatch.setenv("MITDB_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="MITDB_DIR"):
        mitdb.resolve_mitdb_dir()


def test_cli_verifies_local_copy(mitdb_dir, capsys, tmp_path):
    assert mitdb.main(["--mitdb-dir", str(mitdb_dir)]) == 0
    assert "files match mitdb 1.0.0" in capsys.readouterr().out
    assert mitdb.main(["--mitdb-dir", str(tmp_path)]) == 1
    assert "error: " in capsys.readouterr().err
