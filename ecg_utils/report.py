"""Write README's results tables from reports/metrics.json, so no published figure is typed by hand.

`python -m ecg_utils.report` rewrites the part of README.md between the results markers;
`--check` only reports whether README is current (the tests use it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .aami import CLASSES
from .paths import PROJ_ROOT, REPORTS_DIR

START, END = "<!-- results:start -->", "<!-- results:end -->"
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


def render(readme: str, metrics: dict[str, Any]) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    body = results_markdown(metrics)
    complete = ("cnn_lstm" in metrics.get("intra_patient", {})
                and {"cnn_lstm", "all_N"} <= set(metrics.get("inter_patient", {})))
    if complete:
        body += "\n\n" + targets_markdown(metrics)
    return f"{before}{START}\n{body}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=REPORTS_DIR / "metrics.json")
    parser.add_argument("--readme", type=Path, default=PROJ_ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    old = args.readme.read_text()
    new = render(old, metrics)
    if args.check:
        if new != old:
            print(f"{args.readme} is out of date with {args.metrics}; run `python -m ecg_utils.report`", file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new)
    print(f"README results written from {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
