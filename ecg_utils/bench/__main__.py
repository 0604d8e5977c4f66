"""`python -m ecg_utils.bench`: every benchmark, or one part (`--only`)."""

from __future__ import annotations

import argparse

from ecg_utils.bench.data import print_data
from ecg_utils.bench.detector import print_detector
from ecg_utils.bench.inference import print_inference
from ecg_utils.bench.long_record import print_long_record
from ecg_utils.bench.models import print_models
from ecg_utils.bench.scale import print_scale


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the project's benchmark figures.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is printed")
    parser.add_argument("--only", choices=["data", "models", "detector", "inference", "long", "service", "scale"],
                        help="run one part only")
    args = parser.parse_args()
    if args.only in (None, "data"):
        print_data(args.repeat)
    if args.only in (None, "models"):
        print_models()
    if args.only in (None, "detector"):
        print_detector()
    if args.only in (None, "inference"):
        print_inference()
    if args.only in (None, "long"):
        print_long_record()
    if args.only in (None, "service"):
        from ecg_utils.serve.loadtest import print_service

        print_service()
    if args.only in (None, "scale"):
        print_scale()


if __name__ == "__main__":
    main()
