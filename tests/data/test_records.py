import numpy as np
import pytest

from ecg_utils.data.records import MITDB_FIX, choose_lead, read_record
from ecg_utils.errors import DataError


def test_lead_is_chosen_by_name_not_position(mitdb_dir):
    # Record 114 stores MLII on its second channel; 102 and 104 have no MLII at all.
    r114 = read_record(mitdb_dir / "114")
    assert r114.lead == "MLII"
    import wfdb

    both = wfdb.rdrecord(str(mitdb_dir / "114")).p_signal
    np.testing.assert_array_equal(r114.signal, both[:, 1])
    assert read_record(mitdb_dir / "100").lead == "MLII"
    assert read_record(mitdb_dir / "102").lead == "V5"


def test_record_contents(mitdb_dir):
    rec = read_record(mitdb_dir / "100")
    assert rec.fs == 360 and rec.signal.shape == (650000,)
    assert len(rec.ann_sample) == len(rec.ann_symbol) and rec.ann_symbol[0] == "+"


def test_missing_lead_lists_the_leads(mitdb_dir):
    with pytest.raises(DataError, match=r"record 100: none of the leads \['V3'\].*\['MLII', 'V5'\]"):
        read_record(mitdb_dir / "100", leads=["V3"])
    with pytest.raises(DataError):
        choose_lead(["V1"], ["MLII"])


def test_missing_header(tmp_path):
    with pytest.raises(DataError, match=r"record 100: header .*100\.hea is missing; replace it with a complete copy"):
        read_record(tmp_path / "100")
    # MIT-BIH records of the data step get the data step's advice
    with pytest.raises(DataError, match=r"record 100: header .*100\.hea is missing.*make data"):
        read_record(tmp_path / "100", fix=MITDB_FIX)


@pytest.mark.parametrize("ext", ["dat", "atr"])
def test_missing_companion_file(copy_records, ext):
    root = copy_records(["100"])
    (root / f"100.{ext}").unlink()
    with pytest.raises(DataError, match=rf"record 100: .*100\.{ext}.* is missing"):
        read_record(root / "100")


def test_truncated_signal_file(copy_records):
    root = copy_records(["100"])
    with open(root / "100.dat", "r+b") as f:
        f.truncate(1_000_000)
    with pytest.raises(DataError, match=r"record 100: 100\.dat is truncated \(1,000,000 bytes; the header promises 1,950,000\)"):
        read_record(root / "100")


def test_unexpected_sampling_rate(copy_records):
    root = copy_records(["100"])
    hea = root / "100.hea"
    hea.write_bytes(hea.read_bytes().replace(b"100 2 360 650000", b"100 2 250 650000"))
    with pytest.raises(DataError, match="record 100 is sampled at 250 Hz but this pipeline expects 360 Hz"):
        read_record(root / "100")
    assert read_record(root / "100", fs=None).fs == 250


def test_unreadable_header(copy_records):
    root = copy_records(["100"])
    (root / "100.hea").write_text("this is not a header\n")
    with pytest.raises(DataError, match="record 100: header .* is unreadable"):
        read_record(root / "100")


def test_rhythms_from_the_annotations(mitdb_dir):
    from ecg_utils.data.records import read_rhythms

    r = read_rhythms(mitdb_dir / "222")
    seconds = r.seconds()
    assert sum(seconds.values()) == pytest.approx(650_000 / 360)  # every sample under one rhythm
    assert r.label[0] == "(N" and r.start[0] == 0 and {"(AFL", "(AFIB", "(NOD"} <= set(seconds)
    assert r.at(np.array([r.start[1], r.start[1] - 1])).tolist() == [r.label[1], r.label[0]]
    assert read_rhythms(mitdb_dir / "232").seconds() == {"(SBR": pytest.approx(650_000 / 360)}


def test_a_read_record_gives_the_rhythms_without_reading_again(mitdb_dir):
    from ecg_utils.data.records import read_rhythms

    for name in ("222", "232"):
        got, expected = read_record(mitdb_dir / name).rhythms(), read_rhythms(mitdb_dir / name)
        assert got.start.tolist() == expected.start.tolist() and got.label.tolist() == expected.label.tolist()
        assert (got.n_samples, got.fs) == (expected.n_samples, expected.fs)
