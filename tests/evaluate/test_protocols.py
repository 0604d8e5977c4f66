import numpy as np
import pandas as pd
import pytest

from ecg_utils.evaluate.protocols import (
    class_figures,
    comparison_table,
    confusion,
    dataset_rows,
    misclassified,
    predictions_frame,
    summarize,
    write_predictions,
)
from ecg_utils.signal.detect import label_detected_beats


def test_confusion_and_ec57_figures_by_hand():
    true = np.array(list("NNNNNSSVVF"))
    pred = np.array(list("NNNNSSNVNV"))
    cm = confusion(true, pred)
    assert cm.sum() == 10 and cm[0, 0] == 4 and cm[1, 0] == 1 and cm[3, 2] == 1
    f = class_figures(cm)
    # S: TP 1, FN 1, FP 1, TN 7
    assert f["S"]["se"] == f["S"]["recall"] == 0.5 and f["S"]["ppv"] == f["S"]["precision"] == 0.5
    assert f["S"]["fpr"] == pytest.approx(1 / 8) and f["S"]["f1"] == 0.5 and f["S"]["support"] == 2
    # V: TP 1, FN 1, FP 1 (the F beat)
    assert f["V"]["se"] == 0.5 and f["V"]["ppv"] == 0.5
    # F: never predicted correctly, and never predicted at all -> +P undefined, not 0
    assert f["F"]["se"] == 0.0 and f["F"]["ppv"] is None
    # Q: no beats -> Se undefined; never predicted -> FPR 0
    assert f["Q"]["se"] is None and f["Q"]["support"] == 0 and f["Q"]["fpr"] == 0.0
    s = summarize(true, pred)
    assert s["accuracy"] == 0.6 and s["n_beats"] == 10
    # macro F1 over the 4 classes present: N 2*4/(2*4+2+1) = 8/11 (FP: S->N, V->N; FN: N->S), S 0.5, V 0.5, F 0
    assert s["macro_f1"] == pytest.approx((8 / 11 + 0.5 + 0.5 + 0.0) / 4)


def test_predictions_roundtrip(tmp_path):
    proba = np.array([[0.9, 0.05, 0.05, 0, 0], [0.1, 0.2, 0.66666, 0.03334, 0]])
    df = predictions_frame(np.array(["100", "232"]), np.array([77, 1000]), np.array(["N", "S"]), proba)
    assert df.pred.tolist() == ["N", "V"] and df.p_V.tolist() == [0.05, 0.6667]
    path = tmp_path / "p" / "x.csv.gz"
    write_predictions(df, path)
    first = path.read_bytes()
    write_predictions(df, path)
    assert path.read_bytes() == first  # byte-identical reruns: no timestamp in the gzip header
    again = pd.read_csv(path, dtype={"record": str})
    pd.testing.assert_frame_equal(again, df)


def test_comparison_table():
    pred = pd.DataFrame({"record": ["a"] * 4 + ["b"] * 2, "sample": range(6),
                         "true": list("NSSV") + list("NN"), "pred": list("NSNV") + list("NN")})
    m = {"x": summarize(pred.true.to_numpy(), pred.pred.to_numpy())}
    c = comparison_table(m)
    assert c.loc["x", "accuracy"] == 5 / 6 and c.loc["x", "S Se"] == 0.5


def test_misclassified_draw_and_dataset_rows(small):
    ds, _ = small
    pred = pd.DataFrame({"record": ds.record[:50], "sample": ds.sample[:50], "true": ds.label[:50],
                         "pred": np.where(np.arange(50) % 5 == 0, "V", ds.label[:50])})
    wrong = misclassified(pred, 4, seed=1)
    assert len(wrong) == 4 and (wrong.true != wrong.pred).all() and wrong.index.is_monotonic_increasing
    assert misclassified(pred, 4, seed=1).equals(wrong)
    np.testing.assert_array_equal(dataset_rows(ds, wrong.record, wrong["sample"]), wrong.index)
    assert dataset_rows(ds, np.array(["100"]), np.array([-5]))[0] == -1


def test_label_detected_beats():
    ref, labels = np.array([100, 400, 700]), np.array(["N", "V", "S"])
    got = label_detected_beats(np.array([95, 260, 410, 690, 1000]), ref, labels, tolerance=54)
    assert got.tolist() == ["N", "", "V", "S", ""]
    assert label_detected_beats(np.array([5]), np.array([], dtype=int), np.array([]), 54).tolist() == [""]


def test_evaluate_runs_writes_metrics_and_predictions(small, tiny_model, tmp_path):
    import json
    import shutil

    from ecg_utils.evaluate.protocols import evaluate_runs

    ds, _ = small
    run = tmp_path / "runs" / "inter_patient_cnn_lstm"
    run.mkdir(parents=True)
    shutil.copyfile(tiny_model, run / "best.pt")
    metrics, predictions = evaluate_runs(tmp_path / "runs", ds, ["inter_patient"], ["cnn_lstm"], tmp_path / "reports")
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    pred = pd.read_csv(tmp_path / "reports" / "predictions" / "inter_patient_cnn_lstm.csv.gz", dtype={"record": str})
    assert len(pred) == len(predictions["inter_patient", "cnn_lstm"]) == metrics["inter_patient"]["cnn_lstm"]["n_beats"]
    assert set(pred.record) == {"100"}  # the small split's DS2 record
    assert metrics["inter_patient"]["all_N"]["accuracy"] == pytest.approx((pred.true == "N").mean())
    assert metrics["inter_patient"]["cnn_lstm"]["best_epoch"] >= 1
    from ecg_utils.evaluate.by_record import average_figures

    # both kinds of statistics: the gross figures and EC57's per-record averages (one record here: equal)
    average = metrics["inter_patient"]["cnn_lstm"]["average"]
    assert average == average_figures(pred) and average["N"]["se_records"] == 1
    assert average["N"]["se"] == pytest.approx(metrics["inter_patient"]["cnn_lstm"]["classes"]["N"]["se"])
    assert metrics["inter_patient"]["all_N"]["average"]["N"]["se"] == 1.0


def _ensemble_runs(tiny_model, tmp_path):
    """Run folders of an ensemble of two members (the tiny run twice) and the members' own runs."""
    import shutil

    from ecg_utils.model.checkpoint import ensemble_checkpoint, save_checkpoint

    runs = tmp_path / "runs"
    for fold in range(2):
        (runs / f"inter_patient_cnn_lstm_fold{fold}").mkdir(parents=True)
        shutil.copyfile(tiny_model, runs / f"inter_patient_cnn_lstm_fold{fold}" / "best.pt")
    (runs / "inter_patient_cnn_lstm").mkdir()
    save_checkpoint(ensemble_checkpoint([runs / f"inter_patient_cnn_lstm_fold{k}" / "best.pt" for k in range(2)]),
                    runs / "inter_patient_cnn_lstm" / "best.pt")
    return runs


def test_an_ensemble_is_scored_with_the_spread_of_its_members(small, tiny_model, tmp_path):
    import json

    from ecg_utils.evaluate.protocols import evaluate_runs, spread_table

    ds, _ = small
    runs = _ensemble_runs(tiny_model, tmp_path)
    metrics, _ = evaluate_runs(runs, ds, ["inter_patient"], ["cnn_lstm"], tmp_path / "reports")
    m = metrics["inter_patient"]["cnn_lstm"]
    # Two identical members: the ensemble is each of them, and they do not spread at all.
    assert m["spread"]["trainings"] == 2 and m["spread"]["accuracy"]["mean"] == pytest.approx(m["accuracy"])
    assert m["spread"]["accuracy"]["sd"] == 0 and m["spread"]["classes"]["N"]["se"]["n"] == 2
    member = pd.read_csv(tmp_path / "reports" / "predictions" / "inter_patient_cnn_lstm_fold1.csv.gz", dtype={"record": str})
    assert list(member.columns) == ["record", "sample", "true", "pred"] and len(member) == m["n_beats"]
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text())["inter_patient"]["cnn_lstm"]["spread"]
    table = spread_table(metrics["inter_patient"])
    assert table.loc["cnn_lstm", ("accuracy", "ensemble")] == m["accuracy"]


def test_a_student_is_scored_on_ds2_only_with_its_teachers_spread(small, tiny_model, tmp_path):
    # A student distilled from the ensemble (`<model>_distilled`): one training, scored in the inter-patient protocol
    # only, the ensemble members' spread beside it.
    import torch

    from ecg_utils.evaluate.protocols import evaluate_runs

    ds, _ = small
    runs = _ensemble_runs(tiny_model, tmp_path)
    state = torch.load(tiny_model, weights_only=True)
    state["train_config"] = {**state["train_config"], "distil_weight": 0.5, "teacher": "the two folds"}
    (runs / "inter_patient_cnn_lstm_distilled").mkdir()
    torch.save(state, runs / "inter_patient_cnn_lstm_distilled" / "best.pt")
    metrics, predictions = evaluate_runs(runs, ds, ["inter_patient"], ["cnn_lstm"], tmp_path / "reports",
                                         distilled=["cnn_lstm_distilled"])
    student, ensemble = metrics["inter_patient"]["cnn_lstm_distilled"], metrics["inter_patient"]["cnn_lstm"]
    assert student["teacher"] == "cnn_lstm" and student["spread"] == ensemble["spread"]
    assert ("inter_patient", "cnn_lstm_distilled") in predictions
    assert (tmp_path / "reports" / "predictions" / "inter_patient_cnn_lstm_distilled.csv.gz").is_file()
    assert not (tmp_path / "reports" / "predictions" / "inter_patient_cnn_lstm_distilled_fold0.csv.gz").exists()

def test_spread_is_mean_and_sample_sd_and_skips_undefined_figures():
    from ecg_utils.evaluate.protocols import spread

    def figures(acc, s_ppv):
        return {"accuracy": acc, "macro_f1": acc, "classes": {c: {"se": acc, "ppv": s_ppv if c == "S" else acc,
                                                                  "f1": acc} for c in "NSVFQ"}}

    s = spread([figures(0.9, 0.5), figures(0.8, None), figures(0.7, 0.7)])
    assert s["trainings"] == 3 and s["accuracy"]["mean"] == pytest.approx(0.8)
    assert s["accuracy"]["sd"] == pytest.approx(0.1)
    assert s["classes"]["S"]["ppv"] == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.1414, abs=1e-4), "n": 2}


def test_cross_validation_scores_fold_models_on_their_own_validation_patients(small, tiny_model, tmp_path):
    import shutil

    from ecg_utils.evaluate.protocols import ablation_table, cross_validate

    ds, split = small
    (tmp_path / "runs" / "inter_patient_cnn_lstm_fold0").mkdir(parents=True)
    shutil.copyfile(tiny_model, tmp_path / "runs" / "inter_patient_cnn_lstm_fold0" / "best.pt")
    cv = cross_validate(tmp_path / "runs", ds, ["cnn_lstm"], 1, tmp_path / "reports")
    c = cv["configs"]["cnn_lstm"]
    assert c["n_beats"] == len(split.val) and set(ds.record[split.val]) == {"101", "106"}  # never DS2's 100
    assert c["fold_records"] == [["101", "106"]]
    from ecg_utils.evaluate.by_record import average_figures

    pooled = pd.read_csv(tmp_path / "reports" / "predictions" / "cross_validation_cnn_lstm.csv.gz", dtype={"record": str})
    assert len(pooled) == c["n_beats"] and set(pooled.record) == {"101", "106"}
    assert c["average"] == average_figures(pooled) and c["average"]["V"]["se_records"] == 1  # 101 has no V beat, 106 has
    assert (tmp_path / "reports" / "cross_validation.json").is_file()
    assert ablation_table(cv).loc["cnn_lstm", "macro F1"] == c["macro_f1"]
