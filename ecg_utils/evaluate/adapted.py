"""The published ensemble on DS2 in whole-record mode: its own protocol row, "inter-patient, adapted to each test
patient without labels", beside the DS1-only row.

Each DS2 record is classified by the ensemble adapted to that record's own beats (`model.adapt`: its batch norms take
part of the record's statistics), with the method chosen on the DS1 folds alone (`adaptation.published_method` over
`reports/adaptation.json`); no label of the record is read before scoring. Every member is adapted and scored the
same way, so the row has the members' spread like the DS1-only one. This is what `predict` and the service do to
a whole record by default; the stream keeps the model as trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_utils.atomic import write_json
from ecg_utils.data.splits import DS1
from ecg_utils.evaluate.adaptation import classify_adapted
from ecg_utils.evaluate.by_record import average_figures
from ecg_utils.evaluate.protocols import predictions_frame, spread, summarize, write_predictions
from ecg_utils.paths import run_name
from ecg_utils.signal.dataset import BeatDataset

PROTOCOL = "inter_patient_adapted"
REPORT = "adapted.json"


def evaluate_adapted(runs_dir: str | Path, ds: BeatDataset, data: Any, reports: str | Path, model: str,
                     method: tuple[str, dict[str, Any]]) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ensemble `inter_patient_<model>` and each of its members, adapted record by record to the DS2 records with
    `method` (name, {layers, weight, label}), scored once. Writes `predictions/<run>_adapted.csv.gz` and `adapted.json`
    (the method, the figures gross and EC57 average, the members' spread) under `reports`."""
    from ecg_utils.model.batchnorm import MAX_BEATS
    from ecg_utils.model.checkpoint import load_model

    runs_dir, reports = Path(runs_dir), Path(reports)
    name, setting = method
    ensemble, ckpt = load_model(runs_dir / run_name("inter_patient", model) / "best.pt")
    test = ckpt.records("test")
    if set(test) & set(DS1):
        raise ValueError(f"{model}: its test records include DS1 records {sorted(set(test) & set(DS1))}")
    rows = np.flatnonzero(np.isin(ds.record, test))
    pred = _scored(ensemble, data, ds, rows, setting)
    figures = {**summarize(pred.true.to_numpy(), pred.pred.to_numpy()), "average": average_figures(pred)}
    members = []
    for fold in range(len(ckpt.train_config.get("members", []))):
        member, _ = load_model(runs_dir / run_name("inter_patient", model, fold) / "best.pt")
        p = _scored(member, data, ds, rows, setting)
        members.append(summarize(p.true.to_numpy(), p.pred.to_numpy()))
    if members:
        figures["spread"] = spread(members)
    write_predictions(pred, reports / "predictions" / f"{run_name('inter_patient', model)}_adapted.csv.gz")
    out = {"method": {"name": name, **setting, "max_beats": MAX_BEATS}, "records": sorted(set(test)),
           PROTOCOL: {model: figures}}
    write_json(reports / REPORT, out)
    return out, pred


def discard_adapted(reports: str | Path, model: str) -> list[Path]:
    """Remove an earlier run's whole-record report and predictions of `model` under `reports`, where no method passed
    on the folds this time: `publish` would otherwise ship that run's setting and figures with the new model.
    Returns the files removed."""
    reports = Path(reports)
    stale = [reports / REPORT, reports / "predictions" / f"{run_name('inter_patient', model)}_adapted.csv.gz"]
    removed = [p for p in stale if p.is_file()]
    for p in removed:
        p.unlink()
    return removed


def _scored(model: Any, data: Any, ds: BeatDataset, rows: np.ndarray, setting: dict[str, Any]) -> pd.DataFrame:
    proba = classify_adapted(model, data, rows, ds.record, setting)
    return predictions_frame(ds.record[rows], ds.sample[rows], ds.label[rows], proba)


def protocol_rows(metrics: dict[str, Any], adapted: dict[str, Any], model: str) -> pd.DataFrame:
    """The two inter-patient rows side by side (%): DS1-only and adapted to each test patient, each figure with
    the members' mean ± sd in brackets."""
    from ecg_utils.evaluate.report import with_spread

    rows = {}
    for label, f in (("inter-patient, DS1 only", metrics["inter_patient"][model]),
                     ("inter-patient, adapted to each test patient without labels", adapted[PROTOCOL][model])):
        sp = f.get("spread", {})
        row = {"accuracy": with_spread(f["accuracy"], sp.get("accuracy")),
               "macro F1": with_spread(f["macro_f1"], sp.get("macro_f1"))}
        for c in ("S", "V"):
            for key, name in (("se", "Se"), ("ppv", "+P"), ("f1", "F1")):
                row[f"{c} {name}"] = with_spread(f["classes"][c][key], sp.get("classes", {}).get(c, {}).get(key))
        rows[label] = row
    return pd.DataFrame(rows).T


def before_and_after(model: Any, data: Any, rows: np.ndarray, setting: dict[str, Any]) -> dict[str, np.ndarray]:
    """One record's beats (`rows`) seen by the model as trained and adapted to the record with `setting`: each
    beat's encoding and class index, before and after (for `plots.plot_adaptation`)."""
    from ecg_utils.model.adapt import adapt_batchnorm
    from ecg_utils.model.training import predict_proba

    p0, e0 = predict_proba(model, data, rows, encodings=True)
    adapted = adapt_batchnorm(model, *data.inputs(rows), setting["weight"], setting["layers"])
    p1, e1 = predict_proba(adapted, data, rows, encodings=True)
    return {"enc_before": e0, "enc_after": e1, "pred_before": p0.argmax(1), "pred_after": p1.argmax(1)}
