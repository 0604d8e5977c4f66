"""Statistics by record: EC57 average figures, leave one record out, errors by rhythm, the per-record table."""

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_utils.data.aami import beat_mask, to_aami
from ecg_utils.data.records import Rhythms
from ecg_utils.evaluate.by_record import (
    average_figures,
    errors_by_rhythm,
    gross,
    leave_one_record_out,
    record_table,
    rhythms_of,
)


def _pred(rows):
    return pd.DataFrame(rows, columns=["record", "sample", "true", "pred"])


# a: 2 S beats, 1 found, 1 S call (right); b: no S beat, 1 false S call; c: 4 S beats, all found
PRED = _pred([("a", 10, "S", "S"), ("a", 20, "S", "N"), ("a", 30, "N", "N"), ("b", 10, "N", "S"), ("b", 20, "N", "N"),
              ("c", 10, "S", "S"), ("c", 20, "S", "S"), ("c", 30, "S", "S"), ("c", 40, "S", "S")])


def test_average_figures_follow_ec57s_rule():
    s = average_figures(PRED)["S"]
    assert s["se"] == pytest.approx((0.5 + 1.0) / 2) and s["se_records"] == 2  # b has no S beat: not counted
    assert s["ppv"] == pytest.approx((1.0 + 0.0 + 1.0) / 3) and s["ppv_records"] == 3  # b called one S: counted
    assert gross(PRED, "S") == pytest.approx({"se": 5 / 6, "ppv": 5 / 6, "f1": 5 / 6})
    v = average_figures(PRED)["V"]
    assert v == {"se": None, "se_records": 0, "ppv": None, "ppv_records": 0}


def test_leave_one_record_out_names_the_record_that_moves_f1_most():
    loo = leave_one_record_out(PRED, ("S",))["S"]
    assert loo["all"] == gross(PRED, "S") and set(loo["without"]) == {"a", "b", "c"}
    assert loo["without"]["b"] == pytest.approx({"se": 5 / 6, "ppv": 1.0, "f1": 10 / 11})
    # without c: Se 1/2, +P 1/2, F1 0.5, the largest move from 5/6
    assert loo["largest_swing"] == {"record": "c", "se": 0.5, "ppv": 0.5, "f1": 0.5}


def test_errors_by_rhythm_count_false_calls_per_hour_of_each_rhythm():
    rhythms = {"a": Rhythms("a", np.array([0, 25]), np.array(["(N", "(AFIB"], dtype=object), 3600, 1.0),
               "b": Rhythms("b", np.array([0]), np.array(["(AFIB"], dtype=object), 7200, 1.0),
               "c": Rhythms("c", np.array([0]), np.array(["(N"], dtype=object), 3600, 1.0)}
    table = errors_by_rhythm(PRED, rhythms)
    assert table.loc["(AFIB", "hours"] == pytest.approx((3575 + 7200) / 3600)
    assert table.loc["(AFIB", "false S"] == 1 and table.loc["(N", "false S"] == 0  # b's false S call is in AFIB
    assert table.loc["(AFIB", "beats"] == 3 and table.loc["(N", "beats"] == 6  # a's beat at 30 s is in AFIB
    assert table.loc["(AFIB", "false S per hour"] == pytest.approx(1 / table.loc["(AFIB", "hours"])


@pytest.mark.parametrize("record", ["222", "232"])
def test_per_record_table_matches_the_annotations(mitdb_dir, full_dataset, record):
    """Beats per class from the .atr annotations (less the beats dropped at the record's edges), rhythms from its
    rhythm marks: 232 is sinus bradycardia throughout, 222 mostly normal rhythm with flutter and fibrillation."""
    ds = full_dataset
    here = ds.record == record
    pred = _pred(list(zip(ds.record[here], ds.sample[here], ds.label[here], ds.label[here])))
    table = record_table(pred, rhythms_of([record], mitdb_dir))
    ann = wfdb.rdann(str(mitdb_dir / record), "atr")
    symbols = np.asarray(ann.symbol)
    labels = to_aami(symbols[beat_mask(symbols)])
    dropped = ds.dropped[ds.dropped.record == record]
    for c in ("N", "S", "V", "F", "Q"):
        assert table.loc[record, f"{c} beats"] == (labels == c).sum() - (dropped.label == c).sum(), c
    assert table.loc[record, "errors"] == 0 and table.loc[record, "false S"] == 0
    rhythms = table.loc[record, "rhythms"]
    if record == "232":
        assert rhythms == "(SBR 100 %"
    else:
        assert rhythms.startswith("(N ") and "(AFL" in rhythms and "(AFIB" in rhythms
