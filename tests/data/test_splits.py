import numpy as np
import pytest

from ecg_utils.data.aami import CLASSES
from ecg_utils.data.mitdb import RECORDS
from ecg_utils.data.splits import (
    DS1,
    DS2,
    PACED,
    inter_patient_split,
    intra_patient_split,
    make_split,
    patient_folds,
)


def test_record_sets_partition_the_database():
    assert len(DS1) == len(DS2) == 22 and len(PACED) == 4
    assert not set(DS1) & set(DS2) and not (set(DS1) | set(DS2)) & set(PACED)
    assert sorted(DS1 + DS2 + PACED) == sorted(RECORDS)


def test_inter_patient_folds_keep_patients_apart_and_cover_ds1(full_dataset):
    d = full_dataset
    seen = []
    for fold in range(5):
        s = inter_patient_split(d.label, d.record, folds=5, fold=fold)
        recs = {part: set(d.record[idx]) for part, idx in s.parts().items()}
        assert recs["test"] == set(DS2)
        assert recs["train"] | recs["val"] == set(DS1)
        assert not recs["train"] & recs["val"] and not recs["train"] & recs["test"] and not recs["val"] & recs["test"]
        assert not (recs["train"] | recs["val"] | recs["test"]) & set(PACED)
        counts = s.summary(d.label)
        assert counts["val"]["S"] >= 100 and counts["val"]["V"] >= 500  # every fold validates S and V
        assert s.records["val"] == sorted(recs["val"]) and s.params == {"folds": 5, "fold": fold}
        seen += s.records["val"]
    assert sorted(seen) == sorted(DS1)  # every DS1 patient validates exactly once


def test_patient_folds_spread_the_records_that_carry_a_class():
    record = np.repeat(["a", "b", "c", "d"], 10)
    label = np.array(["S"] * 5 + ["N"] * 5 + ["S"] * 5 + ["N"] * 5 + ["V"] * 5 + ["N"] * 5 + ["V"] * 5 + ["N"] * 5)
    folds = patient_folds(label, record, ["a", "b", "c", "d"], 2)
    assert sorted(map(sorted, folds)) == [["a", "c"], ["b", "d"]]  # the two S records apart, the two V records apart
    with pytest.raises(ValueError, match=r"fold \d .* has no S beats"):
        patient_folds(np.where(label == "S", "N", label), record, ["a", "b", "c", "d"], 2)
    with pytest.raises(ValueError, match="folds=5"):
        patient_folds(label, record, ["a", "b", "c", "d"], 5)


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
    with pytest.raises(ValueError, match="folds=5: need 2 <= folds <= 0"):
        inter_patient_split(label, record)
    with pytest.raises(ValueError, match="fold=2: need 0 <= fold < folds=2"):
        inter_patient_split(label, record, folds=2, fold=2)
    with pytest.raises(ValueError, match="val_size"):
        intra_patient_split(label, record, val_size=0.5, test_size=0.6)


def test_readme_fold_table_matches_the_folds(full_dataset):
    from ecg_utils.paths import PROJ_ROOT

    d = full_dataset
    readme = (PROJ_ROOT / "docs" / "protocol.md").read_text()
    for fold in range(5):
        s = inter_patient_split(d.label, d.record, folds=5, fold=fold)
        counts = s.summary(d.label)["val"]
        row = (f"| fold {fold} | {', '.join(s.records['val'])} | "
               + " | ".join(f"{counts[c]:,}" for c in CLASSES) + " |")
        assert row in readme, row
