"""Label-free adaptation judged on the DS1 folds: `python -m ecg_utils.evaluate.adaptation` (`make adaptation`).

The literature's largest S gains come from using each test patient's unlabelled beats; such a result is its own
protocol row, and its settings must be chosen on DS1 alone. Here every fold model of the seed ablation (the
configuration `CONFIG` of `params/ablation.yaml`, trained there if missing) adapts to each held-out DS1 record on
that record's own beats (`model.adapt`), with each method of `params/adaptation.yaml`, and classifies it. Each
seed's predictions are pooled over the folds and scored as the ablation scores them; beside each method's mean ± sd
over the seeds, the report gives its paired difference from the unadapted models (same models, so the seeds'
spread of the difference is what tells a gain from a draw). No label of a held-out record is read before scoring.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from ecg_utils.atomic import write_json
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError
from ecg_utils.paths import project_path, run_name

PARAMS = "params/adaptation.yaml"
KEYS = ("ABLATION", "CONFIG", "METHODS", "REPORTS")
METHOD_KEYS = ("layers", "weight", "label")  # batch norms re-estimated (`adapt.adapt_batchnorm`)
FAMILY_KEYS = ("families", "weight", "label")  # classes made consistent within k beat families (`adapt.families`)


def read_params(path: str | Path) -> dict[str, Any]:
    """The adaptation's parameters; a missing or unknown key, or a method without a weight-0 baseline, fails."""
    from ecg_utils.model.batchnorm import LAYERS

    params = yaml.safe_load(Path(path).read_text()) or {}
    missing, unknown = sorted(set(KEYS) - set(params)), sorted(set(params) - set(KEYS))
    if missing or unknown:
        raise ValueError(f"{path}: missing {missing}, unknown {unknown}; the keys are {', '.join(KEYS)}")
    for name, method in params["METHODS"].items():
        if sorted(method) not in (sorted(METHOD_KEYS), sorted(FAMILY_KEYS)):
            raise ValueError(f"{path}: method {name} has {sorted(method)}; give exactly {', '.join(METHOD_KEYS)} "
                             f"(batch norms) or {', '.join(FAMILY_KEYS)} (beat families)")
        if ("layers" in method and method["layers"] not in LAYERS) or not 0 <= method["weight"] <= 1:
            raise ValueError(f"{path}: method {name}: layers one of {', '.join(LAYERS)}, weight in [0, 1]")
        if "families" in method and (not isinstance(method["families"], int) or method["families"] < 1):
            raise ValueError(f"{path}: method {name}: families={method['families']!r}; give a whole number >= 1")
    first = next(iter(params["METHODS"].values()), None)
    if first is None or first["weight"] != 0:
        raise ValueError(f"{path}: the first method must be the unadapted baseline (weight 0)")
    return params


def classify_adapted(model: Any, data: Any, rows: np.ndarray, record: np.ndarray, method: dict[str, Any]) -> np.ndarray:
    """Class probabilities of `rows`, each record's beats by the model adapted to that record's own inputs (batch
    norms), or its probabilities made consistent within the record's beat families."""
    from ecg_utils.model.adapt import adapt_batchnorm, families, smooth_in_families
    from ecg_utils.model.training import predict_proba

    weight = method["weight"]
    proba = np.zeros((len(rows), len(CLASSES)), dtype=np.float32)
    for rec in np.unique(record[rows]):
        mine = rows[record[rows] == rec]
        if "families" in method:
            p, enc = predict_proba(model, data, mine, encodings=True)
            p = smooth_in_families(p, families(enc, method["families"]), weight)
        else:
            adapted = model if weight == 0 else adapt_batchnorm(model, *data.inputs(mine), weight, method["layers"])
            p = predict_proba(adapted, data, mine)
        proba[record[rows] == rec] = p
    return proba


def published_method(report: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The method whole-record mode uses, chosen from the folds' report (`adaptation.json`) alone: of the batch-norm
    methods the rule for a better model calls better than the unadapted models, the one whose macro F1 gains most
    (mean of the paired differences); None if none is better. Beat families are not candidates: the shipped graph
    adapts batch norms only."""
    from ecg_utils.evaluate.ablation import judge

    methods = list(report["methods"].items())
    base = methods[0][1]["per_seed"]
    better = [(m["paired"]["macro_f1"]["mean"], name, m) for name, m in methods[1:]
              if "layers" in m and judge(base, m["per_seed"])[0]]
    if not better:
        return None
    _, name, m = max(better, key=lambda t: t[0])
    return name, {"layers": m["layers"], "weight": m["weight"], "label": m["label"]}


def paired(per_seed: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± sd over seeds of each figure's difference from the baseline's (same seed, same models)."""
    from ecg_utils.evaluate.ablation import over_seeds

    def minus(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            return {k: minus(a[k], b[k]) for k in a if k in b}
        return None if a is None or b is None or isinstance(a, (str, list)) else a - b

    return over_seeds([minus(p, b) for p, b in zip(per_seed, base)])


def score_all(params: dict[str, Any], ablation: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    """Every method's figures per seed (pooled over the folds), over the seeds and paired with the baseline."""
    from ecg_utils.evaluate.ablation import config_dataset, over_seeds, seed_name
    from ecg_utils.evaluate.protocols import pooled_figures, predictions_frame, split_from_checkpoint
    from ecg_utils.model.checkpoint import load_model
    from ecg_utils.model.sources import SequenceData
    from ecg_utils.signal.dataset import load_dataset

    ds = load_dataset(project_path(config_dataset(ablation, params["CONFIG"])))
    data = SequenceData.from_dataset(ds)
    methods, runs = params["METHODS"], project_path(ablation["RUNS"])
    preds: dict[str, dict[int, list[pd.DataFrame]]] = {m: {s: [] for s in ablation["SEEDS"]} for m in methods}
    jobs = [(s, k) for s in ablation["SEEDS"] for k in range(ablation["FOLDS"])]
    for seed, fold in tqdm(jobs, desc="fold models", disable=not progress):
        model, ckpt = load_model(runs / run_name("inter_patient", seed_name(params["CONFIG"], seed), fold) / "best.pt")
        rows = split_from_checkpoint(ckpt, ds).parts()["val"]
        for name, m in methods.items():
            proba = classify_adapted(model, data, rows, ds.record, m)
            preds[name][seed].append(predictions_frame(ds.record[rows], ds.sample[rows], ds.label[rows], proba))
    out: dict[str, Any] = {"config": params["CONFIG"], "folds": ablation["FOLDS"], "seeds": ablation["SEEDS"],
                           "methods": {}}
    for name, method in methods.items():
        per_seed = []
        for seed in ablation["SEEDS"]:
            per_seed.append(pooled_figures(pd.concat(preds[name][seed])))
        out["methods"][name] = {**method, "over_seeds": over_seeds(per_seed), "per_seed": per_seed}
    base = next(iter(out["methods"].values()))["per_seed"]
    for m in out["methods"].values():
        m["paired"] = paired(m["per_seed"], base)
    write_json(project_path(params["REPORTS"]) / "adaptation.json", out)
    return out


def main(argv: list[str] | None = None) -> int:
    from ecg_utils.evaluate import ablation as abl

    args = abl.parse_args("adaptation", __doc__, PARAMS, argv)
    try:
        params = read_params(project_path(args.params))
        ablation = abl.read_params(project_path(params["ABLATION"]))
        if params["CONFIG"] not in ablation["CONFIGS"]:
            raise ValueError(f"CONFIG {params['CONFIG']!r} is not a configuration of {params['ABLATION']}: choose one "
                             f"of {', '.join(ablation['CONFIGS'])}")
        abl.train_all(ablation, progress=not args.no_progress, only=[params["CONFIG"]])
        out = score_all(params, ablation, progress=not args.no_progress)
    except (OSError, ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, m in out["methods"].items():
        s, d = m["over_seeds"]["classes"]["S"]["f1"], m["paired"]["classes"]["S"]["f1"]
        print(f"{name}: S F1 {s['mean']:.3f} ± {s['sd']:.3f}, paired difference {d['mean']:+.3f} ± {d['sd']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
