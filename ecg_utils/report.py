"""Write README's results tables from reports/, so no published figure is typed by hand.

`python -m ecg_utils.report` rewrites the parts of README.md between the results markers (from
reports/metrics.json) and between the real-time markers (from reports/detection.csv and
reports/detected_vs_reference.json, notebook 04); `--check` only reports whether README is
current (the tests use it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .aami import CLASSES
from .atomic import atomic_open
from .paths import PROJ_ROOT, REPORTS_DIR

START, END = "<!-- results:start -->", "<!-- results:end -->"
RT_START, RT_END = "<!-- realtime:start -->", "<!-- realtime:end -->"
MODEL_NAMES = {"cnn_lstm": "CNN–LSTM", "gru": "CNN–GRU", "cnn": "CNN", "all_N": "all-N baseline"}
PROTOCOL_NAMES = {"intra_patient": "intra-patient (random beats)", "inter_patient": "inter-patient (DS1 → DS2)"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def results_markdown(metrics: dict[str, dict[str, Any]]) -> str:
    """The results section: overall figures for both protocols, then Se / +P per class."""
    protocols = [p for p in PROTOCOL_NAMES if p in metrics]
    models = [m for m in MODEL_NAMES if any(m in metrics[p] for p in protocols)]
    head = "| model | parameters | " + " | ".join(f"{PROTOCOL_NAMES[p]}: accuracy | macro F1" for p in protocols) + " |"
    lines = [head, "| --- | ---: | " + " | ".join("---: | ---:" for _ in protocols) + " |"]
    for m in models:
        params = next((metrics[p][m].get("params") for p in protocols if m in metrics[p]), None)
        cells = [f"{_pct(metrics[p][m]['accuracy'])} | {metrics[p][m]['macro_f1']:.3f}" if m in metrics[p] else "– | –"
                 for p in protocols]
        lines.append(f"| {MODEL_NAMES[m]} | {f'{params:,}' if params else '–'} | " + " | ".join(cells) + " |")
    lines += ["", "Sensitivity (Se) and positive predictivity (+P) per AAMI class, % of test beats:", ""]
    lines.append("| protocol | model | " + " | ".join(f"{c} Se | {c} +P" for c in CLASSES) + " |")
    lines.append("| --- | --- | " + " | ".join("---: | ---:" for _ in CLASSES) + " |")
    for p in protocols:
        for m in models:
            if m in metrics[p]:
                cls = metrics[p][m]["classes"]
                cells = " | ".join(f"{_pct(cls[c]['se'])} | {_pct(cls[c]['ppv'])}" for c in CLASSES)
                lines.append(f"| {PROTOCOL_NAMES[p]} | {MODEL_NAMES[m]} | {cells} |")
    supports = {p: next(iter(metrics[p].values()))["classes"] for p in protocols}
    lines += ["", "Test beats per class: " + "; ".join(
        f"{PROTOCOL_NAMES[p]}: " + ", ".join(f"{c} {supports[p][c]['support']:,}" for c in CLASSES) for p in protocols) + "."]
    return "\n".join(lines)


def _meets(value: float | None, target: float) -> str:
    return "–" if value is None else f"{'yes' if value >= target else 'no'} ({_pct(value)})"


def targets_markdown(metrics: dict[str, dict[str, Any]], model: str = "cnn_lstm") -> str:
    """The project's targets for the CNN–LSTM, each with the figure reached and whether it is met."""
    intra, inter = metrics["intra_patient"][model], metrics["inter_patient"][model]
    base = metrics["inter_patient"]["all_N"]["accuracy"]
    s, v = inter["classes"]["S"], inter["classes"]["V"]
    rows = [
        ("intra-patient accuracy ≥ 99.0 %", _meets(intra["accuracy"], 0.99)),
        ("intra-patient macro F1 ≥ 0.90", f"{'yes' if intra['macro_f1'] >= 0.9 else 'no'} ({intra['macro_f1']:.3f})"),
        (f"inter-patient accuracy above the all-N baseline ({_pct(base)})", _meets(inter["accuracy"], base + 1e-12)),
        ("inter-patient S Se ≥ 70 %", _meets(s["se"], 0.70)),
        ("inter-patient S +P ≥ 50 %", _meets(s["ppv"], 0.50)),
        ("inter-patient V Se ≥ 90 %", _meets(v["se"], 0.90)),
        ("inter-patient V +P ≥ 90 %", _meets(v["ppv"], 0.90)),
    ]
    return "\n".join([f"| target ({MODEL_NAMES[model]}) | reached (%) |", "| --- | --- |",
                      *[f"| {t} | {r} |" for t, r in rows]])


def realtime_markdown(detection: pd.DataFrame, sources: dict[str, Any]) -> str:
    """R-peak detection over the records of `detection`, and the DS2 figures per beat source (notebook 04)."""
    t = detection[["tp", "fn", "fp"]].sum()
    se, ppv = t.tp / (t.tp + t.fn), t.tp / (t.tp + t.fp)
    met = "met" if min(se, ppv) >= 0.995 else "not met"
    lines = [(f"R-peak detection, {len(detection)} records (EC57 counting: 150 ms match window, first 5 minutes as "
             f"learning period, ventricular flutter left out): **Se {100 * se:.2f} %, +P {100 * ppv:.2f} %** "
             f"(TP {t.tp:,}, FN {t.fn:,}, FP {t.fp:,}); target 99.5 % each: {met}."), "",
             f"Inter-patient CNN–LSTM on {len(sources['records'])} DS2 records, by where the beats come from:", "",
             "| beats | scored | unmatched detections | accuracy | macro F1 | "
             + " | ".join(f"{c} Se | {c} +P" for c in CLASSES) + " |",
             "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in CLASSES) + " |"]
    labels = {"reference positions": "reference positions (as in the results above)",
              "detected beats": "detected in the whole record",
              "streamed": f"streamed in {sources['chunk_s']:g} s chunks"}
    for key, label in labels.items():
        f = sources[key]
        cells = " | ".join(f"{_pct(f['classes'][c]['se'])} | {_pct(f['classes'][c]['ppv'])}" for c in CLASSES)
        lines.append(f"| {label} | {f['n_beats']:,} | {sources['unmatched_detections'][key]:,} | "
                     f"{_pct(f['accuracy'])} | {f['macro_f1']:.3f} | {cells} |")
    lat = sources["stream_latency_s"]
    lines += ["", (f"Streamed beats reach their class {lat['p50']:.2f} s after the R peak (median; 99th percentile "
                  f"{lat['p99']:.2f} s).")]
    return "\n".join(lines)


def _replace(readme: str, start: str, end: str, body: str) -> str:
    if start not in readme or end not in readme:
        raise ValueError(f"README.md lacks the markers {start} and {end}")
    before, rest = readme.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{body}\n{end}{after}"


def render(readme: str, metrics: dict[str, Any], realtime: str | None = None) -> str:
    """README with the results part from `metrics`, and the real-time part replaced by `realtime` if given."""
    body = results_markdown(metrics)
    complete = ("cnn_lstm" in metrics.get("intra_patient", {})
                and {"cnn_lstm", "all_N"} <= set(metrics.get("inter_patient", {})))
    if complete:
        body += "\n\n" + targets_markdown(metrics)
    readme = _replace(readme, START, END, body)
    return readme if realtime is None else _replace(readme, RT_START, RT_END, realtime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR, help="folder with metrics.json, detection.csv, "
                        "detected_vs_reference.json")
    parser.add_argument("--readme", type=Path, default=PROJ_ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args(argv)
    metrics = json.loads((args.reports / "metrics.json").read_text())
    realtime = None
    if (args.reports / "detection.csv").is_file() and (args.reports / "detected_vs_reference.json").is_file():
        realtime = realtime_markdown(pd.read_csv(args.reports / "detection.csv", dtype={"record": str}),
                                     json.loads((args.reports / "detected_vs_reference.json").read_text()))
    old = args.readme.read_text()
    new = render(old, metrics, realtime)
    if args.check:
        if new != old:
            print(f"{args.readme} is out of date with {args.reports}; run `python -m ecg_utils.report`", file=sys.stderr)
            return 1
        return 0
    if new != old:
        with atomic_open(args.readme, "w") as handle:
            handle.write(new)
    print(f"README results written from {args.reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
