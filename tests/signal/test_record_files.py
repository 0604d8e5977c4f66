"""The per-record form: the dataset's beats, one folder per record, rebuilt only where missing or stale, written
whole or not at all."""

import json

import numpy as np
import pytest

from ecg_utils.errors import DataError
from ecg_utils.signal import record_files
from ecg_utils.signal.context import record_inputs
from ecg_utils.signal.dataset import PreprocessConfig
from ecg_utils.signal.record_files import RecordFiles, build_record_files, write_record

RECORDS = ["100", "101", "106", "119", "208"]  # the records of the `small` dataset, in its order


@pytest.fixture(scope="module")
def folder(mitdb_dir, tmp_path_factory):
    return build_record_files(PreprocessConfig(records=RECORDS), tmp_path_factory.mktemp("rf") / "records",
                              mitdb_dir=mitdb_dir, progress=False)


def test_the_records_hold_the_datasets_beats(folder, small):
    ds, _ = small
    files = RecordFiles.open(folder)
    assert files.records == tuple(RECORDS) and files.config == ds.config
    assert sum(files.beats) == len(ds) and np.array_equal(files.labels(), ds.label)
    assert np.array_equal(files.rhythms(), ds.rhythm)
    inputs = record_inputs(ds.signal, ds.record, int(ds.config["template_beats"]))
    for name in ("106", "208"):
        rows = ds.record == name
        arrays = files.arrays(name)
        assert isinstance(arrays["inputs"], np.memmap)  # mapped, not read
        assert np.array_equal(arrays["inputs"], inputs[rows]) and np.array_equal(arrays["rr"], ds.rr[rows])
        assert np.array_equal(arrays["sample"], ds.sample[rows])


def test_a_rebuild_keeps_current_records_and_redoes_damaged_ones(folder, mitdb_dir):
    meta = {r: (folder / r / "meta.json").stat().st_mtime_ns for r in RECORDS}
    (folder / "101" / "inputs.npy").unlink()
    record_files._mapped.cache_clear()
    build_record_files(PreprocessConfig(records=RECORDS), folder, mitdb_dir=mitdb_dir, progress=False)
    after = {r: (folder / r / "meta.json").stat().st_mtime_ns for r in RECORDS}
    assert [r for r in RECORDS if after[r] != meta[r]] == ["101"]
    assert (folder / "101" / "inputs.npy").is_file()


def test_an_interrupted_record_write_leaves_nothing_behind(tmp_path, monkeypatch):
    arrays = {"inputs": np.zeros((3, 2, 5), np.float32), "rr": np.zeros((3, 4), np.float32),
              "label": np.array(list("NNV")), "sample": np.arange(3), "rhythm": np.array(["(N"] * 3)}
    calls = []
    real_save = np.save

    def save_then_die(path, arr, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_save(path, arr, **kw)

    monkeypatch.setattr(np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_record(tmp_path, "r1", arrays, "key")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(np, "save", real_save)
    with pytest.raises(ValueError, match="differ in length"):
        write_record(tmp_path, "r1", {**arrays, "rr": arrays["rr"][:2]}, "key")
    with pytest.raises(DataError, match="cannot name a folder"):
        write_record(tmp_path, "../r1", arrays, "key")


def test_missing_or_damaged_folders_are_named_with_the_fix(folder, tmp_path):
    with pytest.raises(DataError, match="index.json is missing.*build_record_files"):
        RecordFiles.open(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(DataError, match="damaged"):
        RecordFiles.open(tmp_path)
    index = json.loads((folder / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps(index))  # an index whose record folders are not there
    with pytest.raises(DataError, match="record 100 .* cannot be read.*rebuild"):
        RecordFiles.open(tmp_path).labels()
