"""Classify every beat of any record: `python -m ecg_utils.predict RECORD --out beats.csv [--model M]`.

RECORD is a WFDB record (path without extension, or its `.hea`), an EDF/EDF+ file or a CSV file (with
`--fs`). Beats come from the R-peak detector (the default) or the record's reference annotations
(`--beats atr`). Without `--model` the published model shipped with the package is used. The signal-quality
gate reports beats in noise, on a flat line or in clipping as unreadable (class Q); `--no-gate` scores but
gates nothing. A model that carries an adaptation setting (one where a method passed on its DS1 folds) first adapts
its batch norms to the record's own beats, reading no label (whole-record mode); `--no-adapt` uses it as trained, as
the stream does. The terminal says which mode classified each record.
The pipeline itself is `ecg_utils.classify`.

A whole archive: `python -m ecg_utils.predict FOLDER|GLOB|RECORD... --out-dir DIR [--workers N | --scheduler
tcp://HOST:8786] [--force]` writes one beats CSV per record and `DIR/summary.csv`, resumes a killed run, and exits
with 1 when any record failed (its reason is in the summary). See `ecg_utils.archive`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecg_utils.archive import Options, classify_archive, default_workers
from ecg_utils.atomic import atomic_open
from ecg_utils.classify import classify_record, mode_text
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError, LeadError
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH
from ecg_utils.signal.quality import PUBLISHED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("record", nargs="+", help="WFDB record path without extension (e.g. data/raw/mitdb/208), "
                                                  ".edf or .csv; with --out-dir also folders and globs")
    parser.add_argument("--model", help="best.pt checkpoint or .onnx export (default: the published model)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, help="CSV file: one row per beat (one record)")
    out.add_argument("--out-dir", type=Path, help="folder: one beats CSV per record and summary.csv (many records)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="with --out-dir: records classified side by side in this many processes (default: the "
                             "machine's cores)")
    parser.add_argument("--scheduler", help="with --out-dir: the address of a Dask distributed scheduler "
                                            "(tcp://HOST:8786) to run the records on instead")
    parser.add_argument("--force", action="store_true", help="with --out-dir: redo records already classified")
    parser.add_argument("--beats", choices=["detect", "atr"], default="detect",
                        help="beat positions: R-peak detector (default) or the record's .atr annotations")
    parser.add_argument("--lead", help="lead name (default: the model's preference, MLII first; a one-lead record "
                                       "uses its lead)")
    parser.add_argument("--fs", type=float, help="sampling rate in Hz (CSV files only)")
    parser.add_argument("--no-gate", action="store_true", help="classify every beat, even in noise, flat line or "
                                                               "clipping (their quality is still reported)")
    parser.add_argument("--no-adapt", action="store_true",
                        help="use the model as trained, as the stream does; by default a model that carries an "
                             "adaptation setting (exported with one where a method passed on its DS1 folds) adapts its "
                             "batch norms to the record's own beats first (no label is read)")
    args = parser.parse_args(argv)
    if args.out_dir is not None:
        return _archive(args)
    if len(args.record) > 1:
        parser.error(f"{len(args.record)} records given: pass --out-dir DIR to classify several")
    args.record = args.record[0]
    try:
        classifier = load_classifier(args.model or MODEL_PATH)
        result = classify_record(args.record, classifier, args.beats, args.lead, fs=args.fs,
                                 gate=None if args.no_gate else PUBLISHED, adapt=not args.no_adapt)
    except LeadError as exc:
        print(f"error: {exc}; pass --lead with one of them", file=sys.stderr)
        return 1
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with atomic_open(args.out, "w") as handle:
        result.beats.to_csv(handle, index=False)
    counts = result.beats.pred.value_counts()
    print(f"{args.record}: lead {result.lead}, {result.fs:g} Hz, {result.n_found} beats found ({args.beats}), "
          f"{len(result.beats)} classified ({classifier.backend}) -> {args.out}")
    print(f"  {mode_text(result.adaptation)}")
    if result.gaps:
        shown = ", ".join(f"{a:g} s (+{d:g} s)" for a, d in result.gaps[:5]) + (", ..." if len(result.gaps) > 5 else "")
        print(f"  {len(result.gaps)} gaps in the recording (EDF+D), each stretch classified on its own: {shown}")
    for at, length, why in result.unclassified:
        print(f"  the {length:g} s stretch at {at:g} s was not classified: {why}")
    if result.n_nan or result.n_edge:
        print(f"  skipped {result.n_nan} beats whose window touches NaN samples and {result.n_edge} at the record edges")
    print("  " + "  ".join(f"{c} {counts.get(c, 0)}" for c in CLASSES))
    gated = result.summary()["unreadable"]
    if any(gated.values()) or result.flat_s:
        print(f"  unreadable (reported as Q): {gated['noise']} in noise, {gated['flat']} on a flat line, "
              f"{gated['clipped']} in clipping; {result.flat_s:.1f} s of flat line")
    return 0


def _archive(args: argparse.Namespace) -> int:
    """Many records into `--out-dir`: one line for the whole run, the failures named, exit 1 if any."""
    try:
        rows = classify_archive(args.record, args.out_dir, args.model or MODEL_PATH,
                                Options(args.beats, args.lead, args.fs, not args.no_gate, not args.no_adapt),
                                workers=args.workers,
                                scheduler=args.scheduler, force=args.force)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    status = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")}
    print(f"{len(rows)} records -> {args.out_dir}/summary.csv: {status['ok']} classified, {status['skipped']} already "
          f"done (same model and options), {status['error']} failed")
    for r in rows:
        if r["status"] == "error":
            print(f"  {r['record']}: {r['error']}", file=sys.stderr)
    return 1 if status["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
