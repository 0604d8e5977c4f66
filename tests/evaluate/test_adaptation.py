"""Label-free adaptation on the DS1 folds: each fold model adapted to each held-out record's own beats, no label read."""

import json

import numpy as np
import pytest
import torch
import yaml

from ecg_utils.evaluate.adaptation import classify_adapted, main, read_params
from ecg_utils.model.checkpoint import load_model
from ecg_utils.model.sources import SequenceData
from ecg_utils.paths import PROJ_ROOT
from ecg_utils.signal.dataset import load_dataset
from tests.evaluate.test_ablation import DS1
from tests.evaluate.test_ablation import _params as _ablation_params

METHODS = {"none": {"layers": "all", "weight": 0.0, "label": "not adapted"},
           "rr": {"layers": "rr", "weight": 1.0, "label": "RR, the record's"},
           "all_half": {"layers": "all", "weight": 0.5, "label": "all, half"},
           "families": {"families": 4, "weight": 1.0, "label": "4 families"}}
ALL = {"layers": "all", "weight": 1.0}


def _params(tmp_path, mitdb_dir, **changes):
    ablation = _ablation_params(tmp_path, mitdb_dir)
    params = {"ABLATION": str(ablation), "CONFIG": "tiny", "METHODS": METHODS, "REPORTS": str(tmp_path / "reports"),
              **changes}
    path = tmp_path / "adaptation.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, mitdb_dir):
    tmp = tmp_path_factory.mktemp("adaptation")
    assert main(["--params", str(_params(tmp, mitdb_dir)), "--no-progress"]) == 0
    return tmp


def test_every_method_scored_per_seed_and_paired_with_the_unadapted_models(adapted):
    out = json.loads((adapted / "reports" / "adaptation.json").read_text())
    assert list(out["methods"]) == list(METHODS) and out["seeds"] == [0, 10] and out["config"] == "tiny"
    runs = sorted(p.name for p in (adapted / "runs").iterdir())
    assert runs == [f"inter_patient_tiny_seed{s}_fold{k}" for s in (0, 10) for k in (0, 1)]  # only CONFIG is trained
    assert not (adapted / "reports" / "ablation.json").exists()  # the ablation's own report is left alone
    base, rr = out["methods"]["none"], out["methods"]["rr"]
    for method in out["methods"].values():
        for figures in method["per_seed"]:
            assert figures["average"]["N"]["se_records"] == len(DS1)  # DS1 records only: DS2's 100 is never scored
    assert base["paired"]["accuracy"]["mean"] == 0 and base["paired"]["accuracy"]["sd"] == 0
    diffs = [a["accuracy"] - b["accuracy"] for a, b in zip(rr["per_seed"], base["per_seed"])]
    assert np.isclose(rr["paired"]["accuracy"]["mean"], np.mean(diffs))
    assert np.isclose(rr["paired"]["accuracy"]["sd"], np.std(diffs, ddof=1))


def test_the_adapted_classes_never_read_a_label_and_each_record_adapts_alone(adapted):
    ds = load_dataset(adapted / "beats.npz")
    data = SequenceData.from_dataset(ds)
    model, _ = load_model(adapted / "runs" / "inter_patient_tiny_seed0_fold0" / "best.pt")
    rows = np.flatnonzero(np.isin(ds.record, ["106", "208"]))
    shuffled = SequenceData(data.x, data.rr, data.y[torch.randperm(len(data.y))], data.start,
                            np.random.default_rng(0).permutation(data.label), data.record, data.config,
                            data.rhythm[torch.randperm(len(data.rhythm))])
    alone = rows[ds.record[rows] == "208"]
    unadapted = classify_adapted(model, data, rows, ds.record, {**ALL, "weight": 0.0})
    for method in (ALL, METHODS["families"]):
        proba = classify_adapted(model, data, rows, ds.record, method)
        assert np.array_equal(classify_adapted(model, shuffled, rows, ds.record, method), proba)
        # One record classified alone gets the classes it gets beside another: it adapts on its own beats only.
        assert np.allclose(classify_adapted(model, data, alone, ds.record, method), proba[ds.record[rows] == "208"],
                           atol=1e-6)
        assert not np.allclose(proba, unadapted, atol=1e-3)


def test_parameters_are_checked(tmp_path, mitdb_dir, capsys):
    path = _params(tmp_path, mitdb_dir, CONFIG="huge")
    assert main(["--params", str(path)]) == 1
    assert "CONFIG 'huge' is not a configuration" in capsys.readouterr().err
    for methods, message in [({"rr": METHODS["rr"]}, "must be the unadapted baseline"),
                             ({"none": {**METHODS["none"], "layers": "lstm"}}, "layers one of rr, conv, all"),
                             ({"none": {"layers": "all", "weight": 0.0}}, "give exactly layers, weight, label"),
                             ({**METHODS, "families": {**METHODS["families"], "families": 0}},
                              "families=0; give a whole number >= 1")]:
        _params(tmp_path, mitdb_dir, METHODS=methods)
        assert main(["--params", str(path)]) == 1
        assert message in capsys.readouterr().err


def test_the_shipped_parameters_are_valid():
    from ecg_utils.evaluate.ablation import read_params as read_ablation
    from ecg_utils.paths import PROJ_ROOT

    params = read_params(PROJ_ROOT / "params" / "adaptation.yaml")
    assert params["CONFIG"] in read_ablation(PROJ_ROOT / params["ABLATION"])["CONFIGS"]


def test_a_configuration_with_its_own_preprocessing_adapts_on_its_own_dataset(tmp_path, mitdb_dir):
    """The unadapted method is the ablation's own scoring of the same fold models: on the dataset the configuration
    was trained on (its running RR a median here), not on DATASET."""
    from ecg_utils.evaluate.ablation import main as ablation_main

    assert main(["--params", str(_params(tmp_path, mitdb_dir, CONFIG="longer")), "--no-progress"]) == 0
    assert ablation_main(["--params", str(tmp_path / "ablation.yaml"), "--no-progress"]) == 0
    scored = json.loads((tmp_path / "reports" / "ablation.json").read_text())["configs"]["longer"]["per_seed"]
    unadapted = json.loads((tmp_path / "reports" / "adaptation.json").read_text())["methods"]["none"]["per_seed"]
    for a, b in zip(unadapted, scored, strict=True):
        assert a["accuracy"] == b["accuracy"] and a["classes"] == b["classes"]


def _report(changes):
    """An adaptation report whose methods have the paired macro F1 gains and verdict inputs given."""
    base = [{"accuracy": 0.9, "macro_f1": 0.5, "classes": {"S": {"f1": 0.5}, "V": {"f1": 0.8}},
             "average": {c: {"se": 0.5, "ppv": 0.5} for c in ("S", "V")}} for _ in range(3)]

    def shifted(v_f1, macro):
        return [{**b, "macro_f1": b["macro_f1"] + macro + 0.001 * i,
                 "classes": {"S": {"f1": 0.5}, "V": {"f1": 0.8 + v_f1 + 0.001 * i}}} for i, b in enumerate(base)]

    methods = {"none": {"layers": "all", "weight": 0.0, "label": "none", "per_seed": base,
                        "paired": {"macro_f1": {"mean": 0.0}}}}
    for name, (kind, v_f1, macro) in changes.items():
        methods[name] = {**kind, "label": name, "per_seed": shifted(v_f1, macro), "paired": {"macro_f1": {"mean": macro}}}
    return {"methods": methods}


def test_whole_record_mode_takes_the_better_batch_norm_method_with_the_largest_macro_f1_gain():
    from ecg_utils.evaluate.adaptation import published_method

    norm, fam = {"layers": "all", "weight": 0.5}, {"families": 8, "weight": 1.0}
    report = _report({"small": (norm, 0.05, 0.01), "large": ({"layers": "rr", "weight": 0.25}, 0.05, 0.02),
                      "families": (fam, 0.10, 0.05), "worse": (norm, -0.05, 0.09)})
    name, setting = published_method(report)
    assert name == "large" and setting == {"layers": "rr", "weight": 0.25, "label": "large"}
    assert published_method(_report({"worse": (norm, -0.05, 0.09), "families": (fam, 0.1, 0.05)})) is None
    shipped = published_method(json.loads((PROJ_ROOT / "reports" / "adaptation.json").read_text()))
    assert shipped is not None and shipped[0] == "all_half"
