"""The fold ablation over seeds: every configuration x seed x fold trained once, scored on DS1 folds only."""

import json

import numpy as np
import yaml

from ecg_utils.evaluate.ablation import main, read_params
from ecg_utils.signal.dataset import build_dataset
from ecg_utils.signal.preprocess import PreprocessConfig

DS1 = ["101", "106", "119", "208"]


def _params(tmp_path, mitdb_dir, **changes):
    dataset = build_dataset(PreprocessConfig(records=[*DS1, "100"]), tmp_path / "beats.npz", mitdb_dir=mitdb_dir,
                            progress=False)
    tiny = {"model": "cnn", "normal_keep": 0.2, "chunk": 16, "batch_size": 64,
            "model_params": {"channels": [4, 8], "dim": 8, "head": 8}}
    longer = {**tiny, "epochs": 2, "preprocess": {"mean_rr_stat": "median", "mean_rr_beats": 50}}
    params = {"CONFIGS": {"tiny": tiny, "longer": longer},
              "SEEDS": [0, 10], "FOLDS": 2, "EPOCHS": 1, "DATASET": str(dataset), "RUNS": str(tmp_path / "runs"),
              "REPORTS": str(tmp_path / "reports"), "WORKERS": 2, "PREPROCESS": {"mean_rr_stat": "mean"}, **changes}
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_every_seed_and_fold_trained_once_and_scored_on_ds1(tmp_path, mitdb_dir, capsys):
    params = _params(tmp_path, mitdb_dir)
    assert main(["--params", str(params), "--no-progress"]) == 0
    assert "tiny: S F1" in capsys.readouterr().out
    runs = sorted((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == [f"inter_patient_{c}_seed{s}_fold{k}" for c in ("longer", "tiny") for s in (0, 10)
                                      for k in (0, 1)]
    for run in runs:
        config = json.loads((run / "config.json").read_text())["train_config"]
        seed, fold = int(run.name.split("seed")[1].split("_")[0]), int(run.name[-1])
        assert config["seed"] == seed + fold and config["threads"] == 1
        assert config["epochs"] == (2 if "longer" in run.name else 1)  # a configuration's own epochs, else EPOCHS
        # ... and PREPROCESS, or its own preprocessing over it, on a dataset built beside DATASET with only those
        # settings changed
        pre = PreprocessConfig.from_dict(json.loads((run / "config.json").read_text())["preprocess_config"])
        changes = {"mean_rr_stat": "median", "mean_rr_beats": 50} if "longer" in run.name else {"mean_rr_stat": "mean"}
        assert pre == PreprocessConfig(records=[*DS1, "100"], **changes)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "ablation_mean_rr_beats-50_mean_rr_stat-median.npz", "ablation_mean_rr_stat-mean.npz", "beats.npz"]
    out = json.loads((tmp_path / "reports" / "ablation.json").read_text())
    tiny = out["configs"]["tiny"]
    assert len(tiny["per_seed"]) == 2 and out["seeds"] == [0, 10]
    for f in tiny["per_seed"]:
        assert sorted(r for fold in f["fold_records"] for r in fold) == DS1  # DS2's record 100 is never scored
        # Each scored beat counted once in its rhythm group (every MIT-BIH rhythm has one), its class and calls too.
        by = f["by_rhythm"].values()
        assert sum(g["beats"] for g in by) == f["n_beats"] and sum(g["S"] for g in by) == f["classes"]["S"]["support"]
        assert sum(g["S found"] for g in by) == round(f["classes"]["S"]["se"] * f["classes"]["S"]["support"])
        if f["classes"]["S"]["ppv"]:  # beats called S: those found over the share of calls that were right
            called = f["classes"]["S"]["se"] * f["classes"]["S"]["support"] / f["classes"]["S"]["ppv"]
            assert sum(g["S found"] + g["false S"] for g in by) == round(called)
    assert tiny["per_seed"][0]["by_rhythm"]["ventricular"]["beats"] > 0  # 106, 119 and 208 have bigeminy
    acc = [f["accuracy"] for f in tiny["per_seed"]]
    assert tiny["over_seeds"]["accuracy"]["mean"] == np.mean(acc)
    assert np.isclose(tiny["over_seeds"]["accuracy"]["sd"], np.std(acc, ddof=1))

    # A re-run trains nothing again: the finished runs are kept as they are.
    stamps = [(r / "best.pt").stat().st_mtime_ns for r in runs]
    assert main(["--params", str(params), "--no-progress"]) == 0
    assert [(r / "best.pt").stat().st_mtime_ns for r in runs] == stamps

    # --only trains and scores one new configuration; the others keep their stored scores, which must still be
    # those of the configuration as the parameters define it.
    values = yaml.safe_load(params.read_text())
    values["CONFIGS"]["p75"] = {**values["CONFIGS"]["tiny"], "preprocess": {"mean_rr_stat": "p75"}}
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params), "--no-progress", "--only", "p75", "p57"]) == 1
    assert "--only p57: no such configuration" in capsys.readouterr().err
    assert main(["--params", str(params), "--no-progress", "--only", "p75"]) == 0
    again = json.loads((tmp_path / "reports" / "ablation.json").read_text())
    assert {k: again["configs"][k] for k in ("tiny", "longer")} == {k: out["configs"][k] for k in ("tiny", "longer")}
    assert len(again["configs"]["p75"]["per_seed"]) == 2
    assert len(list((tmp_path / "runs").iterdir())) == len(runs) + 4
    values["CONFIGS"]["tiny"]["normal_keep"] = 0.3
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params), "--no-progress", "--only", "p75"]) == 1
    assert "no scores of configuration tiny as the parameters define it; add it to --only" in capsys.readouterr().err


def test_parameters_are_checked(tmp_path, mitdb_dir, capsys):
    params = _params(tmp_path, mitdb_dir, SEEDS=[0])
    assert main(["--params", str(params)]) == 1
    assert "a spread needs at least 2 seeds" in capsys.readouterr().err
    values = yaml.safe_load(params.read_text())
    values.pop("WORKERS")
    values["WORKER"] = 2
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params)]) == 1
    assert "missing ['WORKERS'], unknown ['WORKER']" in capsys.readouterr().err
    values = yaml.safe_load(params.read_text())
    values["WORKERS"], values["SEEDS"] = values.pop("WORKER"), [0, 10]
    values["CONFIGS"]["longer"]["preprocess"] = {"mean_rr_stats": "median"}
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params)]) == 1
    assert "configuration longer: preprocess" in capsys.readouterr().err
    values["CONFIGS"]["longer"]["preprocess"] = {"mean_rr_stat": "median"}
    values["CONFIGS"]["longer"]["against"] = "tiny"  # the first configuration (keys sorted) against a later one
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params)]) == 1
    assert "configuration longer: against='tiny'; name a configuration above it" in capsys.readouterr().err


def test_the_shipped_parameters_are_valid():
    from ecg_utils.paths import PROJ_ROOT

    params = read_params(PROJ_ROOT / "params" / "ablation.yaml")
    assert len(params["SEEDS"]) >= 2 and params["FOLDS"] == 5


def test_a_distilled_configuration_learns_from_its_folds_trainings_of_the_teacher(tmp_path, mitdb_dir, capsys):
    # The student of fold k learns from the teacher configuration's runs of fold k, one per seed (trained first, on
    # the same patients); their probabilities are written once per fold, on that fold's training beats only.
    from ecg_utils.data.splits import make_split
    from ecg_utils.signal.dataset import load_dataset

    params = _params(tmp_path, mitdb_dir)
    values = yaml.safe_load(params.read_text())
    values["CONFIGS"] = {"tiny": values["CONFIGS"]["tiny"],
                         "tiny_student": {**values["CONFIGS"]["tiny"], "distil_weight": 0.5, "teacher": "tiny"}}
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params), "--no-progress", "--only", "tiny_student"]) == 1
    assert "its teacher's runs are not trained" in capsys.readouterr().err
    assert main(["--params", str(params), "--no-progress"]) == 0
    runs = tmp_path / "runs"
    ds = load_dataset(tmp_path / "ablation_mean_rr_stat-mean.npz")
    for fold in range(2):
        proba = np.load(runs / f"teacher_tiny_fold{fold}.npy")
        train = make_split("inter_patient", ds.label, ds.record, folds=2, fold=fold).train
        assert np.isfinite(proba[train]).all() and np.isnan(np.delete(proba, train, axis=0)).all()
        for seed in (0, 10):
            config = json.loads((runs / f"inter_patient_tiny_student_seed{seed}_fold{fold}" / "config.json").read_text())
            teacher = config["train_config"]["teacher"]
            assert teacher.startswith(f"mean of 2: inter_patient_tiny_seed0_fold{fold}, inter_patient_tiny_seed10_fold")
            assert config["train_config"]["distil_weight"] == 0.5
    scored = json.loads((tmp_path / "reports" / "ablation.json").read_text())["configs"]
    assert set(scored) == {"tiny", "tiny_student"} and len(scored["tiny_student"]["per_seed"]) == 2
    values["CONFIGS"]["tiny_student"]["teacher"] = "tiny_student"
    params.write_text(yaml.safe_dump(values))
    assert main(["--params", str(params), "--no-progress", "--only", "tiny_student"]) == 1
    assert "name an undistilled configuration" in capsys.readouterr().err
