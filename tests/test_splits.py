import numpy as np
import pytest

from ecg_utils.aami import CLASSES
from ecg_utils.mitdb import RECORDS
from ecg_utils.splits import (
    DS1,
    DS2,
    PACED,
    choose_validation_records,
    inter_patient_split,
    intra_patient_split,
    make_split,
)


def test_record_sets_partition_the_database():
    assert len(DS1) == len(DS2) == 22 and len(PACED) == 4
    assert not set(DS1) & set(DS2) and not (set(DS1) | set(DS2)) & set(PACED)
    assert sorted(DS1 + DS2 + PACED) == sorted(RECORDS)


def test_inter_patient_split_keeps_patients_apart(full_dataset):
    d = full_dataset
    s = inter_patient_split(d.label, d.record)
    recs = {part: set(d.record[idx]) for part, idx in s.parts().items()}
    assert recs["test"] == set(DS2)
    assert recs["train"] | recs["val"] == set(DS1)
    assert not recs["train"] & recs["val"] and not recs["train"] & recs["test"] and not recs["val"] & recs["test"]
    assert not (recs["train"] | recs["val"] | recs["test"]) & set(PACED)
    assert len(recs["val"]) == 4
    counts = s.summary(d.label)
    assert all(counts["val"][c] > 0 for c in ("N", "S", "V", "F"))  # validation sees every class that DS1 has
    assert s.records["val"] == sorted(recs["val"])


def test_inter_patient_split_with_pinned_validation(full_dataset):
    d = full_dataset
    s = inter_patient_split(d.label, d.record, val_records=["101", "208"])
    assert set(d.record[s.val]) == {"101", "208"}
    with pytest.raises(ValueError, match=r"validation records \['100'\] are not DS1 records"):
        inter_patient_split(d.label, d.record, val_records=["100"])


def test_choose_validation_records_is_balanced():
    record = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10 + ["d"] * 10)
    label = np.array((["N"] * 9 + ["S"]) * 2 + ["N"] * 10 + ["N"] * 5 + ["S"] * 5)
    # 'a' holds 1 of 7 S beats and 9 of 33 N beats: the subset closest to a quarter of each class.
    assert choose_validation_records(label, record, ["a", "b", "c", "d"], 1, classes=("N", "S")) == ["a"]


def test_intra_patient_split_is_stratified_and_seeded(full_dataset):
    d = full_dataset
    s = intra_patient_split(d.label, d.record, seed=0)
    idx = np.concatenate([s.train, s.val, s.test])
    assert len(idx) == len(np.unique(idx)) == len(d)
    assert abs(len(s.test) / len(d) - 0.2) < 0.001 and abs(len(s.val) / len(d) - 0.1) < 0.001
    for c in CLASSES:
        share = np.mean(d.label == c)
        for part in (s.train, s.val, s.test):
            assert abs(np.mean(d.label[part] == c) - share) < 0.002
    again = intra_patient_split(d.label, d.record, seed=0)
    other = intra_patient_split(d.label, d.record, seed=1)
    np.testing.assert_array_equal(s.test, again.test)
    assert not np.array_equal(s.test, other.test)


def test_bad_split_parameters():
    label = np.array(["N"] * 10)
    record = np.array(["100"] * 10)
    with pytest.raises(ValueError, match="unknown protocol 'random'"):
        make_split("random", label, record)
    with pytest.raises(ValueError, match="at least 2 DS1 records"):
        inter_patient_split(label, record)
    with pytest.raises(ValueError, match="empty part"):
        inter_patient_split(np.array(["N"] * 4), np.array(["101", "101", "106", "106"]))
    with pytest.raises(ValueError, match="val_size"):
        intra_patient_split(label, record, val_size=0.5, test_size=0.6)
