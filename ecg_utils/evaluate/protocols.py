"""Test-set evaluation: AAMI EC57 figures per class, prediction files, per-record errors.

Everything here works from (true, predicted) class letters, so the published prediction files
are enough to recompute every published figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecg_utils.atomic import atomic_open, write_json
from ecg_utils.data.aami import CLASSES, PROBA_COLUMNS, to_index
from ecg_utils.data.splits import Split, make_split
from ecg_utils.evaluate.by_record import average_figures, ratio
from ecg_utils.metrics import accuracy, macro_f1
from ecg_utils.model.checkpoint import Checkpoint, load_model
from ecg_utils.paths import run_name, teacher_of
from ecg_utils.signal.dataset import BeatDataset

if TYPE_CHECKING:  # sources loads PyTorch: a process that only scores prediction files (realtime) must not need it
    from ecg_utils.model.sources import SequenceData


def confusion(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """5 x 5 counts, rows = reference class, columns = predicted class, in CLASSES order."""
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(cm, (to_index(true), to_index(pred)), 1)
    return cm


def class_figures(cm: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per class: precision, recall, F1, support, and the EC57 names for them.

    Se (sensitivity) = recall = TP / (TP + FN); +P (positive predictivity) = precision = TP / (TP + FP);
    FPR = FP / (FP + TN). An undefined ratio (no beats of the class, or none predicted) is None,
    not 0, so a reader can tell "never predicted" from "always wrong".
    """
    total = cm.sum()
    out = {}
    for i, c in enumerate(CLASSES):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
        f1 = ratio(2 * tp, 2 * tp + fp + fn)
        out[c] = {"precision": precision, "recall": recall, "f1": f1, "support": int(cm[i].sum()),
                  "se": recall, "ppv": precision, "fpr": ratio(fp, fp + tn)}
    return out


def summarize(true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """The figures published in reports/metrics.json for one model on one test set."""
    y, p = to_index(true), to_index(pred)
    return {"accuracy": accuracy(y, p), "macro_f1": macro_f1(y, p), "n_beats": len(y),
            "classes": class_figures(confusion(true, pred))}


def predictions_frame(record: np.ndarray, sample: np.ndarray, true: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """One row per test beat: record, sample, true, pred and the class probabilities (4 decimals)."""
    df = pd.DataFrame({"record": record, "sample": sample, "true": true,
                       "pred": np.asarray(CLASSES)[proba.argmax(axis=1)]})
    return df.join(pd.DataFrame(np.round(proba, 4), columns=PROBA_COLUMNS))


def write_predictions(df: pd.DataFrame, path: str | Path) -> None:
    """Write a predictions table as gzip CSV, atomically (mtime fixed so reruns give identical bytes)."""
    with atomic_open(path, "wb") as handle:
        df.to_csv(handle, index=False, compression={"method": "gzip", "mtime": 0})


def misclassified(pred: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded random draw of up to `n` wrongly classified beats, in record order."""
    wrong = pred[pred.true != pred.pred]
    return wrong.sample(n=min(n, len(wrong)), random_state=seed).sort_index()


def dataset_rows(ds: BeatDataset, record: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Row indices in `ds` of the beats identified by (record, sample); -1 where a beat is absent."""
    index = pd.MultiIndex.from_arrays([ds.record, ds.sample])
    return index.get_indexer(pd.MultiIndex.from_arrays([np.asarray(record), np.asarray(sample)]))


def comparison_table(metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Models side by side: accuracy, macro F1, and Se / +P of each class (fractions)."""
    rows = {}
    for model, m in metrics.items():
        row = {"accuracy": m["accuracy"], "macro F1": m["macro_f1"]}
        for c in CLASSES:
            row[f"{c} Se"] = m["classes"][c]["se"]
            row[f"{c} +P"] = m["classes"][c]["ppv"]
        rows[model] = row
    return pd.DataFrame(rows).T


def split_from_checkpoint(ckpt: Checkpoint, ds: BeatDataset) -> Split:
    """Rebuild the split a model was trained with, and refuse a dataset that differs from its own."""
    _same_dataset(ckpt, ds)
    stored = ckpt.split
    split = make_split(stored["protocol"], ds.label, ds.record, **stored["params"])
    if split.to_dict(ds.label) != stored:
        raise ValueError(f"the {stored['protocol']} split rebuilt from this dataset differs from the one the model "
                         "was trained with (other records or beats)")
    return split


def _same_dataset(ckpt: Checkpoint, ds: BeatDataset) -> None:
    if ckpt.preprocess_config != ds.config:
        raise ValueError("the dataset was built with another preprocessing configuration than this model's; "
                         "rebuild it with the model's configuration (its checkpoint's preprocess_config)")


def evaluate_checkpoint(path: str | Path, ds: BeatDataset, data: SequenceData, part: str = "test"
                        ) -> tuple[pd.DataFrame, dict[str, Any], Checkpoint]:
    """Predict one part ('test', or 'val' for a fold model) of a model's split once.

    An ensemble's test part is its members' shared test records. Returns the predictions table, the
    summary figures (plus parameter count and chosen epoch) and the checkpoint.
    """
    from ecg_utils.model.training import predict_proba

    model, ckpt = load_model(path)
    if ckpt.is_ensemble:
        _same_dataset(ckpt, ds)
        if part != "test":
            raise ValueError("an ensemble has no validation part of its own: score its members")
        rows = np.flatnonzero(np.isin(ds.record, ckpt.records("test")))
    else:
        rows = split_from_checkpoint(ckpt, ds).parts()[part]
    proba = predict_proba(model, data, rows)
    pred = predictions_frame(ds.record[rows], ds.sample[rows], ds.label[rows], proba)
    figures = summarize(pred.true.to_numpy(), pred.pred.to_numpy())
    return pred, {**figures, "params": ckpt.n_params, "best_epoch": ckpt.epoch,
                  "val_macro_f1": ckpt.val_macro_f1}, ckpt


def mean_sd(values: list[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation of a figure over trainings; an undefined one (None) is left out and `n`
    says over how many it is."""
    v = np.array([x for x in values if x is not None], dtype=float)
    return {"mean": float(v.mean()) if len(v) else None, "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
            "n": len(v)}


def spread(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation over trainings of accuracy, macro F1 and each class's Se, +P and F1
    (`mean_sd`)."""
    return {"trainings": len(figures), "accuracy": mean_sd([f["accuracy"] for f in figures]),
            "macro_f1": mean_sd([f["macro_f1"] for f in figures]),
            "classes": {c: {k: mean_sd([f["classes"][c][k] for f in figures]) for k in ("se", "ppv", "f1")}
                        for c in CLASSES}}


def evaluate_runs(runs_dir: str | Path, ds: BeatDataset, protocols: list[str], models: list[str],
                  reports: str | Path, data: SequenceData | None = None, distilled: Sequence[str] = ()
                  ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], pd.DataFrame]]:
    """Every run `<protocol>_<model>` under `runs_dir` scored once on its test part, beside the all-N baseline.

    An ensemble's members (the fold runs `<protocol>_<model>_fold<k>`) are scored too, one by one: their mean
    and standard deviation are the `spread` beside the ensemble's figures. A student distilled from an ensemble
    (`distilled`: `<model>_distilled` runs, trained for the inter-patient protocol only and scored there after the
    models) gets its teacher's members' spread and names its `teacher`. Writes `predictions/<run>.csv.gz`
    (members without probabilities) and `metrics.json` (protocol → model → figures, with `all_N` for the
    majority-class reference) under `reports`; returns the metrics and the predictions.
    """
    from ecg_utils.model.sources import SequenceData

    reports, runs_dir = Path(reports), Path(runs_dir)
    data = data if data is not None else SequenceData.from_dataset(ds)
    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[tuple[str, str], pd.DataFrame] = {}
    for protocol in protocols:
        metrics[protocol] = {}
        for model in [*models, *(distilled if protocol == "inter_patient" else [])]:
            path = runs_dir / run_name(protocol, model) / "best.pt"
            pred, figures, ckpt = evaluate_checkpoint(path, ds, data)
            write_predictions(pred, reports / "predictions" / f"{run_name(protocol, model)}.csv.gz")
            members = ckpt.train_config.get("members", [])
            if members:
                scored = []
                for fold in range(len(members)):
                    member_pred, member, _ = evaluate_checkpoint(runs_dir / run_name(protocol, model, fold) / "best.pt",
                                                              ds, data)
                    write_predictions(member_pred[["record", "sample", "true", "pred"]],
                                      reports / "predictions" / f"{run_name(protocol, model, fold)}.csv.gz")
                    scored.append(member)
                figures["spread"] = spread(scored)
            figures["average"] = average_figures(pred)
            teacher = teacher_of(model)
            if ckpt.train_config.get("distil_weight") and teacher in metrics[protocol]:
                # A student is one training; the spread beside it is that of the members it learnt from.
                figures["teacher"] = teacher
                if "spread" in metrics[protocol][teacher]:
                    figures["spread"] = metrics[protocol][teacher]["spread"]
            predictions[protocol, model] = pred
            metrics[protocol][model] = figures
        # Every model of a protocol is scored on the same test beats: call them all N for the reference.
        first = predictions[protocol, models[0]]
        all_n = first.assign(pred="N")
        metrics[protocol]["all_N"] = {**summarize(all_n.true.to_numpy(), all_n.pred.to_numpy()),
                                      "average": average_figures(all_n)}
    write_json(reports / "metrics.json", metrics)
    return metrics, predictions


def cross_validate(runs_dir: str | Path, ds: BeatDataset, configs: list[str], folds: int, reports: str | Path,
                   data: SequenceData | None = None) -> dict[str, Any]:
    """The ablation on DS1's patient-wise folds: every fold model `inter_patient_<config>_fold<k>` scored on its
    own validation fold (patients it never trained on), never on DS2.

    Per configuration: the figures of all DS1 beats pooled (each predicted by the one model that did not
    train on its patient), gross and EC57 average (`by_record.AVERAGE_RULE`), the spread over the folds and the
    records each fold model was scored on, so that the report itself shows it holds no DS2 record. Writes
    `cross_validation.json` and the pooled predictions `predictions/cross_validation_<config>.csv.gz` under
    `reports`.

    The rule for judging a change on the folds (DS1's S beats sit in a handful of records, so a pooled figure
    can move with one patient): a change is an improvement only if it raises the pooled (gross) S or V F1
    *and* lowers neither the average Se nor the average +P of that class, nor the gross F1 of the other one,
    by more than the folds' noise; a change that raises a pooled figure while lowering an average one is not
    an improvement unless the note that reports it says why. The leave-one-record-out figures of
    `record_statistics.json` name the record that moves the pooled figure most.
    """
    from ecg_utils.model.sources import SequenceData

    data = data if data is not None else SequenceData.from_dataset(ds)
    out: dict[str, Any] = {"folds": folds, "configs": {}}
    for config in configs:
        pooled, out["configs"][config] = score_folds(runs_dir, ds, data, config, folds)
        write_predictions(pooled[["record", "sample", "true", "pred"]],
                          Path(reports) / "predictions" / f"cross_validation_{config}.csv.gz")
    write_json(Path(reports) / "cross_validation.json", out)
    return out


def pooled_figures(pred: pd.DataFrame) -> dict[str, Any]:
    """The gross figures of predictions pooled over models (`summarize`) and their EC57 average ones."""
    return {**summarize(pred.true.to_numpy(), pred.pred.to_numpy()), "average": average_figures(pred)}


def score_folds(runs_dir: str | Path, ds: BeatDataset, data: SequenceData, config: str,
                folds: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The fold models `inter_patient_<config>_fold<k>` of one configuration, each on its own validation fold:
    the pooled predictions and their figures (gross, EC57 average, spread over the folds, records per fold)."""
    preds, per_fold, fold_records = [], [], []
    for fold in range(folds):
        path = Path(runs_dir) / run_name("inter_patient", config, fold) / "best.pt"
        pred, figures, ckpt = evaluate_checkpoint(path, ds, data, part="val")
        preds.append(pred)
        per_fold.append(figures)
        fold_records.append(sorted(set(pred.record)))
    pooled = pd.concat(preds)
    return pooled, {**pooled_figures(pooled), "params": per_fold[0]["params"], "spread": spread(per_fold), "fold_records": fold_records,
                    "train_config": ckpt.train_config}


def ablation_table(cv: dict[str, Any]) -> pd.DataFrame:
    """The cross-validation figures side by side (fractions): pooled accuracy, macro F1 and S / V Se, +P, F1 (gross),
    the EC57 average S / V Se and +P where the report has them, and the folds' mean and sd of macro F1."""
    rows = {}
    for name, c in cv["configs"].items():
        row = {"parameters": c["params"], "accuracy": c["accuracy"], "macro F1": c["macro_f1"],
               "macro F1 folds mean": c["spread"]["macro_f1"]["mean"], "macro F1 folds sd": c["spread"]["macro_f1"]["sd"]}
        for k in ("S", "V"):
            row |= {f"{k} Se": c["classes"][k]["se"], f"{k} +P": c["classes"][k]["ppv"], f"{k} F1": c["classes"][k]["f1"]}
            if "average" in c:
                row |= {f"{k} Se avg": c["average"][k]["se"], f"{k} +P avg": c["average"][k]["ppv"]}
        rows[name] = row
    return pd.DataFrame(rows).T


def spread_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Per model of one protocol (fractions): each figure of the published model (the ensemble) beside the
    mean and standard deviation of its members, the independent trainings."""
    rows = {}
    for model, m in metrics.items():
        if "spread" not in m:
            continue
        s = m["spread"]
        figures = {"accuracy": (m["accuracy"], s["accuracy"]), "macro F1": (m["macro_f1"], s["macro_f1"])}
        for c in CLASSES:
            for key, name in (("se", "Se"), ("ppv", "+P"), ("f1", "F1")):
                figures[f"{c} {name}"] = (m["classes"][c][key], s["classes"][c][key])
        rows[model] = {(f, part): v for f, (ens, st) in figures.items()
                       for part, v in (("ensemble", ens), ("mean", st["mean"]), ("sd", st["sd"]))}
    return pd.DataFrame(rows).T
