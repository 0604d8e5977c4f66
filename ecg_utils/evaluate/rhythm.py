"""How closely each running RR of the fold ablation follows the sinus cycle on DS1: `python -m ecg_utils.evaluate.rhythm`.

A beat is called premature against the patient's running RR (`mean_rr`), which reads no label. Whether a statistic
keeps the underlying cycle where ectopic beats are frequent is a property of the statistic, so it is measured here
with DS1's labels and no model: at each beat, the sinus cycle is the median of the last `REFERENCE_BEATS` intervals
between two consecutive N beats, and each running RR of `params/ablation.yaml` is compared with it. A statistic
that depends on the share of ectopic beats in a record shows it on DS1's ectopic-rich records (a third of record
208's beats are V). Only DS1 is read; DS2 never chooses.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from ecg_utils.atomic import write_json
from ecg_utils.data.splits import DS1
from ecg_utils.errors import DataError
from ecg_utils.evaluate import ablation as abl
from ecg_utils.paths import project_path
from ecg_utils.signal.preprocess import PreprocessConfig, rr_features

REFERENCE_BEATS = 256  # N-N intervals in the sinus cycle a running RR is compared with
MIN_REFERENCE = 16  # N-N intervals before the reference is trusted (a record's first beats are not scored)
ECTOPIC = ("S", "V", "F")
RICH = 0.2  # a record whose share of S, V and F beats is at least this is "ectopic-rich"


def settings(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each distinct running RR of the ablation's configurations, named in words ("median of 256")."""
    out = {}
    for name in params["CONFIGS"]:
        pre = PreprocessConfig.from_dict(abl.config_preprocess(params, name))
        out[f"{pre.mean_rr_stat} of {pre.mean_rr_beats}"] = {"mean_rr_stat": pre.mean_rr_stat,
                                                             "mean_rr_beats": pre.mean_rr_beats}
    return out


def sinus_reference(pre_rr: np.ndarray, label: np.ndarray) -> np.ndarray:
    """At each beat, the median of the last `REFERENCE_BEATS` previous-RR values of N beats that follow an N beat
    (causal); NaN until `MIN_REFERENCE` such intervals have passed."""
    nn = np.flatnonzero((label == "N") & (np.roll(label, 1) == "N") & (np.arange(len(label)) > 0))
    rolling = pd.Series(pre_rr[nn]).rolling(REFERENCE_BEATS, min_periods=MIN_REFERENCE).median().to_numpy()
    seen = np.searchsorted(nn, np.arange(len(label)), side="right")  # N-N intervals up to and including each beat
    return np.where(seen > 0, rolling[np.maximum(seen - 1, 0)], np.nan)


def track_record(sample: np.ndarray, label: np.ndarray, fs: float, stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One record: its share of ectopic beats and, per running RR, the mean |running / sinus - 1| (%) over its
    scored beats and the share of its S beats whose previous RR is under 90 % of the running RR (they look early)."""
    pre = rr_features(sample, fs, PreprocessConfig(), rhythm=False)[:, 0].astype(np.float64)
    ref = sinus_reference(pre, label)
    scored = ~np.isnan(ref)
    s = label == "S"
    out: dict[str, Any] = {"beats": len(label), "ectopic_share": float(np.isin(label, ECTOPIC).mean()),
                           "s_beats": int(s.sum()), "error": {}, "s_early": {}}
    for name, stat in stats.items():
        running = rr_features(sample, fs, PreprocessConfig(**stat), rhythm=False)[:, 3].astype(np.float64)
        out["error"][name] = float(100 * np.mean(np.abs(running[scored] / ref[scored] - 1))) if scored.any() else None
        out["s_early"][name] = float(np.mean(pre[s] < 0.9 * running[s])) if s.any() else None
    return out


def summarise(records: dict[str, dict[str, Any]], stats: list[str]) -> dict[str, Any]:
    """Per running RR: the mean error over every scored record and over the ectopic-rich ones, the worst record,
    and the pooled share of S beats that look early."""
    rich = [r for r, v in records.items() if v["ectopic_share"] >= RICH]
    out = {}
    for name in stats:
        errors = {r: v["error"][name] for r, v in records.items() if v["error"][name] is not None}
        worst = max(errors, key=errors.get)
        s_total = sum(v["s_beats"] for v in records.values())
        early = sum(v["s_early"][name] * v["s_beats"] for v in records.values() if v["s_beats"])
        out[name] = {"mean_error": float(np.mean(list(errors.values()))),
                     "rich_error": float(np.mean([errors[r] for r in rich if r in errors])),
                     "worst_record": worst, "worst_error": errors[worst],
                     "s_early": early / s_total if s_total else None}
    return {"rich_records": rich, "stats": out}


def track(params: dict[str, Any]) -> dict[str, Any]:
    """Every DS1 record of the ablation's dataset, every running RR of its configurations: `rhythm_tracking.json`."""
    from ecg_utils.signal.dataset import load_dataset

    ds = load_dataset(project_path(params["DATASET"]))
    fs = float(ds.config["fs"])
    stats = settings(params)
    records = {}
    for name in DS1:
        rows = np.flatnonzero(ds.record == name)
        if len(rows) > 1:
            records[name] = track_record(ds.sample[rows], ds.label[rows], fs, stats)
    out = {"reference_beats": REFERENCE_BEATS, "rich": RICH, **summarise(records, list(stats)), "records": records}
    write_json(project_path(params["REPORTS"]) / "rhythm_tracking.json", out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = abl.parse_args("rhythm", __doc__, abl.PARAMS, argv)
    try:
        out = track(abl.read_params(project_path(args.params)))
    except (OSError, ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, s in out["stats"].items():
        early = "no S beats" if s["s_early"] is None else f"{100 * s['s_early']:.1f} %"
        print(f"{name}: {s['mean_error']:.1f} % from the sinus cycle on average, {s['rich_error']:.1f} % on the "
              f"ectopic-rich records, worst {s['worst_record']} {s['worst_error']:.1f} %; S beats that look early "
              f"{early}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
