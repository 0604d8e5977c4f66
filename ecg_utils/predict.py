"""Classify every beat of any record: `python -m ecg_utils.predict RECORD --out beats.csv [--model M]`.

RECORD is a WFDB record (path without extension, or its `.hea`), an EDF/EDF+ file or a CSV file (with
`--fs`). Beats come from the R-peak detector (the default) or the record's reference annotations
(`--beats atr`). Without `--model` the published model shipped with the package is used. The signal-quality
gate reports beats in noise, on a flat line or in clipping as unreadable (class Q); `--no-gate` scores but
gates nothing. The pipeline itself is `ecg_utils.classify`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecg_utils.atomic import atomic_open
from ecg_utils.classify import classify_record
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError, LeadError
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH
from ecg_utils.signal.quality import PUBLISHED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("record", help="WFDB record path without extension (e.g. data/raw/mitdb/208), .edf or .csv")
    parser.add_argument("--model", help="best.pt checkpoint or .onnx export (default: the published model)")
    parser.add_argument("--out", required=True, type=Path, help="CSV file: one row per beat")
    parser.add_argument("--beats", choices=["detect", "atr"], default="detect",
                        help="beat positions: R-peak detector (default) or the record's .atr annotations")
    parser.add_argument("--lead", help="lead name (default: the model's preference, MLII first; a one-lead record "
                                       "uses its lead)")
    parser.add_argument("--fs", type=float, help="sampling rate in Hz (CSV files only)")
    parser.add_argument("--no-gate", action="store_true", help="classify every beat, even in noise, flat line or "
                                                               "clipping (their quality is still reported)")
    args = parser.parse_args(argv)
    try:
        classifier = load_classifier(args.model or MODEL_PATH)
        result = classify_record(args.record, classifier, args.beats, args.lead, fs=args.fs,
                                 gate=None if args.no_gate else PUBLISHED)
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
    if result.n_nan or result.n_edge:
        print(f"  skipped {result.n_nan} beats whose window touches NaN samples and {result.n_edge} at the record edges")
    print("  " + "  ".join(f"{c} {counts.get(c, 0)}" for c in CLASSES))
    gated = result.summary()["unreadable"]
    if any(gated.values()) or result.flat_s:
        print(f"  unreadable (reported as Q): {gated['noise']} in noise, {gated['flat']} on a flat line, "
              f"{gated['clipped']} in clipping; {result.flat_s:.1f} s of flat line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
