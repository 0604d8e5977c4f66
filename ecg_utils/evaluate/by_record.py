"""Statistics by record, as AAMI EC57 asks for them beside the gross ones: one patient must not decide a figure.

Gross statistics pool every beat of every record; one DS2 record holds three quarters of its S beats, so a gross S
figure says mostly how that patient went. EC57's average statistics compute each figure per record and average over
the records that have the class (`AVERAGE_RULE`). Beside both: the per-record table (beats, Se / +P, false S and V
calls, the record's rhythms from its reference annotations), each figure with one record left out in turn (the
largest swing named), and false S and V calls per hour of each annotated rhythm.

Everything works from prediction files (record, sample, true, pred) and the records' `.atr` rhythm annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecg_utils.atomic import atomic_open, write_json
from ecg_utils.data.aami import CLASSES
from ecg_utils.data.records import MITDB_FIX, Rhythms, read_rhythms

AVERAGE_RULE = ("EC57 average statistics: a class's Se is the mean of the per-record Se over the records with at "
                "least one reference beat of the class; its +P the mean of the per-record +P over the records with "
                "at least one beat called that class. 'records' says over how many.")
LOO_CLASSES = ("S", "V")


def ratio(num: float, den: float) -> float | None:
    """num / den, or None where den is 0: "never predicted" must not read as "always wrong"."""
    return float(num / den) if den else None


def _f1(se: float | None, ppv: float | None) -> float | None:
    return None if se is None or ppv is None else (2 * se * ppv / (se + ppv) if se + ppv else 0.0)


def gross(pred: pd.DataFrame, c: str) -> dict[str, float | None]:
    """Se, +P and F1 of class `c` over every beat of `pred` pooled."""
    t, p = pred.true.to_numpy() == c, pred.pred.to_numpy() == c
    se, ppv = ratio((t & p).sum(), t.sum()), ratio((t & p).sum(), p.sum())
    return {"se": se, "ppv": ppv, "f1": _f1(se, ppv)}


def commonest_error(pred: pd.DataFrame) -> tuple[tuple[str, str], int] | None:
    """The commonest (true, called) confusion of `pred` and its count (ties: the first in sorted order); None if no error."""
    wrong = pred[pred.true != pred.pred].groupby(["true", "pred"]).size()
    return None if not len(wrong) else (wrong.idxmax(), int(wrong.max()))


def average_figures(pred: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per class: the EC57 average Se and +P (`AVERAGE_RULE`) and the number of records each is over."""
    out = {}
    for c in CLASSES:
        se, ppv = [], []
        for _, g in pred.groupby("record", sort=True):
            t, p = g.true.to_numpy() == c, g.pred.to_numpy() == c
            if t.any():
                se.append((t & p).sum() / t.sum())
            if p.any():
                ppv.append((t & p).sum() / p.sum())
        out[c] = {"se": float(np.mean(se)) if se else None, "se_records": len(se),
                  "ppv": float(np.mean(ppv)) if ppv else None, "ppv_records": len(ppv)}
    return out


def leave_one_record_out(pred: pd.DataFrame, classes: tuple[str, ...] = LOO_CLASSES) -> dict[str, Any]:
    """Per class: the gross figures with each record removed in turn, and the record whose removal moves F1 most."""
    out = {}
    for c in classes:
        whole = gross(pred, c)
        without = {str(r): gross(pred[pred.record != r], c) for r in sorted(set(pred.record))}
        moves = {r: abs((f["f1"] or 0.0) - (whole["f1"] or 0.0)) for r, f in without.items()}
        worst = max(moves, key=lambda r: (moves[r], r)) if moves else None
        out[c] = {"all": whole, "without": without,
                  "largest_swing": None if worst is None else {"record": worst, **without[worst]}}
    return out


def rhythms_of(records: list[str], mitdb_dir: Path) -> dict[str, Rhythms]:
    return {r: read_rhythms(Path(mitdb_dir) / r, fix=MITDB_FIX) for r in records}


def _rhythm_share(rhythms: Rhythms) -> str:
    seconds = rhythms.seconds()
    total = sum(seconds.values())
    ranked = sorted(seconds.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{label} {100 * s / total:.0f} %" for label, s in ranked if s / total >= 0.005)


def record_table(pred: pd.DataFrame, rhythms: dict[str, Rhythms]) -> pd.DataFrame:
    """Per record: beats per class, errors, Se / +P per class, false S and V calls, the commonest confusion and the
    record's rhythms (share of its duration), most errors first."""
    rows = []
    for record, g in pred.groupby("record", sort=True):
        t, p = g.true.to_numpy(), g.pred.to_numpy()
        row: dict[str, Any] = {"record": record, "beats": len(g), "errors": int((t != p).sum())}
        for c in CLASSES:
            row[f"{c} beats"] = int((t == c).sum())
        for c in CLASSES:
            row[f"{c} Se"] = ratio(((t == c) & (p == c)).sum(), (t == c).sum())
            row[f"{c} +P"] = ratio(((t == c) & (p == c)).sum(), (p == c).sum())
        row["false S"] = int(((p == "S") & (t != "S")).sum())
        row["false V"] = int(((p == "V") & (t != "V")).sum())
        commonest = commonest_error(g)
        row["most common error"] = "" if commonest is None else "{}→{}".format(*commonest[0])
        row["rhythms"] = _rhythm_share(rhythms[str(record)])
        rows.append(row)
    table = pd.DataFrame(rows).set_index("record")
    return table.sort_values(["errors", "beats"], ascending=False, kind="stable")


def errors_by_rhythm(pred: pd.DataFrame, rhythms: dict[str, Rhythms]) -> pd.DataFrame:
    """Per annotated rhythm, over the records of `pred`: hours, beats, and false S and V calls in total and per hour."""
    hours: dict[str, float] = {}
    for record in sorted(set(pred.record)):
        for label, s in rhythms[str(record)].seconds().items():
            hours[label] = hours.get(label, 0.0) + s / 3600
    label = np.empty(len(pred), dtype=object)
    for record, idx in pred.groupby("record").indices.items():
        label[idx] = rhythms[str(record)].at(pred["sample"].to_numpy()[idx])
    t, p = pred.true.to_numpy(), pred.pred.to_numpy()
    rows = []
    for rhythm in sorted(hours, key=lambda r: -hours[r]):
        here = label == rhythm
        false_s, false_v = int((here & (p == "S") & (t != "S")).sum()), int((here & (p == "V") & (t != "V")).sum())
        rows.append({"rhythm": rhythm, "hours": hours[rhythm], "beats": int(here.sum()), "false S": false_s,
                     "false S per hour": false_s / hours[rhythm] if hours[rhythm] else None, "false V": false_v,
                     "false V per hour": false_v / hours[rhythm] if hours[rhythm] else None})
    return pd.DataFrame(rows).set_index("rhythm")


def record_statistics(pred: pd.DataFrame, rhythms: dict[str, Rhythms]) -> dict[str, Any]:
    """Gross and average figures, leave-one-record-out and errors by rhythm of one prediction file."""
    return {"records": sorted(str(r) for r in set(pred.record)), "n_beats": len(pred),
            "gross": {c: gross(pred, c) for c in CLASSES}, "average": average_figures(pred),
            "leave_one_record_out": leave_one_record_out(pred),
            "errors_by_rhythm": errors_by_rhythm(pred, rhythms).reset_index().to_dict(orient="records")}


def cross_validation_predictions(reports: str | Path) -> dict[str, pd.DataFrame]:
    """The pooled DS1-fold predictions that cross-validation wrote (`predictions/cross_validation_<config>.csv.gz`),
    by file name without its suffix."""
    return {path.name.removesuffix(".csv.gz"): pd.read_csv(path, dtype={"record": str})
            for path in sorted((Path(reports) / "predictions").glob("cross_validation_*.csv.gz"))}


def write_record_reports(reports: str | Path, mitdb_dir: str | Path, sources: dict[str, pd.DataFrame]
                         ) -> dict[str, Any]:
    """For each prediction file (name: frame), write `per_record/<name>.csv` and one `record_statistics.json`
    (name: `record_statistics`, with `AVERAGE_RULE`) under `reports`; returns what it wrote to the JSON."""
    reports = Path(reports)
    needed = sorted({str(r) for pred in sources.values() for r in set(pred.record)})
    rhythms = rhythms_of(needed, Path(mitdb_dir))
    out: dict[str, Any] = {"rule": AVERAGE_RULE, "sources": {}}
    for name, pred in sources.items():
        with atomic_open(reports / "per_record" / f"{name}.csv", "w") as handle:
            record_table(pred, rhythms).to_csv(handle, float_format="%.4f")
        out["sources"][name] = record_statistics(pred, rhythms)
    write_json(reports / "record_statistics.json", out)
    return out
