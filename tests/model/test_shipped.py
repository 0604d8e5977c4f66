"""The model shipped in the package is the published run's: same fingerprint as reports/, same predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from ecg_utils.classify import classify_record
from ecg_utils.data.aami import CLASSES, PROBA_COLUMNS
from ecg_utils.data.splits import DS1
from ecg_utils.evaluate.adaptation import published_method
from ecg_utils.evaluate.protocols import summarize
from ecg_utils.model.batchnorm import Adaptation
from ecg_utils.model.export import read_metadata
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.publish import fingerprint, model_card
from ecg_utils.model.shipped import MODEL_CARD, MODEL_PATH, model_info, sha256
from ecg_utils.paths import REPORTS_DIR

PUBLISHED = json.loads((REPORTS_DIR / "published_model.json").read_text())
METRICS = json.loads((REPORTS_DIR / "metrics.json").read_text())
# The whole-record method the DS1 folds chose (None: no method passed, and the model is published as trained).
METHOD = published_method(json.loads((REPORTS_DIR / "adaptation.json").read_text()))


def test_shipped_file_is_the_published_one():
    assert sha256(MODEL_PATH) == PUBLISHED["sha256"]
    assert MODEL_PATH.stat().st_size == PUBLISHED["bytes"] < 5_000_000
    assert model_info() == PUBLISHED
    meta = read_metadata(MODEL_PATH)
    # The five fold models of the CNN–LSTM, as one ensemble
    assert (meta["model"], meta["train_config"]["model_params"]["model"], meta["protocol"]) == (
        "ensemble", "cnn_lstm", "inter_patient")
    assert (PUBLISHED["model"], PUBLISHED["protocol"], PUBLISHED["members"]) == ("cnn_lstm", "inter_patient", 5)


def test_published_figures_are_the_reports():
    m = METRICS["inter_patient"]["cnn_lstm"]
    f = PUBLISHED["test_figures"]
    assert (f["accuracy"], f["macro_f1"], f["n_beats"]) == (m["accuracy"], m["macro_f1"], m["n_beats"])
    for c in CLASSES:
        assert (f[f"{c}_se"], f[f"{c}_ppv"]) == (m["classes"][c]["se"], m["classes"][c]["ppv"])
    assert m["params"] == PUBLISHED["parameters"] and PUBLISHED["members"] == m["spread"]["trainings"] >= 5
    assert PUBLISHED["test_spread"]["accuracy"] == m["spread"]["accuracy"]
    for c in CLASSES:
        assert PUBLISHED["test_spread"][f"{c}_se"] == m["spread"]["classes"][c]["se"]


def test_model_card_is_current():
    assert MODEL_CARD.read_text() == model_card(PUBLISHED)
    assert PUBLISHED["sha256"] in MODEL_CARD.read_text() and "not a medical device" in MODEL_CARD.read_text()


# DS2 records whose published predictions hold every class the model calls on DS2 (213: F and V; 232: S)
TIED = ["100", "117", "213", "232", "234"]


def test_the_tied_records_hold_every_class_the_model_calls():
    pub = pd.read_csv(REPORTS_DIR / "predictions" / "inter_patient_cnn_lstm.csv.gz", dtype={"record": str})
    assert set(pub[pub.record.isin(TIED)].pred) == set(pub.pred) >= {"N", "S", "V", "F"}


@pytest.mark.parametrize("record", TIED)
def test_shipped_model_gives_the_published_predictions(mitdb_dir, record):
    """On DS2 records at the reference beats, the shipped ONNX model gives the classes of reports/predictions
    (the model alone: the quality gate, which notebook 03 does not apply, is off)."""
    pub = pd.read_csv(REPORTS_DIR / "predictions" / "inter_patient_cnn_lstm.csv.gz", dtype={"record": str})
    pub = pub[pub.record == record].reset_index(drop=True)
    got = classify_record(mitdb_dir / record, load_classifier(MODEL_PATH), beats="atr", progress=False, gate=None,
                          adapt=False).beats
    assert got["sample"].tolist() == pub["sample"].tolist()
    assert (got["pred"] == pub["pred"]).all()
    assert np.abs(got[PROBA_COLUMNS].to_numpy() - pub[PROBA_COLUMNS].to_numpy()).max() <= 2e-4


def test_whole_record_setting_is_the_one_the_folds_chose():
    """The shipped model carries a whole-record setting exactly when the DS1 folds' report chooses a method: then it
    is that method, scored on DS2 by notebook 03 (`adapted.json`), and the fingerprint holds its figures; else the
    model is used as trained, and no earlier run's adapted report is left to ship with it."""
    clf = load_classifier(MODEL_PATH)
    if METHOD is None:
        assert clf.adaptation is None and not PUBLISHED.get("whole_record")
        assert not (REPORTS_DIR / "adapted.json").exists()
        assert not (REPORTS_DIR / "predictions" / "inter_patient_cnn_lstm_adapted.csv.gz").exists()
        return
    adapted = json.loads((REPORTS_DIR / "adapted.json").read_text())
    w, m = PUBLISHED["whole_record"], adapted["inter_patient_adapted"]["cnn_lstm"]
    assert METHOD[0] == w["method"]
    assert adapted["method"]["name"] == w["method"] and not set(adapted["records"]) & set(DS1)
    assert clf.adaptation == Adaptation(w["layers"], w["weight"], w["max_beats"])
    assert (w["test_figures"]["accuracy"], w["test_figures"]["S_se"]) == (m["accuracy"], m["classes"]["S"]["se"])
    assert w["test_spread"]["trainings"] == m["spread"]["trainings"] == PUBLISHED["members"]


@pytest.mark.parametrize("record", TIED)
def test_shipped_model_by_default_gives_the_published_predictions_of_its_mode(mitdb_dir, record):
    """`predict`'s default in ONNX Runtime gives the classes notebook 03 scored with PyTorch: those of whole-record
    mode where the model carries a setting, else those of the model as trained."""
    file = "inter_patient_cnn_lstm_adapted.csv.gz" if METHOD else "inter_patient_cnn_lstm.csv.gz"
    pub = pd.read_csv(REPORTS_DIR / "predictions" / file, dtype={"record": str})
    pub = pub[pub.record == record].reset_index(drop=True)
    result = classify_record(mitdb_dir / record, load_classifier(MODEL_PATH), beats="atr", progress=False, gate=None)
    got = result.beats
    if METHOD:
        assert result.adaptation["beats_measured"] == min(len(got), result.adaptation["max_beats"])
    else:
        assert result.adaptation is None
    assert got["sample"].tolist() == pub["sample"].tolist()
    assert (got["pred"] == pub["pred"]).mean() >= 0.999
    assert np.abs(got[PROBA_COLUMNS].to_numpy() - pub[PROBA_COLUMNS].to_numpy()).max() <= 1e-3


def test_fingerprint_describes_a_model(tmp_path, tiny_model, tiny_onnx):
    """The fingerprint of any export names its file, hashes and run; figures come from the metrics given."""
    info = fingerprint(tiny_onnx, tiny_model, METRICS)
    assert info["sha256"] == sha256(tiny_onnx) and info["checkpoint_sha256"] == sha256(tiny_model)
    pred = pd.read_csv(REPORTS_DIR / "predictions" / "inter_patient_cnn_lstm.csv.gz")
    again = summarize(pred.true.to_numpy(), pred.pred.to_numpy())
    assert info["test_figures"]["accuracy"] == pytest.approx(again["accuracy"], abs=1e-12)
    for c in CLASSES:
        assert info["test_figures"][f"{c}_se"] == again["classes"][c]["se"]
    assert info["classes"] == list(CLASSES) and info["train_records"] == ["119", "208"] and info["members"] == 1


def test_an_upgrade_keeps_the_run_and_moves_the_fingerprint(tmp_path, tiny_model, tiny_onnx):
    """`publish --upgrade`: the shipped file moves to this graph version, the fingerprint keeps its checkpoint and
    figures, records the file it came from, and the card says so. A file that is not the published one is refused."""
    import shutil

    import onnx

    from ecg_utils.model.checkpoint import load_model
    from ecg_utils.model.export import _write
    from ecg_utils.model.publish import upgrade
    from tests.model.version2 import Version2

    meta = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props} | {"graph": "2"}
    shipped = _write(Version2(load_model(tiny_model)[0]).eval(), meta, tmp_path / "resources" / "model.onnx")
    reports = tmp_path / "reports"
    reports.mkdir()
    info = fingerprint(shipped, tiny_model, METRICS)
    (reports / "published_model.json").write_text(json.dumps(info))
    new = upgrade(reports, shipped)
    assert new["upgraded_from"] == info["sha256"] != new["sha256"] == sha256(shipped)
    assert new["graph"] == read_metadata(shipped)["graph"] == 3 and info["graph"] == 2
    assert new["checkpoint_sha256"] == info["checkpoint_sha256"] and new["test_figures"] == info["test_figures"]
    assert json.loads((reports / "published_model.json").read_text()) == new == model_info(shipped.with_name("model.json"))
    assert info["sha256"] in shipped.with_name("MODEL_CARD.md").read_text()
    shutil.copy(tiny_onnx, shipped)
    with pytest.raises(RuntimeError, match="is not the published model"):
        upgrade(reports, shipped)
