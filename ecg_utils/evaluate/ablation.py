"""The fold ablation over several trainings: `python -m ecg_utils.evaluate.ablation` (`make ablation`).

One training per fold is not a result: the same configuration trained from another seed moves the pooled DS1 S
F1 by several points (README's seed table shows how far). This trains every configuration of the parameters
file (`params/ablation.yaml`) once per DS1 fold and seed, in parallel processes of one thread each (so that every
run repeats bit for bit in any process, and a re-run skips finished runs), scores each seed's fold models as
notebook 02 does (each DS1 beat by the fold model that did not train on its patient, pooled) and writes the
figures per seed and their mean ± sd over the seeds to `reports/ablation.json`. Only DS1 patients are scored;
DS2 is never used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from ecg_utils.atomic import write_json
from ecg_utils.errors import DataError
from ecg_utils.paths import project_path, run_name

if TYPE_CHECKING:
    import pandas as pd

    from ecg_utils.signal.dataset import BeatDataset

PARAMS = "params/ablation.yaml"
KEYS = ("CONFIGS", "SEEDS", "FOLDS", "EPOCHS", "DATASET", "RUNS", "REPORTS", "WORKERS")
OPTIONAL = ("PREPROCESS",)  # preprocessing settings every configuration starts from (its own `preprocess` wins)
_DATA: dict[str, Any] = {}  # per process: each dataset and its model inputs by path, loaded once


def seed_name(config: str, seed: int) -> str:
    """The configuration name of one seed's fold runs (`runs/ablation/inter_patient_<config>_seed<s>_fold<k>`)."""
    return f"{config}_seed{seed}"


def read_params(path: str | Path) -> dict[str, Any]:
    """The ablation's parameters; a missing or unknown key fails, naming the valid ones."""
    params = yaml.safe_load(Path(path).read_text()) or {}
    missing, unknown = sorted(set(KEYS) - set(params)), sorted(set(params) - set(KEYS) - set(OPTIONAL))
    if missing or unknown:
        raise ValueError(f"{path}: missing {missing}, unknown {unknown}; the keys are {', '.join(KEYS)} and "
                         f"optionally {', '.join(OPTIONAL)}")
    if len(params["SEEDS"]) < 2:
        raise ValueError(f"{path}: SEEDS={params['SEEDS']}; a spread needs at least 2 seeds")
    names = list(params["CONFIGS"])
    for i, (name, config) in enumerate(params["CONFIGS"].items()):
        if config.get("against", names[0]) not in names[:max(i, 1)]:
            raise ValueError(f"{path}: configuration {name}: against={config['against']!r}; name a configuration "
                             f"above it ({', '.join(names[:i]) or 'none: the first is the baseline'})")
    return params


def _load(dataset: str) -> tuple[Any, Any]:
    """The dataset at `dataset` and its model inputs, loaded once per process."""
    from ecg_utils.model.sources import SequenceData
    from ecg_utils.signal.dataset import load_dataset

    if dataset not in _DATA:
        ds = load_dataset(project_path(dataset))
        _DATA[dataset] = (ds, SequenceData.from_dataset(ds))
    return _DATA[dataset]


def config_preprocess(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The preprocessing settings a configuration changes: `PREPROCESS`, with its own `preprocess` over it."""
    return {**(params.get("PREPROCESS") or {}), **(params["CONFIGS"][name].get("preprocess") or {})}


def config_dataset(params: dict[str, Any], name: str, build: bool = False) -> str:
    """The dataset a configuration trains on: `DATASET`, or, where `PREPROCESS` or the configuration's own
    `preprocess` change settings (e.g. how the running RR is summarised), a dataset built beside it with those
    settings changed, named by them (configurations with the same settings share it)."""
    preprocess = config_preprocess(params, name)
    if not preprocess:
        return params["DATASET"]
    slug = "_".join(f"{k}-{re.sub(r'[^A-Za-z0-9.]+', '-', str(v))}" for k, v in sorted(preprocess.items()))
    path = str(Path(params["DATASET"]).with_name(f"ablation_{slug}.npz"))
    if build:
        from ecg_utils.signal.dataset import build_dataset, stored_config
        from ecg_utils.signal.preprocess import PreprocessConfig

        base = stored_config(params["DATASET"])
        try:
            config = PreprocessConfig.from_dict({**base, **preprocess})
        except ValueError as exc:
            raise ValueError(f"configuration {name}: preprocess {preprocess}: {exc}") from exc
        build_dataset(config, project_path(path), progress=False)
    return path


def _train(config: dict[str, Any], epochs: int, seed: int, fold: int, folds: int, run_dir: str, dataset: str,
           teacher: tuple[str, str] | None = None) -> str:
    """One fold model, one thread; a finished run is not trained again. `teacher`: (name, .npy file of its
    probabilities) for a distilled configuration."""
    from ecg_utils.data.splits import make_split
    from ecg_utils.model.training import run_config, train

    ds, data = _load(dataset)
    split = make_split("inter_patient", ds.label, ds.record, folds=folds, fold=fold)
    recipe = {k: v for k, v in config.items() if k not in ("preprocess", "against", "teacher")}
    proba = None
    if teacher is not None:
        recipe["teacher"], proba = teacher[0], np.load(teacher[1])
    train(run_config({**recipe, "threads": 1}, epochs, seed, fold), ds, split, run_dir, progress=False, data=data,
          teacher=proba)
    return run_dir


def fold_teachers(params: dict[str, Any], name: str, progress: bool = True) -> list[tuple[str, str]]:
    """A distilled configuration's teacher on each fold: the runs of the configuration its `teacher` names for that
    fold, one per seed (trained on the same patients as the student, never on the fold it is scored on), their
    probabilities on the fold's training beats written once beside the runs. (name, file) per fold."""
    from ecg_utils.atomic import atomic_open
    from ecg_utils.data.splits import make_split
    from ecg_utils.model.distil import teacher_name, teacher_proba

    teacher = params["CONFIGS"][name]["teacher"]
    if teacher not in params["CONFIGS"] or "teacher" in params["CONFIGS"][teacher]:
        raise ValueError(f"configuration {name}: teacher={teacher!r}; name an undistilled configuration of the file")
    dataset = config_dataset(params, name)
    if config_dataset(params, teacher) != dataset:
        raise ValueError(f"configuration {name}: its teacher {teacher} trains on other inputs; give both the same "
                         "preprocess settings")
    runs = project_path(params["RUNS"])
    ds, data = _load(dataset)
    out = []
    for fold in tqdm(range(params["FOLDS"]), desc=f"teacher of {name}", disable=not progress):
        members = [runs / run_name("inter_patient", seed_name(teacher, s), fold) / "best.pt" for s in params["SEEDS"]]
        missing = [str(m) for m in members if not m.is_file()]
        if missing:
            raise ValueError(f"configuration {name}: its teacher's runs are not trained ({missing[0]}); train "
                             f"{teacher} first (--only {teacher})")
        path = runs / f"teacher_{teacher}_fold{fold}.npy"
        if not path.is_file() or path.stat().st_mtime < max(m.stat().st_mtime for m in members):
            split = make_split("inter_patient", ds.label, ds.record, folds=params["FOLDS"], fold=fold)
            proba = teacher_proba(members, data, split.train, threads=params["WORKERS"])
            with atomic_open(path, "wb") as handle:
                np.save(handle, proba)
        proba = np.load(path)
        out.append((teacher_name(members, proba), str(path)))
    return out


def train_all(params: dict[str, Any], progress: bool = True, only: list[str] | None = None) -> None:
    """Every configuration (or those `only` names) x seed x fold run, `WORKERS` at a time (each process loads a
    dataset once); a configuration's own `epochs` overrides `EPOCHS`, its own `preprocess` settings build its own
    dataset. Distilled configurations train after the others, once their teachers' runs exist (`fold_teachers`)."""
    names = only or list(params["CONFIGS"])
    datasets = {name: config_dataset(params, name, build=True) for name in names}
    plain = [n for n in names if "teacher" not in params["CONFIGS"][n]]
    _run_jobs(params, plain, datasets, {}, progress)
    distilled = [n for n in names if n not in plain]
    teachers = {name: fold_teachers(params, name, progress) for name in distilled}
    _run_jobs(params, distilled, datasets, teachers, progress)


def _run_jobs(params: dict[str, Any], names: list[str], datasets: dict[str, str],
              teachers: dict[str, list[tuple[str, str]]], progress: bool) -> None:
    runs = project_path(params["RUNS"])
    jobs = [(params["CONFIGS"][name], params["CONFIGS"][name].get("epochs", params["EPOCHS"]), seed, fold,
             params["FOLDS"], str(runs / run_name("inter_patient", seed_name(name, seed), fold)), datasets[name],
             teachers[name][fold] if name in teachers else None)
            for name in names for seed in params["SEEDS"] for fold in range(params["FOLDS"])]
    if not jobs:
        return
    with ProcessPoolExecutor(params["WORKERS"], mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_train, *job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="fold runs", disable=not progress):
            future.result()


def calls_by_rhythm(pred: pd.DataFrame, ds: BeatDataset) -> dict[str, dict[str, int]]:
    """Per rhythm group (`rhythm_groups`, from the reference rhythm annotations) of the scored beats: beats, S beats,
    S beats called S, and beats of another class called S and V. Where do a configuration's S gains and losses
    happen: in runs of S beats, or in atrial fibrillation, whose irregular normal beats look premature?"""
    import pandas as pd

    from ecg_utils.data.rhythm_groups import RHYTHM_GROUPS, rhythm_index

    group = pd.Series(rhythm_index(ds.rhythm), index=pd.MultiIndex.from_arrays([ds.record, ds.sample]))
    g = group.loc[list(zip(pred["record"], pred["sample"]))].to_numpy()
    true, called = pred["true"].to_numpy(), pred["pred"].to_numpy()
    return {name: {"beats": int(here.sum()), "S": int((here & (true == "S")).sum()),
                   "S found": int((here & (true == "S") & (called == "S")).sum()),
                   "false S": int((here & (true != "S") & (called == "S")).sum()),
                   "false V": int((here & (true != "V") & (called == "V")).sum())}
            for i, name in enumerate(RHYTHM_GROUPS) for here in [g == i]}


def over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd over seeds of the pooled (gross) figures (`protocols.spread`) and of the EC57 average S
    and V figures; the values themselves are in `per_seed`."""
    from ecg_utils.evaluate.protocols import mean_sd, spread

    return {**spread(per_seed), "average": {c: {k: mean_sd([f["average"][c][k] for f in per_seed])
                                                for k in ("se", "ppv")} for c in ("S", "V")}}


#: The rule for "better than the published configuration" on the folds (docs/new-model.md): the figures it must
#: gain and the ones it must not give back, each read from one training's pooled fold figures.
GAIN = {"S F1": lambda o: o["classes"]["S"]["f1"], "V F1": lambda o: o["classes"]["V"]["f1"]}
KEEP = {"accuracy": lambda o: o["accuracy"], "S Se avg": lambda o: o["average"]["S"]["se"],
        "S +P avg": lambda o: o["average"]["S"]["ppv"], "V Se avg": lambda o: o["average"]["V"]["se"],
        "V +P avg": lambda o: o["average"]["V"]["ppv"]}
MIN_SEEDS = 3


def judge(baseline: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether `candidate` beats `baseline` on the folds, from their per-seed figures trained with the same seeds:
    at least 3 paired trainings; S F1 or V F1 up by more than the sd of its paired differences; neither of them, nor
    accuracy or the EC57 average S and V Se and +P (per record: a change may not buy pooled figures with the few
    ectopic beats of many patients), down by more than that sd. Returns the verdict and its reasons."""
    if len(baseline) != len(candidate) or len(candidate) < MIN_SEEDS:
        return False, f"needs at least {MIN_SEEDS} trainings of both with the same seeds ({len(candidate)} given)"
    gains, losses = [], []
    for label, get in (GAIN | KEEP).items():
        pairs = [(get(c), get(b)) for c, b in zip(candidate, baseline)]
        if any(v is None for pair in pairs for v in pair):
            continue
        d = np.array([100 * (c - b) for c, b in pairs])
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        text = f"{label} {mean:+.1f} ± {sd:.1f}"
        if label in GAIN and mean > sd:
            gains.append(text)
        if mean < -sd:
            losses.append(text)
    if losses:
        return False, "loses " + ", ".join(losses)
    if not gains:
        return False, "neither S F1 nor V F1 gains by more than the spread of its paired differences"
    return True, "gains " + ", ".join(gains)


def stored_scores(params: dict[str, Any], only: list[str]) -> dict[str, Any]:
    """The scored configurations of `ablation.json` that a run with `only` keeps: each must still have the
    configuration, seeds, folds, epochs and preprocessing it was scored with, since a run repeats bit for bit from
    those alone; anything else fails, naming the configuration to train again."""
    path = project_path(params["REPORTS"]) / "ablation.json"
    stored = json.loads(path.read_text()) if path.exists() else {"configs": {}}
    kept = {}
    for name in params["CONFIGS"]:
        if name in only:
            continue
        entry = stored["configs"].get(name)
        same = entry is not None and all(stored.get(k) == v for k, v in (
            ("folds", params["FOLDS"]), ("epochs", params["EPOCHS"]), ("seeds", params["SEEDS"]),
            ("preprocess", params.get("PREPROCESS") or {}))) and entry["config"] == params["CONFIGS"][name]
        if not same:
            raise ValueError(f"{path} has no scores of configuration {name} as the parameters define it; add it to "
                             "--only (or run without --only to train and score every configuration)")
        kept[name] = entry
    return kept


def score_all(params: dict[str, Any], only: list[str] | None = None) -> dict[str, Any]:
    """Each configuration's figures per seed (pooled over the folds) and over the seeds; writes `ablation.json`.
    With `only`, just those are scored and every other configuration keeps its stored scores (`stored_scores`)."""
    from ecg_utils.evaluate.protocols import score_folds

    runs = project_path(params["RUNS"])
    kept = stored_scores(params, only) if only else {}
    out: dict[str, Any] = {"folds": params["FOLDS"], "epochs": params["EPOCHS"], "seeds": params["SEEDS"],
                           "preprocess": params.get("PREPROCESS") or {}, "configs": {}}
    for name, config in params["CONFIGS"].items():
        if name in kept:
            out["configs"][name] = kept[name]
            continue
        ds, data = _load(config_dataset(params, name))
        per_seed = []
        for seed in params["SEEDS"]:
            pred, figures = score_folds(runs, ds, data, seed_name(name, seed), params["FOLDS"])
            per_seed.append({**figures, "by_rhythm": calls_by_rhythm(pred, ds)})
        out["configs"][name] = {"config": config, "params": per_seed[0]["params"], "over_seeds": over_seeds(per_seed),
                                "per_seed": per_seed}
    write_json(project_path(params["REPORTS"]) / "ablation.json", out)
    return out


def parse_args(module: str, doc: str, params: str, argv: list[str] | None,
               only: bool = False) -> argparse.Namespace:
    """The command line of a fold study (`ecg_utils.evaluate.<module>`): its parameters file and the progress bar
    (and, with `only`, the configurations to train and score)."""
    parser = argparse.ArgumentParser(prog=f"python -m ecg_utils.evaluate.{module}", description=doc.split("\n")[0])
    parser.add_argument("--params", default=params, help=f"parameters file (default {params})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if only:
        parser.add_argument("--only", nargs="+", metavar="CONFIG",
                            help="train and score only these configurations; the others keep their stored scores")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args("ablation", __doc__, PARAMS, argv, only=True)
    try:
        params = read_params(project_path(args.params))
        unknown = sorted(set(args.only or ()) - set(params["CONFIGS"]))
        if unknown:
            raise ValueError(f"--only {', '.join(unknown)}: no such configuration in {args.params} "
                             f"({', '.join(params['CONFIGS'])})")
        train_all(params, progress=not args.no_progress, only=args.only)
        out = score_all(params, only=args.only)
    except (OSError, ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, c in out["configs"].items():
        s = c["over_seeds"]["classes"]["S"]["f1"]
        print(f"{name}: S F1 {s['mean']:.3f} ± {s['sd']:.3f} over {len(out['seeds'])} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
