"""The published results in reports/ agree with themselves, with the README, and with the protocol."""

import json

import numpy as np
import pandas as pd
import pytest

from ecg_utils.data.aami import CLASSES
from ecg_utils.data.splits import DS1, DS2
from ecg_utils.evaluate.protocols import PROBA_COLUMNS, summarize
from ecg_utils.evaluate.report import main as report_main
from ecg_utils.paths import PROJ_ROOT, REPORTS_DIR
from ecg_utils.signal.dataset import build_dataset, load_dataset
from ecg_utils.signal.preprocess import PreprocessConfig

METRICS = json.loads((REPORTS_DIR / "metrics.json").read_text())
RUNS = [(p, m) for p in ("intra_patient", "inter_patient") for m in ("cnn_lstm", "gru", "cnn")]


def _predictions(protocol: str, model: str) -> pd.DataFrame:
    return pd.read_csv(REPORTS_DIR / "predictions" / f"{protocol}_{model}.csv.gz", dtype={"record": str})


def test_metrics_file_has_every_protocol_model_and_class():
    for protocol, model in RUNS:
        m = METRICS[protocol][model]
        assert {"accuracy", "macro_f1", "classes"} <= set(m)
        assert list(m["classes"]) == list(CLASSES)
        for figures in m["classes"].values():
            assert {"precision", "recall", "f1", "support", "se", "ppv", "fpr"} <= set(figures)


@pytest.mark.parametrize("protocol, model", RUNS)
def test_metrics_recompute_from_the_prediction_files(protocol, model):
    pred = _predictions(protocol, model)
    assert list(pred.columns) == ["record", "sample", "true", "pred", *PROBA_COLUMNS]
    assert (pred[PROBA_COLUMNS].sum(axis=1) - 1).abs().max() < 1e-3
    again = summarize(pred.true.to_numpy(), pred.pred.to_numpy())
    stored = METRICS[protocol][model]
    assert again["accuracy"] == pytest.approx(stored["accuracy"], abs=1e-12)
    assert again["macro_f1"] == pytest.approx(stored["macro_f1"], abs=1e-12)
    assert again["classes"] == stored["classes"]


@pytest.mark.parametrize("model", ["cnn_lstm", "gru", "cnn"])
def test_inter_patient_predictions_come_from_ds2_only(model):
    records = set(_predictions("inter_patient", model).record)
    assert not records & set(DS1)
    assert records == set(DS2)


def test_readme_results_come_from_metrics_json():
    assert report_main(["--check"]) == 0, "run `python -m ecg_utils.evaluate.report` (make reproduce does)"


def test_readme_and_use_state_the_shipped_model_size():
    """The size typed in README and docs/use.md is the shipped file's, as publish prints it (kB = 1,000 bytes)."""
    size = f"{json.loads((PROJ_ROOT / 'reports' / 'published_model.json').read_text())['bytes'] / 1e3:.0f} kB"
    assert f"{size} as ONNX" in (PROJ_ROOT / "README.md").read_text()
    assert f"model.onnx`, {size}" in (PROJ_ROOT / "docs" / "use.md").read_text()


def test_every_figure_the_docs_show_exists():
    from ecg_utils.evaluate.report import page_paths

    shown = [line.split("](", 1)[1].split(")", 1)[0] for page in page_paths() for line in page.read_text().splitlines()
             if "](../reports/figures/" in line]
    assert len(shown) >= 8
    for path in shown:
        assert (PROJ_ROOT / "docs" / path).is_file(), path


def test_real_time_reports_agree_with_the_evaluation():
    from ecg_utils.data.mitdb import RECORDS

    detection = pd.read_csv(REPORTS_DIR / "detection.csv", dtype={"record": str})
    sources = json.loads((REPORTS_DIR / "detected_vs_reference.json").read_text())
    assert list(detection.record) == list(RECORDS) and (detection.se > 0.9).all()
    t = detection[["tp", "fn", "fp"]].sum()
    assert t.tp / (t.tp + t.fn) >= 0.995 and t.tp / (t.tp + t.fp) >= 0.995  # the detection target
    assert sources["records"] == list(DS2)
    # Notebook 04 classifies DS2 at the reference positions from the raw records (predict), notebook 03
    # from the beat dataset: the same beats and the same classes.
    at_reference, evaluated = sources["reference positions"], METRICS["inter_patient"]["cnn_lstm"]
    assert at_reference["n_beats"] == evaluated["n_beats"] and at_reference["classes"] == evaluated["classes"]
    for name in ("detected beats", "streamed"):
        assert abs(sources[name]["n_beats"] - at_reference["n_beats"]) < 0.01 * at_reference["n_beats"]
        assert sources[name]["accuracy"] > at_reference["accuracy"] - 0.01, name


def test_noise_reports_agree_with_themselves_and_the_protocol():
    from ecg_utils.evaluate.robustness import gate_target
    from ecg_utils.signal.quality import GateConfig, published_gate

    stress = json.loads((REPORTS_DIR / "noise_stress.json").read_text())
    gate = json.loads((REPORTS_DIR / "quality_gate.json").read_text())
    assert stress["records"] == list(DS2) and set(gate["calibration"]["records"]) <= set(DS1)
    assert GateConfig.from_dict(stress["gate"]) == GateConfig.from_dict(gate["gate"]) == published_gate()
    figures = pd.DataFrame(stress["figures"])
    assert gate_target(figures) == stress["target"]
    assert set(figures.path) == {"offline", "stream"} and set(figures.gate) == {"on", "off"}
    # The gate only ever turns classes into Q. On the clean records, offline and streamed: accuracy, S Se and +P and
    # V Se move by less than a point; V +P may only rise (false V calls in noisy stretches become Q); at most 1 % of
    # the beats become unreadable.
    for path in ("offline", "stream"):
        clean = figures[(figures.noise == "none") & (figures.path == path)].set_index("gate")
        for figure in ("accuracy", "S_se", "S_ppv", "V_se"):
            assert abs(clean.loc["on", figure] - clean.loc["off", figure]) < 1.0, (path, figure)
        assert clean.loc["on", "V_ppv"] >= clean.loc["off", "V_ppv"] and 99.0 < clean.loc["on", "readable"] <= 100.0
    detection = pd.read_csv(REPORTS_DIR / "noise_detection.csv", dtype={"record": str})
    noisy = detection[detection.snr_db != float("inf")]
    assert ((noisy.measured_snr_db - (noisy.snr_db - 6.0)).abs() < 0.5).all()  # MLII got twice the nominal noise


@pytest.mark.parametrize("model", ["cnn_lstm", "gru", "cnn"])
def test_inter_patient_spread_recomputes_from_the_members_predictions(model):
    """Every inter-patient figure has its spread over at least 5 independent trainings (the ensemble's members),
    and that spread recomputes from the members' published predictions."""
    from ecg_utils.evaluate.protocols import spread

    stored = METRICS["inter_patient"][model]["spread"]
    assert stored["trainings"] >= 5
    figures = []
    for fold in range(stored["trainings"]):
        pred = _predictions("inter_patient", f"{model}_fold{fold}")
        assert set(pred.record) == set(DS2)
        figures.append(summarize(pred.true.to_numpy(), pred.pred.to_numpy()))
    again = spread(figures)
    # every spread README shows: accuracy, macro F1, and each class's Se, +P and F1, mean and sd
    for figure in ("accuracy", "macro_f1"):
        for k in ("mean", "sd"):
            assert again[figure][k] == pytest.approx(stored[figure][k], abs=1e-12), (figure, k)
    for c in CLASSES:
        for k in ("se", "ppv", "f1"):
            assert again["classes"][c][k]["n"] == stored["classes"][c][k]["n"]
            for m in ("mean", "sd"):
                if stored["classes"][c][k][m] is None:
                    assert again["classes"][c][k][m] is None, (c, k, m)
                else:
                    assert again["classes"][c][k][m] == pytest.approx(stored["classes"][c][k][m], abs=1e-12), (c, k, m)


def test_ablation_comes_from_ds1_folds_only(full_dataset):
    """The pooled fold figures count exactly DS1's beats, class by class (DS2's counts differ in every class but
    Q's few), and the records each fold model was scored on, where the report lists them, are DS1's folds."""
    from ecg_utils.data.splits import patient_folds

    cv = json.loads((REPORTS_DIR / "cross_validation.json").read_text())
    assert cv["folds"] >= 5 and {"cnn_lstm", "gru", "cnn", "cnn_lstm_no_template"} <= set(cv["configs"])
    label, record = full_dataset.label, full_dataset.record
    ds1 = {c: int(((label == c) & np.isin(record, DS1)).sum()) for c in CLASSES}
    ds2 = {c: int(((label == c) & np.isin(record, DS2)).sum()) for c in CLASSES}
    assert all(ds1[c] != ds2[c] for c in ("N", "S", "V", "F"))  # the check tells DS1 from DS2
    folds = patient_folds(label, record, list(DS1), cv["folds"])
    for name, c in cv["configs"].items():
        assert c["spread"]["trainings"] == cv["folds"]
        assert {k: c["classes"][k]["support"] for k in CLASSES} == ds1, name
        assert c["n_beats"] == sum(ds1.values())
        if "fold_records" in c:  # written since the fold records were stored (the next make reproduce)
            assert [sorted(f) for f in c["fold_records"]] == [sorted(f) for f in folds], name


def test_seed_ablation_is_the_parameters_and_comes_from_ds1_folds_only(full_dataset, mitdb_dir, tmp_path):
    """reports/ablation.json holds every configuration and seed of params/ablation.yaml, each scored on DS1's folds
    only (every DS1 beat whose window fits in its record: a configuration with a longer window has a few fewer), and
    its mean ± sd recompute from the per-seed figures."""
    from ecg_utils.data.splits import patient_folds
    from ecg_utils.evaluate.ablation import config_preprocess, over_seeds, read_params

    params = read_params(PROJ_ROOT / "params" / "ablation.yaml")
    ab = json.loads((REPORTS_DIR / "ablation.json").read_text())
    assert ab["seeds"] == params["SEEDS"] and ab["folds"] == params["FOLDS"] and ab["epochs"] == params["EPOCHS"]
    assert list(ab["configs"]) == list(params["CONFIGS"])
    label, record = full_dataset.label, full_dataset.record
    folds = [sorted(f) for f in patient_folds(label, record, list(DS1), ab["folds"])]
    supports: dict[tuple[tuple[str, float], ...], dict[str, int]] = {}

    def ds1_beats(name: str) -> dict[str, int]:
        """DS1's beats per class in the dataset of the configuration's window."""
        window = tuple(sorted((k, v) for k, v in config_preprocess(params, name).items() if k in ("before_s", "after_s")))
        if window not in supports:
            ds = full_dataset if not window else load_dataset(build_dataset(
                PreprocessConfig(**dict(window)), tmp_path / f"window{len(supports)}.npz", mitdb_dir=mitdb_dir,
                progress=False))
            supports[window] = {c: int(((ds.label == c) & np.isin(ds.record, DS1)).sum()) for c in CLASSES}
        return supports[window]

    for name, c in ab["configs"].items():
        assert c["config"] == params["CONFIGS"][name]
        for seed, f in zip(ab["seeds"], c["per_seed"], strict=True):
            assert {k: f["classes"][k]["support"] for k in CLASSES} == ds1_beats(name), (name, seed)
            assert [sorted(r) for r in f["fold_records"]] == folds, (name, seed)
            last = f["train_config"]  # the last fold model's: fold k trains with seed + k
            assert last["seed"] == seed + ab["folds"] - 1 and last["threads"] == 1
        assert c["over_seeds"] == json.loads(json.dumps(over_seeds(c["per_seed"]))), name


def test_adaptation_report_is_the_parameters_on_the_seed_ablations_models(full_dataset):
    """reports/adaptation.json holds every method of params/adaptation.yaml, each scored on DS1's beats only; its
    unadapted row is, figure for figure, the seed ablation's row of the same configuration (the same models), and
    its paired differences recompute from the per-seed figures."""
    from ecg_utils.evaluate.adaptation import paired, read_params

    params = read_params(PROJ_ROOT / "params" / "adaptation.yaml")
    ad = json.loads((REPORTS_DIR / "adaptation.json").read_text())
    ab = json.loads((REPORTS_DIR / "ablation.json").read_text())
    assert ad["config"] == params["CONFIG"] and ad["seeds"] == ab["seeds"] and ad["folds"] == ab["folds"]
    assert list(ad["methods"]) == list(params["METHODS"])
    label, record = full_dataset.label, full_dataset.record
    ds1 = {c: int(((label == c) & np.isin(record, DS1)).sum()) for c in CLASSES}
    base = ad["methods"][next(iter(params["METHODS"]))]["per_seed"]
    for ours, theirs in zip(base, ab["configs"][params["CONFIG"]]["per_seed"], strict=True):
        assert ours["classes"] == theirs["classes"] and ours["average"] == theirs["average"]
    for name, m in ad["methods"].items():
        assert {k: m[k] for k in params["METHODS"][name]} == params["METHODS"][name]
        for f in m["per_seed"]:
            assert {k: f["classes"][k]["support"] for k in CLASSES} == ds1, name
        assert m["paired"] == json.loads(json.dumps(paired(m["per_seed"], base))), name


def test_detection_report_rebuilds_from_the_detector(mitdb_dir):
    """reports/detection.csv is what the detector gives on the 48 records today, count for count."""
    from ecg_utils.data.mitdb import RECORDS
    from ecg_utils.signal.detect import detection_table

    published = pd.read_csv(REPORTS_DIR / "detection.csv", dtype={"record": str}).set_index("record")
    again = detection_table(mitdb_dir, RECORDS)
    pd.testing.assert_frame_equal(again[["tp", "fn", "fp"]], published[["tp", "fn", "fp"]], check_dtype=False)


def test_intra_patient_predictions_are_the_seeded_split_and_the_annotations(full_dataset, mitdb_dir):
    """Each intra-patient prediction file holds exactly the test beats of the seeded split (seed 0, as
    params/02-train.yaml runs it), in order, and its `true` column is the AAMI class of the .atr annotation there."""
    import wfdb

    from ecg_utils.data.aami import to_aami
    from ecg_utils.data.splits import make_split

    ds = full_dataset
    test = make_split("intra_patient", ds.label, ds.record, seed=0).test
    want = pd.DataFrame({"record": ds.record[test], "sample": ds.sample[test]})
    truth = {}
    for r in sorted(set(want.record)):
        ann = wfdb.rdann(str(mitdb_dir / r), "atr")
        truth[r] = dict(zip(ann.sample.tolist(), ann.symbol))
    for model in ("cnn_lstm", "gru", "cnn"):
        pred = _predictions("intra_patient", model)
        key = pred[["record", "sample"]].sort_values(["record", "sample"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(key, want.sort_values(["record", "sample"]).reset_index(drop=True),
                                      check_dtype=False)
        symbols = [truth[r][s] for r, s in zip(pred.record, pred["sample"])]
        assert (pred.true.to_numpy() == to_aami(np.array(symbols))).all(), model


def test_record_statistics_recompute_from_the_predictions(mitdb_dir):
    """reports/record_statistics.json and reports/per_record/ recompute from the committed predictions and the
    records' annotations; DS2's S figure without record 232 is the swing README's headline shows."""
    from ecg_utils.evaluate.by_record import AVERAGE_RULE, record_statistics, record_table, rhythms_of

    stored = json.loads((REPORTS_DIR / "record_statistics.json").read_text())
    assert stored["rule"] == AVERAGE_RULE
    for name, s in stored["sources"].items():
        pred = pd.read_csv(REPORTS_DIR / "predictions" / f"{name}.csv.gz", dtype={"record": str})
        rhythms = rhythms_of(sorted(set(pred.record)), mitdb_dir)
        assert json.loads(json.dumps(record_statistics(pred, rhythms))) == s, name
        table = pd.read_csv(REPORTS_DIR / "per_record" / f"{name}.csv", dtype={"record": str}).set_index("record")
        again = record_table(pred, rhythms)
        assert list(table.index) == list(again.index) and (table["errors"] == again["errors"]).all(), name
    ds2 = stored["sources"]["inter_patient_cnn_lstm"]
    # Which record swings S most is the published run's result (232 for the mean of 100, 231 for the median of 256);
    # the recomputation above checks it, whichever it is.
    assert ds2["records"] == list(DS2) and ds2["leave_one_record_out"]["S"]["largest_swing"]["record"] in DS2
    if "average" in METRICS["inter_patient"]["cnn_lstm"]:  # written by evaluate_runs since it stores both kinds
        assert METRICS["inter_patient"]["cnn_lstm"]["average"] == ds2["average"]


def test_every_benchmark_table_in_the_docs_has_its_figures():
    from ecg_utils.evaluate.bench_tables import BENCH_SECTIONS

    bench = json.loads((REPORTS_DIR / "bench.json").read_text())
    assert {part for part, _ in BENCH_SECTIONS.values()} <= set(bench)
    assert all({"measured", "cores"} <= set(bench[part]) for part in bench)


@pytest.mark.skipif(not (REPORTS_DIR / "adapted.json").is_file(),
                    reason="no whole-record row: no adaptation method passed on the published configuration's folds "
                           "(tests/model/test_shipped.py checks that no report of an earlier run is left)")
def test_the_adapted_row_recomputes_from_its_predictions_on_the_same_ds2_beats():
    """Whole-record mode's DS2 row (notebook 03) scores the beats of the DS1-only row, DS2 only, from its own file."""
    adapted = json.loads((REPORTS_DIR / "adapted.json").read_text())
    pred = pd.read_csv(REPORTS_DIR / "predictions" / "inter_patient_cnn_lstm_adapted.csv.gz", dtype={"record": str})
    assert set(pred.record) == set(DS2) == set(adapted["records"])
    stored = adapted["inter_patient_adapted"]["cnn_lstm"]
    again = summarize(pred.true.to_numpy(), pred.pred.to_numpy())
    assert again["accuracy"] == pytest.approx(stored["accuracy"], abs=1e-12) and again["classes"] == stored["classes"]
    plain = _predictions("inter_patient", "cnn_lstm")
    assert pred[["record", "sample", "true"]].equals(plain[["record", "sample", "true"]])
    assert (pred.pred != plain.pred).any()
