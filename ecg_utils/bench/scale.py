"""Scale out: the 48 MIT-BIH records through `predict --out-dir` on 1 and 2 local workers and on a Dask LocalCluster
of 2, and a DS1-fold training on 1 and 2 processes under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from ecg_utils.archive import default_workers
from ecg_utils.atomic import write_json
from ecg_utils.data.mitdb import RECORDS, resolve_mitdb_dir
from ecg_utils.evaluate.report import SCALE_FIGURES, scale_figure
from ecg_utils.paths import DEFAULT_DATASET, PROJ_ROOT, REPORTS_DIR, project_path

TRAIN_PARAMS = PROJ_ROOT / "params" / "02-train.yaml"
SCALE_REPORT = "bench_scale.json"  # the figures of the last `bench --only scale`, for README's scale table


def _archive_seconds(out: Path, workers: int = 1, scheduler: str | None = None) -> float:
    from ecg_utils.archive import classify_archive
    from ecg_utils.model.shipped import MODEL_PATH

    root = resolve_mitdb_dir()
    t0 = time.perf_counter()
    rows = classify_archive([str(root / r) for r in RECORDS], out, MODEL_PATH, workers=workers, scheduler=scheduler,
                            progress=False)
    seconds = time.perf_counter() - t0
    failed = [r["record"] for r in rows if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"the archive benchmark failed on {', '.join(failed)}")
    return seconds


def bench_archive(rounds: int = 2) -> dict[str, float]:
    """Seconds for the 48 records on 1 and 2 local worker processes and on a LocalCluster of 2, each from an empty
    output folder, the fastest of `rounds` rounds that run the three one after the other (so that a spell of a
    slower machine falls on all three, not on one); and whether all of them wrote the same bytes."""
    from dask.distributed import LocalCluster

    runs: dict[str, list[float]] = {"1 worker": [], "2 workers": [], "Dask LocalCluster, 2 workers": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            runs["1 worker"].append(_archive_seconds(Path(tmp, f"one{k}"), workers=1))
            runs["2 workers"].append(_archive_seconds(Path(tmp, f"two{k}"), workers=2))
            environ = dict(os.environ)
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address="127.0.0.1:0") as cluster:
                runs["Dask LocalCluster, 2 workers"].append(
                    _archive_seconds(Path(tmp, f"dask{k}"), scheduler=cluster.scheduler_address))
            os.environ.clear()  # the nanny sets its pre-spawn variables in this process too: the next round's
            os.environ.update(environ)  # local workers must start as they did in the first
        same = all(Path(tmp, "one0", f"{r}.csv").read_bytes() == Path(tmp, other, f"{r}.csv").read_bytes()
                   for k in range(rounds) for other in (f"one{k}", f"two{k}", f"dask{k}") for r in RECORDS)
    return {**{name: min(times) for name, times in runs.items()}, "identical": float(same)}


def _epoch_beats(fold: int) -> int:
    """Beats one epoch of the fold's training draws (every process of a run together draws as many)."""
    import numpy as np

    from ecg_utils.data.aami import to_index
    from ecg_utils.data.splits import make_split
    from ecg_utils.model.training import TrainConfig, epoch_chunks
    from ecg_utils.signal.context import record_starts
    from ecg_utils.signal.dataset import load_dataset

    params = yaml.safe_load(TRAIN_PARAMS.read_text())
    config = TrainConfig.from_dict(params["CONFIGS"]["cnn_lstm"])
    ds = load_dataset(project_path(params["DATASET"]))
    split = make_split("inter_patient", ds.label, ds.record, folds=params["FOLDS"], fold=fold)
    chunks = epoch_chunks(to_index(ds.label), record_starts(ds.record), split.train, config.chunk, config.normal_keep,
                          np.random.default_rng(0))
    return int(sum(len(c) for c in chunks))


def _train(processes: int, folder: Path, fold: int, epochs: int | None = None) -> Path:
    """Notebook 02's CNN–LSTM training of DS1 fold `fold` (`epochs`: fewer than its own), one thread per process,
    on `processes` processes (torchrun beyond one), into `folder`; returns the run folder."""
    params = yaml.safe_load(TRAIN_PARAMS.read_text())
    config = {**params["CONFIGS"]["cnn_lstm"], "threads": 1}
    run_params = {**params, "CONFIGS": {"cnn_lstm": config}, "EPOCHS": epochs or params["EPOCHS"],
                  "DATASET": str(project_path(params["DATASET"])), "RUNS": str(folder / "runs")}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(run_params))
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    done = subprocess.run([*(launch if processes > 1 else [sys.executable]), "-m", "ecg_utils.model.training",
                           "--params", str(path), "--config", "cnn_lstm", "--fold", str(fold)],
                          capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode:
        raise RuntimeError(f"training on {processes} process(es) failed: {done.stderr[-2000:]}")
    return folder / "runs" / f"inter_patient_cnn_lstm_fold{fold}"


def _train_seconds(processes: int, folder: Path, fold: int, epochs: int) -> tuple[float, float]:
    """Fastest epoch of a short fold training: its training steps alone, and the whole epoch (wall clock, rank 0's
    validation included)."""
    history = pd.read_csv(_train(processes, folder, fold, epochs) / "history.csv")
    return float(history["train_seconds"].min()), float(history["seconds"].min())


def bench_training(fold: int = 0, epochs: int = 2, rounds: int = 3) -> dict[str, float]:
    """Training beats per second of the published configuration on DS1 fold `fold`: one process of one thread, and
    two processes of one thread each under torchrun; the training steps alone (what more processes share), and the
    whole epoch with rank 0's validation. The fastest of `rounds` rounds that run one process and then two, so that a
    slower spell of the machine falls on both, not on one (the ratio moved by 0.1 between runs minutes apart)."""
    beats = _epoch_beats(fold)
    out: dict[str, float] = {"epoch beats": beats}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            for n in (1, 2):
                steps, epoch = _train_seconds(n, Path(tmp, f"{n}-{k}"), fold, epochs)
                name = f"{n} process{'es' if n > 1 else ''}"
                out[name] = max(out.get(name, 0.0), beats / steps)
                out[f"{name}, with validation"] = max(out.get(f"{name}, with validation", 0.0), beats / epoch)
    return out


def fold_figures(processes: int = 2, fold: int = 0) -> dict[str, dict]:
    """The published CNN–LSTM configuration trained in full on DS1 fold `fold` under torchrun and scored on its
    held-out fold, beside the published (one-process) model of that fold and the folds' spread
    (reports/cross_validation.json)."""
    import json

    from ecg_utils.evaluate.protocols import evaluate_checkpoint, summarize
    from ecg_utils.model.sources import SequenceData
    from ecg_utils.signal.dataset import load_dataset

    params = yaml.safe_load(TRAIN_PARAMS.read_text())
    reports = project_path(params["REPORTS"])
    cv = json.loads((reports / "cross_validation.json").read_text())["configs"]["cnn_lstm"]
    published = pd.read_csv(reports / "predictions" / "cross_validation_cnn_lstm.csv.gz", dtype={"record": str})
    published = published[published.record.isin(cv["fold_records"][fold])]
    ds = load_dataset(project_path(params["DATASET"]))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = _train(processes, Path(tmp), fold)
        seconds = time.perf_counter() - t0
        _, figures, _ = evaluate_checkpoint(run / "best.pt", ds, SequenceData.from_dataset(ds), part="val")
    return {"torchrun": {**figures, "seconds": seconds},
            "published": summarize(published.true.to_numpy(), published.pred.to_numpy()), "spread": cv["spread"]}


def print_scale() -> None:
    if not project_path(DEFAULT_DATASET).is_file():
        raise SystemExit(f"no beat dataset at {DEFAULT_DATASET}: run `make data` and notebook 01 first")
    archive = bench_archive()
    base = len(RECORDS) / archive["1 worker"]
    print(f"an archive: the {len(RECORDS)} MIT-BIH records (30 min each) through predict --out-dir, published model, "
          "fastest of 2 rounds of the three:")
    for label in ("1 worker", "2 workers", "Dask LocalCluster, 2 workers"):
        rate = len(RECORDS) / archive[label]
        print(f"  {label:30s} {archive[label]:6.1f} s  {rate:5.2f} records/s  {rate / base:4.2f} x one worker")
    dask_vs_local = archive["2 workers"] / archive["Dask LocalCluster, 2 workers"]
    print(f"  outputs identical byte for byte: {'yes' if archive['identical'] else 'NO'}")
    print("  target: 2 workers >= 1.7 x one worker; the LocalCluster within 15 % of local processes "
          f"(it runs at {dask_vs_local:.2f} x their speed)")
    train = bench_training()
    one, two = train["1 process"], train["2 processes"]
    print(f"training (cnn_lstm, DS1 fold 0, {train['epoch beats']:,.0f} beats an epoch, fastest epoch of 3 rounds of "
          "2 epochs on 1 and then 2 processes, one thread per process):")
    one_v, two_v = train["1 process, with validation"], train["2 processes, with validation"]
    print(f"  1 process                      {one:8,.0f} beats/s  (whole epoch, with validation: {one_v:,.0f})")
    print(f"  2 processes (torchrun, gloo)   {two:8,.0f} beats/s  {two / one:4.2f} x  (whole epoch: {two_v:,.0f}, "
          f"{two_v / one_v:4.2f} x)")
    print("  target: 2 processes >= 1.5 x one single-threaded process (the training steps)")
    figures = fold_figures()
    print(f"a full training of DS1 fold 0 on 2 processes ({figures['torchrun']['seconds'] / 60:.1f} min), scored on "
          "its held-out fold, beside the published fold-0 model (one process) and the five folds' mean ± sd:")
    for name, key in SCALE_FIGURES:
        ddp, one, sd = (scale_figure(figures[k], name, key) for k in ("torchrun", "published", "spread"))
        inside = abs(ddp - one) <= sd["sd"]
        print(f"  {name:9s} 2 processes {100 * ddp:5.1f}   published {100 * one:5.1f}   folds {100 * sd['mean']:5.1f} "
              f"± {100 * sd['sd']:4.1f}   {'within' if inside else 'OUTSIDE'} one fold sd of the published model")
    print("  target: a 2-process training's fold figures within the published spread")
    path = REPORTS_DIR / SCALE_REPORT
    write_json(path, {"cores": default_workers(), "records": len(RECORDS), "archive": archive, "training": train,
                      "fold": figures})
    print(f"written to {path} (README's scale table: python -m ecg_utils.evaluate.report)")
