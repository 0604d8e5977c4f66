import os

import numpy as np
import pytest

from ecg_utils.data.aami import CLASSES
from ecg_utils.data.rhythm_groups import rhythm_index
from ecg_utils.errors import DataError
from ecg_utils.signal.dataset import build_dataset, dataset_is_current, load_dataset, process_record
from ecg_utils.signal.preprocess import PreprocessConfig

# Reference beat annotations in the 48 records (SOURCE.md of the shared copy; PhysioNet's own counts).
REFERENCE_COUNTS = {"N": 90_631, "S": 2_781, "V": 7_236, "F": 803, "Q": 8_043}


def test_full_database_counts(full_dataset):
    d = full_dataset
    dropped = d.dropped
    assert len(d) + len(dropped) == sum(REFERENCE_COUNTS.values()) == 109_494
    for c in CLASSES:
        kept = int((d.label == c).sum())
        assert kept + int((dropped.label == c).sum()) == REFERENCE_COUNTS[c], c
    # The default window (0.25 s + 0.45 s) loses 42 beats at the record edges and nothing else.
    assert len(dropped) == 42
    assert set(dropped.reason) == {"window starts before the record", "window ends after the record"}
    assert d.signal.shape == (len(d), 252) and d.signal.dtype == np.float32
    assert np.isfinite(d.signal).all() and np.isfinite(d.rr).all() and (d.rr[:, :5] > 0).all() and (d.rr[:, 5] >= 0).all()
    assert sorted(set(d.record)) == sorted(d.config["records"]) and len(set(d.record)) == 48
    assert set(d.lead[np.isin(d.record, ["102", "104"])]) == {"V5"}
    assert set(d.lead[~np.isin(d.record, ["102", "104"])]) == {"MLII"}
    # Every beat sits in an annotated rhythm of a known group; 201 holds sinus rhythm and atrial fibrillation.
    assert (rhythm_index(d.rhythm) >= 0).all()
    assert {"(N", "(AFIB"} <= set(d.rhythm[d.record == "201"])


def test_beats_sit_on_their_annotations(full_dataset):
    d = full_dataset
    # Windows are z-scored per record, so the R peak (index 90) of normal beats in record 100
    # stands out: it is the window's largest absolute value in nearly every beat.
    rows = np.flatnonzero((d.record == "100") & (d.label == "N"))
    peak = np.abs(d.signal[rows]).argmax(axis=1)
    assert np.mean(np.abs(peak - 90) <= 5) > 0.95
    assert np.all(np.diff(d.sample[d.record == "100"]) > 0)


def test_cache_hit_and_rebuild(mitdb_dir, tmp_path):
    out = tmp_path / "beats.npz"
    config = PreprocessConfig(records=["100", "114"])
    build_dataset(config, out, mitdb_dir=mitdb_dir, progress=False)
    stamp = os.stat(out).st_mtime_ns
    assert dataset_is_current(out, config)
    build_dataset(config, out, mitdb_dir=mitdb_dir, progress=False)
    assert os.stat(out).st_mtime_ns == stamp  # same configuration: cache hit, file untouched

    wider = PreprocessConfig(records=["100", "114"], after_s=0.5)
    assert not dataset_is_current(out, wider)
    build_dataset(wider, out, mitdb_dir=mitdb_dir, progress=False)
    d = load_dataset(out)
    assert d.signal.shape[1] == 90 + 180 and d.config["after_s"] == 0.5
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left


def test_corrupt_cache_file_rebuilds(mitdb_dir, tmp_path):
    out = tmp_path / "beats.npz"
    out.write_bytes(b"not a zip file")
    config = PreprocessConfig(records=["100"])
    assert not dataset_is_current(out, config)
    assert len(load_dataset(build_dataset(config, out, mitdb_dir=mitdb_dir, progress=False))) > 2000


def test_beat_normalisation(mitdb_dir):
    beats, _ = process_record(mitdb_dir, "100", PreprocessConfig(records=["100"], normalize="beat"))
    np.testing.assert_allclose(beats["signal"].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(beats["signal"].std(axis=1), 1, atol=1e-4)


def test_nan_samples_name_the_record(mitdb_dir, monkeypatch):
    import ecg_utils.signal.dataset as ds

    real = ds.read_record

    def with_gap(*args, **kwargs):
        rec = real(*args, **kwargs)
        rec.signal[1000:1100] = np.nan
        return rec

    monkeypatch.setattr(ds, "read_record", with_gap)
    with pytest.raises(DataError, match=r"record 100 \(MLII\): signal has 100 NaN samples \(first at sample 1000"):
        process_record(mitdb_dir, "100", PreprocessConfig(records=["100"]))


def test_missing_dataset_says_how_to_build_it(tmp_path):
    with pytest.raises(DataError, match="run notebook 01"):
        load_dataset(tmp_path / "none.npz")


def test_a_dataset_of_older_code_says_to_rebuild_it(mitdb_dir, tmp_path):
    out = build_dataset(PreprocessConfig(records=["100"]), tmp_path / "beats.npz", mitdb_dir=mitdb_dir, progress=False)
    with np.load(out) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "rhythm"}  # as format 2 wrote it
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(DataError, match="older version of this package .* rebuild it with notebook 01"):
        load_dataset(tmp_path / "old.npz")
