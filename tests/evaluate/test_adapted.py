"""Whole-record mode on DS2: the ensemble and each member adapted to each test record, no label read, scored once."""

import dataclasses
import json
import shutil

import numpy as np

from ecg_utils.evaluate.adapted import REPORT, before_and_after, discard_adapted, evaluate_adapted, protocol_rows
from ecg_utils.evaluate.protocols import evaluate_runs
from ecg_utils.model.checkpoint import ensemble_checkpoint, load_model, save_checkpoint
from ecg_utils.model.sources import SequenceData
from ecg_utils.paths import run_name

METHOD = ("all_half", {"layers": "all", "weight": 0.5, "label": "every batch norm: half the record's"})


def _runs(tiny_model, tmp_path):
    """A published-style run folder: an ensemble of two members (the tiny run twice) and the members' own runs."""
    runs = tmp_path / "runs"
    for k in range(2):
        (runs / run_name("inter_patient", "cnn_lstm", k)).mkdir(parents=True)
        shutil.copy(tiny_model, runs / run_name("inter_patient", "cnn_lstm", k) / "best.pt")
    (runs / run_name("inter_patient", "cnn_lstm")).mkdir()
    save_checkpoint(ensemble_checkpoint([runs / run_name("inter_patient", "cnn_lstm", k) / "best.pt" for k in range(2)]),
                    runs / run_name("inter_patient", "cnn_lstm") / "best.pt")
    return runs


def test_the_adapted_row_scores_ds2_with_its_spread_and_reads_no_label(small, tiny_model, tmp_path):
    ds, _ = small
    data = SequenceData.from_dataset(ds)
    runs = _runs(tiny_model, tmp_path)
    out, pred = evaluate_adapted(runs, ds, data, tmp_path / "reports", "cnn_lstm", METHOD)
    assert out == json.loads((tmp_path / "reports" / REPORT).read_text())
    assert out["records"] == ["100"] and set(pred.record) == {"100"}  # DS2 only: the small split's test record
    figures = out["inter_patient_adapted"]["cnn_lstm"]
    assert figures["spread"]["trainings"] == 2 and figures["n_beats"] == len(pred) == int((ds.record == "100").sum())
    assert out["method"] == {"name": "all_half", **METHOD[1], "max_beats": 4096}
    assert (tmp_path / "reports" / "predictions" / "inter_patient_cnn_lstm_adapted.csv.gz").is_file()
    metrics, plain = evaluate_runs(runs, ds, ["inter_patient"], ["cnn_lstm"], tmp_path / "plain", data=data)
    p0 = plain["inter_patient", "cnn_lstm"]
    assert np.abs(p0[["p_N", "p_S", "p_V"]].to_numpy() - pred[["p_N", "p_S", "p_V"]].to_numpy()).max() > 1e-3
    table = protocol_rows(metrics, out, "cnn_lstm")
    assert list(table.index) == ["inter-patient, DS1 only", "inter-patient, adapted to each test patient without labels"]
    assert "(" in table.loc["inter-patient, DS1 only", "accuracy"]  # the members' spread beside each figure
    # Labels shuffled: the same classes (nothing the adaptation reads comes from a label)
    shuffled = dataclasses.replace(ds, label=np.random.default_rng(0).permutation(ds.label))
    _, again = evaluate_adapted(runs, shuffled, data, tmp_path / "shuffled", "cnn_lstm", METHOD)
    assert (again.pred.to_numpy() == pred.pred.to_numpy()).all()


def test_before_and_after_gives_one_records_encodings_and_classes(small, tiny_model):
    ds, _ = small
    data = SequenceData.from_dataset(ds)
    model, _ = load_model(tiny_model)
    rows = np.flatnonzero(ds.record == "106")
    view = before_and_after(model, data, rows, METHOD[1])
    assert view["enc_before"].shape == view["enc_after"].shape == (len(rows), model.dim)
    assert len(view["pred_before"]) == len(rows) and not np.allclose(view["enc_before"], view["enc_after"])


def test_discard_adapted_removes_an_earlier_runs_report_and_predictions_only(tmp_path):
    """Where no method passes on the folds, the last run's whole-record report must not ship with the new model."""
    report, pred = tmp_path / REPORT, tmp_path / "predictions" / "inter_patient_cnn_lstm_adapted.csv.gz"
    kept = [tmp_path / "metrics.json", tmp_path / "predictions" / "inter_patient_cnn_lstm.csv.gz",
            tmp_path / "predictions" / "inter_patient_gru_adapted.csv.gz"]
    pred.parent.mkdir()
    for p in [report, pred, *kept]:
        p.write_text("{}")
    assert discard_adapted(tmp_path, "cnn_lstm") == [report, pred]
    assert not report.exists() and not pred.exists() and all(p.exists() for p in kept)
    assert discard_adapted(tmp_path, "cnn_lstm") == []  # nothing left to remove: a re-run is a no-op
