"""Write README's results tables from reports/, so no published figure is typed by hand.

`python -m ecg_utils.report` rewrites the parts of README.md between the results markers (from
reports/metrics.json) and between the real-time markers (from reports/detection.csv and
reports/detected_vs_reference.json, notebook 04) and between the noise markers (from
reports/noise_stress.json, notebook 05); `--check` only reports whether README is current (the
tests use it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .aami import CLASSES
from .atomic import atomic_open
from .paths import PROJ_ROOT, REPORTS_DIR
from .robustness import detection_by_snr

START, END = "<!-- results:start -->", "<!-- results:end -->"
RT_START, RT_END = "<!-- realtime:start -->", "<!-- realtime:end -->"
NOISE_START, NOISE_END = "<!-- noise:start -->", "<!-- noise:end -->"
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


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def noise_markdown(stress: dict[str, Any]) -> str:
    """The noise stress test of the detector and the classifier in noise with and without the gate (notebook 05)."""
    det = pd.DataFrame(stress["detection"])
    by_snr = detection_by_snr(det)
    measured = det.groupby("snr_db").measured_snr_db.mean()
    lines = [(f"R-peak detection on the noise stress test ({', '.join(sorted(set(det.record)))}, lead MLII, "
             "electrode-motion noise; EC57 counting), this repo's detector beside wfdb's `xqrs_detect` run on the "
             "same signals:"), "",
             ("| SNR (dB, record name) | SNR on MLII (dB, measured) | this repo Se | this repo +P | xqrs Se | xqrs +P "
             "| at least xqrs's Se and +P |"), "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for snr in by_snr.index:
        se = [by_snr.loc[snr, ("se", d)] for d in ("this repo", "wfdb xqrs")]
        ppv = [by_snr.loc[snr, ("ppv", d)] for d in ("this repo", "wfdb xqrs")]
        ok = "yes" if se[0] >= se[1] and ppv[0] >= ppv[1] else "no"
        name = "clean" if snr == float("inf") else f"{snr:g}"
        m = "–" if snr == float("inf") else f"{measured[snr]:.1f}"
        lines.append(f"| {name} | {m} | {se[0]:.2f} | {ppv[0]:.2f} | {se[1]:.2f} | {ppv[1]:.2f} | {ok} |")
    seconds = det.groupby("detector").seconds.mean()
    lines += ["", f"Time per 30-minute record: this repo {seconds['this repo']:.2f} s, xqrs {seconds['wfdb xqrs']:.2f} s.",
              "", (f"The published inter-patient model on {len(stress['records'])} DS2 records (unseen patients) with "
              "noise mixed in as the database was made, detected beats, gate off (the model's class) and on "
              "(unreadable beats reported as Q). False calls per hour count every S or V call that is not an S or V "
              "beat, false detections included, in the noisy and the clean stretches apart; readable is the share of "
              "matched beats the gate lets through:"), "",
              ("| path | noise | SNR (dB) | gate | readable % | accuracy | S Se | S +P | V Se | V +P | false S/h noisy "
              "| false V/h noisy | false V/h clean |"),
              "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for f in stress["figures"]:
        snr = "clean" if f["snr_db"] == float("inf") or f["noise"] == "none" else f"{f['snr_db']:g}"
        lines.append(f"| {f['path']} | {f['noise']} | {snr} | {f['gate']} | {_num(f['readable'])} | "
                     f"{_num(f['accuracy'])} | {_num(f['S_se'])} | {_num(f['S_ppv'])} | {_num(f['V_se'])} | "
                     f"{_num(f['V_ppv'])} | {_num(f['false_S_per_h_noisy'], 0)} | {_num(f['false_V_per_h_noisy'], 0)} | "
                     f"{_num(f['false_V_per_h_clean'], 0)} |")
    t, gate = stress.get("target") or {}, stress["gate"]
    lines += ["", (f"Gate: local SNR below **{gate['min_snr_db']} dB** (median of {gate['beats']} beats, "
              f"{gate['band_hz'][0]:g}–{gate['band_hz'][1]:g} Hz), flat line ≥ {gate['flat_s']:g} s, clipping ≥ "
              f"{1000 * gate['clip_s']:g} ms; calibrated on DS1 only.")]
    if t:
        fv, vs = t["false_V_per_h_noisy"], t["V_se_clean_stretches"]
        lines.append(f"Targets at {t['snr_db']:g} dB {t['noise']} ({t['path']}): false V calls per hour in the noisy "
                     f"stretches {fv['off']:,.0f} → {fv['on']:,.0f}, at least halved: **{'met' if t['halved'] else 'not met'}**; "
                     f"V Se on the clean stretches {vs['off']:.2f} → {vs['on']:.2f} % (drop {t['clean_V_se_drop']:.2f} "
                     f"points), at most 1 point: **{'met' if t['clean_V_se_drop_within_1'] else 'not met'}**.")
    return "\n".join(lines)


def _replace(readme: str, start: str, end: str, body: str) -> str:
    if start not in readme or end not in readme:
        raise ValueError(f"README.md lacks the markers {start} and {end}")
    before, rest = readme.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{body}\n{end}{after}"


def render(readme: str, metrics: dict[str, Any], realtime: str | None = None, noise: str | None = None) -> str:
    """README with the results part from `metrics`, and the real-time and noise parts replaced if given."""
    body = results_markdown(metrics)
    complete = ("cnn_lstm" in metrics.get("intra_patient", {})
                and {"cnn_lstm", "all_N"} <= set(metrics.get("inter_patient", {})))
    if complete:
        body += "\n\n" + targets_markdown(metrics)
    readme = _replace(readme, START, END, body)
    readme = readme if realtime is None else _replace(readme, RT_START, RT_END, realtime)
    return readme if noise is None else _replace(readme, NOISE_START, NOISE_END, noise)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR, help="folder with metrics.json, detection.csv, "
                        "detected_vs_reference.json, noise_stress.json")
    parser.add_argument("--readme", type=Path, default=PROJ_ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args(argv)
    metrics = json.loads((args.reports / "metrics.json").read_text())
    realtime = None
    if (args.reports / "detection.csv").is_file() and (args.reports / "detected_vs_reference.json").is_file():
        realtime = realtime_markdown(pd.read_csv(args.reports / "detection.csv", dtype={"record": str}),
                                     json.loads((args.reports / "detected_vs_reference.json").read_text()))
    noise = None
    if (args.reports / "noise_stress.json").is_file():
        noise = noise_markdown(json.loads((args.reports / "noise_stress.json").read_text()))
    old = args.readme.read_text()
    new = render(old, metrics, realtime, noise)
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
