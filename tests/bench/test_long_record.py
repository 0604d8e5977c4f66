"""The long record the 24-hour bench classifies."""

from ecg_utils.bench.long_record import write_holter
from ecg_utils.data.records import read_record


def test_a_holter_of_a_fraction_of_an_hour_is_a_readable_record(mitdb_dir, tmp_path):
    """A WFDB record name has no dot: 0.01 h is written under a name wfdb reads back, 36 s at 360 Hz."""
    path = write_holter(tmp_path, 0.01)
    rec = read_record(path, annotator=None)
    assert "." not in path.name and rec.fs == 360 and len(rec.signal) == 36 * 360
