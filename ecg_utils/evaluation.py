"""Test-set evaluation: AAMI EC57 figures per class, prediction files, per-record errors.

Everything here works from (true, predicted) class letters, so the published prediction files
are enough to recompute every published figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .aami import CLASSES, PROBA_COLUMNS, to_index
from .atomic import atomic_open, write_json
from .checkpoint import Checkpoint, load_model
from .dataset import BeatDataset
from .metrics import accuracy, macro_f1
from .splits import Split, make_split


def confusion(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """5 x 5 counts, rows = reference class, columns = predicted class, in CLASSES order."""
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(cm, (to_index(true), to_index(pred)), 1)
    return cm


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


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
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        out[c] = {"precision": precision, "recall": recall, "f1": f1, "support": int(cm[i].sum()),
                  "se": recall, "ppv": precision, "fpr": _ratio(fp, fp + tn)}
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


def per_record_table(pred: pd.DataFrame) -> pd.DataFrame:
    """Per test record: beats and errors, and Se / +P for S and V, the classes that decide EC57 results."""
    rows = []
    for rec, g in pred.groupby("record", sort=True):
        row = {"record": rec, "beats": len(g), "errors": int((g.true != g.pred).sum()),
               "accuracy": float((g.true == g.pred).mean())}
        for c in ("S", "V"):
            t, p = g.true == c, g.pred == c
            row[f"{c} beats"] = int(t.sum())
            row[f"{c} Se"] = _ratio((t & p).sum(), t.sum())
            row[f"{c} +P"] = _ratio((t & p).sum(), p.sum())
        row["most common error"] = (g[g.true != g.pred].groupby(["true", "pred"]).size().idxmax()
                                    if row["errors"] else None)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("record")
    table["most common error"] = table["most common error"].map(lambda e: f"{e[0]}→{e[1]}" if e else "")
    return table.sort_values("errors", ascending=False)


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
    if ckpt.preprocess_config != ds.config:
        raise ValueError("the dataset was built with another preprocessing configuration than this model's; "
                         "rebuild it with the model's configuration (its checkpoint's preprocess_config)")
    stored = ckpt.split
    split = make_split(stored["protocol"], ds.label, ds.record, **stored["params"])
    if split.to_dict(ds.label) != stored:
        raise ValueError(f"the {stored['protocol']} split rebuilt from this dataset differs from the one the model "
                         "was trained with (other records or beats)")
    return split


def evaluate_run(run_dir: str | Path, ds: BeatDataset) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Predict the test part of a run's split once, with the checkpoint chosen on validation.

    Returns the predictions table and the summary figures (plus parameter count and chosen epoch).
    """
    import torch  # here, not at the top: classifying with an ONNX model must not need PyTorch

    from .training import predict_proba

    model, ckpt = load_model(Path(run_dir) / "best.pt")
    split = split_from_checkpoint(ckpt, ds)
    idx = split.test
    proba = predict_proba(model, torch.from_numpy(ds.signal[idx]).unsqueeze(1), torch.from_numpy(ds.rr[idx]))
    pred = predictions_frame(ds.record[idx], ds.sample[idx], ds.label[idx], proba)
    figures = summarize(pred.true.to_numpy(), pred.pred.to_numpy())
    return pred, {**figures, "params": ckpt.n_params, "best_epoch": ckpt.epoch, "val_macro_f1": ckpt.val_macro_f1}


def evaluate_runs(runs_dir: str | Path, ds: BeatDataset, protocols: list[str], models: list[str],
                  reports: str | Path) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], pd.DataFrame]]:
    """Every run `<protocol>_<model>` under `runs_dir` scored once on its test part, beside the all-N baseline.

    Writes `predictions/<protocol>_<model>.csv.gz` and `metrics.json` (protocol → model → figures, with
    `all_N` for the majority-class reference) under `reports`; returns the metrics and the predictions.
    """
    reports = Path(reports)
    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[tuple[str, str], pd.DataFrame] = {}
    for protocol in protocols:
        metrics[protocol] = {}
        for model in models:
            pred, figures = evaluate_run(Path(runs_dir) / f"{protocol}_{model}", ds)
            write_predictions(pred, reports / "predictions" / f"{protocol}_{model}.csv.gz")
            predictions[protocol, model] = pred
            metrics[protocol][model] = figures
        # Every model of a protocol is scored on the same test beats: call them all N for the reference.
        true = predictions[protocol, models[0]].true.to_numpy()
        metrics[protocol]["all_N"] = summarize(true, np.full(len(true), "N"))
    write_json(reports / "metrics.json", metrics)
    return metrics, predictions
