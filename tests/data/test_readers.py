"""One reader interface over WFDB, EDF and CSV: the lead by name, blocks that add up to the record, clear errors."""

import numpy as np
import pytest
import wfdb

from ecg_utils.data.readers import WfdbSource, detect_format, open_record
from ecg_utils.data.records import read_record
from ecg_utils.errors import DataError, LeadError
from tests.synthetic_records import write_csv, write_edf, write_edf_d


@pytest.fixture(scope="module")
def r114(mitdb_dir):
    """Record 114 (MLII on its second channel), first 2 minutes, both leads, in mV."""
    rec = wfdb.rdrecord(str(mitdb_dir / "114"), sampto=360 * 120)
    return rec.p_signal, list(rec.sig_name)


def test_wfdb_blocks_add_up_to_the_record(mitdb_dir):
    source = open_record(mitdb_dir / "114")
    assert (source.format, source.lead, source.leads, source.fs) == ("wfdb", "MLII", ("V5", "MLII"), 360.0)
    whole = read_record(mitdb_dir / "114").signal
    assert source.n_samples == len(whole)
    np.testing.assert_array_equal(np.concatenate(list(source.blocks(100_000))), whole)
    np.testing.assert_array_equal(source.read(1000, 1100), whole[1000:1100])
    assert open_record(mitdb_dir / "114.hea", lead="V5").lead == "V5"


def test_edf_lead_by_label_and_units(r114, tmp_path):
    signal, names = r114
    path = write_edf(tmp_path / "r114.edf", signal, 360, [f"ECG {n}" for n in names], units="uV")
    source = open_record(path)
    assert (source.format, source.lead, source.fs, source.n_samples) == ("edf", "ECG MLII", 360.0, len(signal))
    x = np.concatenate(list(source.blocks(10_000)))
    np.testing.assert_allclose(x, signal[:, 1], atol=2e-3)  # mV again, within the 16-bit quantisation
    np.testing.assert_array_equal(source.read(500, 600), x[500:600])
    assert open_record(path, lead="v5").lead == "ECG V5"  # names match without case and "ECG" prefix


def test_csv_columns_are_leads(r114, tmp_path):
    signal, names = r114
    path = write_csv(tmp_path / "r114.csv", signal, names, fs=360, time_column=True)
    source = open_record(path, fs=360)
    assert (source.format, source.lead, source.leads, source.n_samples) == ("csv", "MLII", ("V5", "MLII"),
                                                                            len(signal))
    np.testing.assert_allclose(np.concatenate(list(source.blocks(7_000))), signal[:, 1])
    np.testing.assert_allclose(source.read(20_000, 20_010), signal[20_000:20_010, 1])


def test_one_lead_record_uses_its_lead(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("ecg\n" + "\n".join(str(v) for v in np.sin(np.arange(500) / 10)) + "\n")
    source = open_record(path, fs=250)
    assert source.lead == "ecg" and source.n_samples == 500


def test_missing_lead_lists_the_leads(mitdb_dir):
    with pytest.raises(LeadError, match=r"record 100: none of the leads \['V3'\] is in this record; it has "
                                        r"\['MLII', 'V5'\]") as info:
        open_record(mitdb_dir / "100", lead="V3")
    assert info.value.available == ["MLII", "V5"]


def test_sampling_rate_zero_in_header(copy_records):
    root = copy_records(["100"])
    hea = root / "100.hea"
    hea.write_bytes(hea.read_bytes().replace(b"100 2 360 650000", b"100 2 0 650000"))
    with pytest.raises(DataError, match=r"record 100: header 100\.hea gives the sampling rate as 0 Hz"):
        open_record(root / "100")


def test_unreadable_rate_is_not_taken_for_the_wfdb_default(copy_records):
    # wfdb reads a header whose rate field it cannot parse as 250 Hz, the default for a header without one
    root = copy_records(["100"])
    hea = root / "100.hea"
    hea.write_bytes(hea.read_bytes().replace(b"100 2 360 650000", b"100 2 -360 650000"))
    with pytest.raises(DataError, match=r"gives the sampling rate as -360 Hz"):
        open_record(root / "100")
    hea.write_bytes(hea.read_bytes().replace(b"100 2 -360 650000", b"100 2 fast 650000"))
    with pytest.raises(DataError, match=r"gives the sampling rate as nan Hz"):
        open_record(root / "100")


def test_unnamed_signal_gets_a_name(tmp_path):
    import wfdb

    wfdb.wrsamp("u", fs=250, units=["mV"], sig_name=["x"], p_signal=np.zeros((600, 1)), fmt=["16"],
                write_dir=str(tmp_path))
    hea = tmp_path / "u.hea"
    hea.write_text(hea.read_text().replace(" x\n", "\n"))
    assert open_record(tmp_path / "u").lead == "signal 0"


def test_header_naming_a_file_elsewhere_is_refused(copy_records):
    root = copy_records(["100"])
    hea = root / "100.hea"
    hea.write_bytes(hea.read_bytes().replace(b"100.dat", b"../../etc/passwd"))
    with pytest.raises(DataError, match=r"record 100: header 100\.hea is unreadable"):
        open_record(root / "100")


def test_damaged_record_advice_is_for_any_user(copy_records):
    root = copy_records(["100"])
    with open(root / "100.dat", "r+b") as f:
        f.truncate(1_000)
    with pytest.raises(DataError, match="truncated.*replace it with a complete copy") as info:
        open_record(root / "100")
    assert "make data" not in str(info.value)


def test_csv_errors(tmp_path):
    (tmp_path / "a.csv").write_text("MLII\n0.1\n0.2\n")
    with pytest.raises(DataError, match=r"record a: sampling rate None Hz.*pass it with the file"):
        open_record(tmp_path / "a.csv")
    with pytest.raises(DataError, match=r"sampling rate 0\.0 Hz"):
        open_record(tmp_path / "a.csv", fs=0.0)
    (tmp_path / "b.csv").write_text("0.1,0.2\n0.3,0.4\n")
    with pytest.raises(DataError, match="the first row must name the leads"):
        open_record(tmp_path / "b.csv", fs=360)
    (tmp_path / "c.csv").write_text("MLII\n0.1\nhello\n")
    with pytest.raises(DataError, match="column 'MLII' holds values that are not numbers"):
        list(open_record(tmp_path / "c.csv", fs=360).blocks(100))
    (tmp_path / "d.csv").write_text("MLII\n0.1\n\n0.3\n")
    x = np.concatenate(list(open_record(tmp_path / "d.csv", fs=360).blocks(100)))
    assert len(x) == 3 and np.isnan(x[1])  # an empty cell is a missing sample, never a zero or a skipped row


def test_edf_errors(r114, tmp_path):
    (tmp_path / "junk.edf").write_bytes(b"this is not an EDF file" * 20)
    with pytest.raises(DataError, match="junk.edf is not a readable EDF/EDF\\+ file"):
        open_record(tmp_path / "junk.edf")
    path = write_edf(tmp_path / "cut.edf", r114[0], 360, r114[1])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.edf is truncated"):
        open_record(path)


def test_unknown_format(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match="record x.bin: no header x.bin.hea, and not an .edf or .csv file"):
        detect_format(tmp_path / "x.bin")
    with pytest.raises(DataError, match="unknown record format"):
        open_record(tmp_path / "nothing_here")


def test_edf_plus_d_stretches(tmp_path):
    """An EDF+D file's data records are joined into stretches where their onsets follow on; gaps lie between."""
    import datetime

    rng = np.random.default_rng(0)
    start = datetime.datetime(2025, 5, 6, 7, 8, 9)
    path = write_edf_d(tmp_path / "d.edf", [(0, rng.normal(size=(720, 2))), (10, rng.normal(size=(1080, 2)))], 360,
                       ["ECG1", "ECG2"], start=start)
    source = open_record(path, lead="ecg2")
    assert source.stretches == ((0, 720, 0), (720, 1080, 3600)) and source.n_samples == 1800
    assert source.start == start and source.lead == "ECG2"
    with pytest.raises(LeadError, match="ECG1"):
        open_record(path)  # no lead the model prefers: the record's leads are named
    overlap = write_edf_d(tmp_path / "o.edf", [(0, rng.normal(size=(720, 1))), (1, rng.normal(size=(360, 1)))], 360,
                          ["ECG1"])
    with pytest.raises(DataError, match="o.edf: the EDF\\+D file's data records overlap"):
        open_record(overlap)


@pytest.mark.parametrize("record, lead", [("114", "MLII"), ("100", "V5")])  # format 212; MLII on 114's second signal
def test_wfdb_blocks_read_what_rdrecord_reads(mitdb_dir, record, lead):
    """The reader parses the header once and reads each block's samples with wfdb's own functions: the same values as
    `wfdb.rdrecord` of that block, at the start, across the middle and up to the end."""
    source = WfdbSource(mitdb_dir / record, lead=lead)
    channel = source.leads.index(lead)
    for start, stop in ((0, 1), (0, 3601), (123_457, 250_000), (source.n_samples - 999, source.n_samples)):
        want = wfdb.rdrecord(str(mitdb_dir / record), sampfrom=start, sampto=stop, channels=[channel]).p_signal[:, 0]
        np.testing.assert_array_equal(source.read(start, stop), want)


def test_wfdb_format_16_invalid_samples_read_as_nan(tmp_path):
    """Format 16 with the invalid-sample value (-32768) in one lead of two: NaN there, as `rdrecord` gives it."""
    digital = np.array([[0, 5], [-32768, 6], [200, -32768], [-200, 7]], dtype=np.int16)
    wfdb.wrsamp("rec", fs=250, units=["mV", "mV"], sig_name=["I", "MLII"], d_signal=digital, fmt=["16", "16"],
                adc_gain=[200.0, 100.0], baseline=[0, 5], write_dir=str(tmp_path))
    for lead, channel in (("I", 0), ("MLII", 1)):
        want = wfdb.rdrecord(str(tmp_path / "rec"), channels=[channel]).p_signal[:, 0]
        got = WfdbSource(tmp_path / "rec", lead=lead).read(0, 4)
        np.testing.assert_array_equal(got, want)
        assert np.isnan(got).sum() == 1
