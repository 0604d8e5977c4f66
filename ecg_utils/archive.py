"""Classify a whole archive: many records, one beats CSV each and one `summary.csv`, on this machine's cores or
on an existing Dask cluster.

Each record is one task (`classify_one`): it reads the record, classifies it with `classify.classify_record` and
writes `<out_dir>/<name>.csv` (the columns of a single `predict`) and a sidecar `<name>.csv.json` that holds the
model's SHA-256, the options and the record's summary row, both atomically. A re-run skips a record whose CSV and
sidecar exist for the same model file and options (`--force` redoes it), so a killed run resumes where it stopped
and never leaves half a file. A record that cannot be read or classified gets `status=error` and its reason in the
summary; the others go on.

Engines: `workers=1` runs in this process; `workers=N` runs the records in N processes
(`concurrent.futures`, spawned so no state is shared); `scheduler="tcp://host:8786"` submits the same tasks to
a Dask `distributed` cluster. The model's bytes travel once per worker, in a worker plugin (`cluster.ModelPlugin`) that
loads it when the worker starts (or joins later); the records are read by the workers from paths they share. The
tasks then depend on nothing, so Dask's scheduler queues them and hands each worker the next record as it frees up
(at most one waiting on each worker), much as a process pool does.
"""

from __future__ import annotations

import glob
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ecg_utils.atomic import atomic_open, write_json
from ecg_utils.classify import classify_record
from ecg_utils.data.aami import CLASSES
from ecg_utils.data.readers import detect_format
from ecg_utils.errors import DataError, LeadError
from ecg_utils.model.inference import load_once
from ecg_utils.model.shipped import sha256
from ecg_utils.signal.quality import PUBLISHED

SUMMARY_COLUMNS = ["record", "path", "format", "lead", "fs", "duration_s", "beats", *CLASSES, "heart_rate_bpm",
                   "unreadable_pct", "adapted", "seconds", "status", "error"]
RECORD_SUFFIXES = (".hea", ".edf")


@dataclass(frozen=True)
class Options:
    """What decides a record's output besides the model: a record is redone when any of these changes."""

    beats: str = "detect"
    lead: str | None = None
    fs: float | None = None
    gate: bool = True
    adapt: bool = True  # whole-record mode: the model adapted to each record's own beats (if it carries a setting)


@dataclass(frozen=True)
class Job:
    name: str  # the output's name under out_dir (may hold '/', for records in subfolders)
    path: str  # the record as `open_record` takes it


def _records_in(folder: Path, with_csv: bool, skip: Path | None) -> list[Path]:
    """The records under `folder` (WFDB headers and EDF files, CSV files too where a rate is given), sorted."""
    suffixes = RECORD_SUFFIXES + ((".csv",) if with_csv else ())
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes]
    if skip is not None:  # never read this run's own outputs back as records
        found = [p for p in found if skip.resolve() not in p.resolve().parents]
    return sorted(found)


def _record_path(path: Path) -> str:
    return str(path.with_suffix("")) if path.suffix.lower() == ".hea" else str(path)


def _job(path: Path) -> Job:
    """A record named by a path or a glob match: its output is named after the file, without a record suffix."""
    name = path.with_suffix("").name if path.suffix.lower() in (*RECORD_SUFFIXES, ".csv") else path.name
    return Job(name, _record_path(path))


def expand_inputs(inputs: Sequence[str], with_csv: bool = False, out_dir: Path | None = None) -> list[Job]:
    """The records that folders, globs and paths name, each once, in the order given (a folder's sorted)."""
    jobs: list[Job] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            jobs += [Job(str(p.relative_to(path).with_suffix("")), _record_path(p))
                     for p in _records_in(path, with_csv, out_dir)]
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"{item}: no file matches this pattern")
            jobs += [_job(p) for p in matches if p.is_file()]
        else:
            jobs.append(_job(path))
    unique = list(dict.fromkeys(jobs))
    names = [j.name for j in unique]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise DataError(f"several records would write the same output ({', '.join(clashes)}): classify them into "
                        "separate --out-dir folders, or pass their folder so that their subfolders keep them apart")
    if not unique:
        raise DataError(f"no records in {', '.join(inputs)}: expected WFDB headers (.hea), EDF files (.edf) or, "
                        "with --fs, CSV files")
    return unique


def _out(out_dir: Path, job: Job) -> tuple[Path, Path]:
    csv = out_dir / f"{job.name}.csv"
    return csv, csv.with_name(csv.name + ".json")


def _resumable(out_dir: Path, job: Job, sha: str, options: Options) -> dict[str, Any] | None:
    """The stored summary row of a record already classified by this model with these options, else None."""
    csv, sidecar = _out(out_dir, job)
    if not (csv.is_file() and sidecar.is_file()):
        return None
    try:
        stored = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("model_sha256") != sha or stored.get("options") != asdict(options):
        return None
    row = stored.get("row") or {}
    return row if row.get("status") == "ok" else None


def classify_one(job: Job, out_dir: str, model: str | bytes | None, sha: str, suffix: str, options: Options,
                 force: bool = False, threads: int | None = None) -> dict[str, Any]:
    """One record to its beats CSV and summary row; never raises for the record's sake (the row says why)."""
    out = Path(out_dir)
    if not force and (row := _resumable(out, job, sha, options)) is not None:
        return {**row, "status": "skipped"}
    start = time.perf_counter()
    row: dict[str, Any] = {c: None for c in SUMMARY_COLUMNS} | {"record": job.name, "path": job.path}
    try:
        row["format"] = detect_format(job.path)
        classifier = load_once(model, sha, suffix, threads)
        result = classify_record(job.path, classifier, options.beats, options.lead, fs=options.fs,
                                 progress=False, gate=PUBLISHED if options.gate else None, adapt=options.adapt)
        csv, sidecar = _out(out, job)
        csv.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(csv, "w") as handle:
            result.beats.to_csv(handle, index=False)
        summary, beats = result.summary(), result.beats
        row |= {"lead": result.lead, "fs": result.fs, "duration_s": summary["duration_s"], "beats": len(beats),
                **summary["counts"], "heart_rate_bpm": summary["heart_rate_bpm"],
                "unreadable_pct": round(100 * float((beats["unreadable"] != "").mean()), 3) if len(beats) else 0.0,
                "adapted": result.adaptation is not None,
                "seconds": round(time.perf_counter() - start, 3), "status": "ok", "error": ""}
        write_json(sidecar, {"model_sha256": sha, "options": asdict(options), "row": row})
    except LeadError as exc:
        row |= {"status": "error", "error": f"{exc}; pass --lead with one of them"}
    except Exception as exc:  # noqa: BLE001 - one damaged record must not stop an archive; the summary says why
        row |= {"status": "error", "error": str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"}
    if row["status"] == "error":
        row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _local(jobs: list[Job], call: dict[str, Any], workers: int) -> Iterator[dict[str, Any]]:
    if workers == 1:
        for job in jobs:
            yield classify_one(job, **call)
        return
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked model or threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        for future in as_completed([pool.submit(classify_one, job, **call) for job in jobs]):
            yield future.result()


def _dask(jobs: list[Job], call: dict[str, Any], scheduler: str) -> Iterator[dict[str, Any]]:
    from dask.distributed import Client  # only where a cluster is used
    from dask.distributed import as_completed as dask_completed

    from ecg_utils.cluster import ModelPlugin

    with Client(scheduler) as client:
        print(f"Dask cluster {scheduler}: {len(client.scheduler_info()['workers'])} workers, dashboard "
              f"{client.dashboard_link}")
        client.register_plugin(ModelPlugin(call.pop("model"), call["sha"], call["suffix"], call["threads"]))
        futures = [client.submit(classify_one, job, model=None, pure=False, **call) for job in jobs]
        for future in dask_completed(futures):
            yield future.result()


def classify_archive(inputs: Sequence[str] | Iterable[str], out_dir: str | Path, model_path: str | Path,
                     options: Options = Options(), workers: int = 1, scheduler: str | None = None,
                     force: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Classify every record that `inputs` name into `out_dir`; writes `out_dir/summary.csv` and returns its rows
    (in the order of the records)."""
    out = Path(out_dir)
    jobs = expand_inputs(list(inputs), with_csv=options.fs is not None, out_dir=out)
    model_path = Path(model_path)
    if not model_path.is_file():
        raise DataError(f"no model at {model_path}: pass a checkpoint (best.pt) or an ONNX export")
    if workers < 1:
        raise DataError(f"--workers {workers}: give at least 1")
    sha = sha256(model_path)
    threads = 1 if scheduler or workers > 1 else None  # one core per task where tasks run side by side
    call = {"out_dir": str(out), "model": model_path.read_bytes() if scheduler else str(model_path), "sha": sha,
            "suffix": model_path.suffix, "options": options, "force": force, "threads": threads}
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    runs = _dask(jobs, call, scheduler) if scheduler else _local(jobs, call, min(workers, len(jobs)))
    with tqdm(total=len(jobs), desc="records", unit="record", disable=not progress) as bar:
        for row in runs:
            rows[row["record"]] = row
            bar.update()
            bar.set_postfix(errors=sum(r["status"] == "error" for r in rows.values()))
    ordered = [rows[j.name] for j in jobs]
    with atomic_open(out / "summary.csv", "w") as handle:
        table = pd.DataFrame(ordered, columns=SUMMARY_COLUMNS)
        table = table.astype({c: "Int64" for c in ("beats", *CLASSES)})  # counts stay integers beside failed rows
        table.to_csv(handle, index=False)
    return ordered


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
