"""Ship the published model: `python -m ecg_utils.model.publish` (the last step of `make reproduce`).

Exports the inter-patient CNN–LSTM of the full run (the ensemble of its cross-validation fold models) to ONNX inside the package
(`ecg_utils/resources/model.onnx`), checks it against PyTorch, and writes its fingerprint and the
published test figures (from `reports/metrics.json`) twice: `reports/published_model.json`, the record
of the run, and `ecg_utils/resources/model.json`, which travels with the package; then the model card.
A test holds the shipped file to the fingerprint in reports/, so the two can never drift apart.
`--upgrade` brings the shipped file to this ecg_utils' form (graph version, `adapter` metadata) without its checkpoint,
weights unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ecg_utils.atomic import atomic_open, write_json
from ecg_utils.data.aami import CLASSES
from ecg_utils.model.batchnorm import Adaptation
from ecg_utils.model.checkpoint import read_checkpoint
from ecg_utils.model.export import export_onnx, max_difference, read_metadata, upgrade_onnx
from ecg_utils.model.shipped import MODEL_CARD, MODEL_INFO, MODEL_PATH, sha256
from ecg_utils.paths import PROJ_ROOT, REPORTS_DIR, RUNS_DIR
from ecg_utils.signal.preprocess import PreprocessConfig

PROTOCOL, MODEL = "inter_patient", "cnn_lstm"
MAX_DIFF = 1e-4  # probabilities and encodings, ONNX Runtime against the model as trained


def _figures(m: dict[str, Any]) -> dict[str, Any]:
    return {"n_beats": m["n_beats"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            **{f"{c}_{k}": m["classes"][c][k] for c in CLASSES for k in ("se", "ppv")}}


def fingerprint(onnx_path: Path, checkpoint: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """What identifies the shipped model and what it scored: hashes, source runs, test figures and their spread."""
    meta = read_metadata(onnx_path)
    ckpt = read_checkpoint(checkpoint)
    members = ckpt.train_config.get("members", [ckpt.train_config])
    figures = metrics[PROTOCOL][MODEL]
    return {
        "file": onnx_path.name, "sha256": sha256(onnx_path), "bytes": onnx_path.stat().st_size,
        "checkpoint_sha256": sha256(checkpoint), "model": ckpt.model_params.get("model", meta["model"]),
        "members": len(members), "protocol": meta["protocol"], "classes": meta["classes"], "fs": meta["fs"],
        "window": meta["window"], "context": meta["context"], "leads": meta["preprocess_config"]["leads"],
        "rr_features": meta["rr_features"], "running_rr": _running_rr(meta["preprocess_config"]),
        "parameters": ckpt.n_params, "epochs": members[0]["epochs"], "seeds": [m["seed"] for m in members],
        "val_macro_f1": ckpt.val_macro_f1, "train_records": ckpt.records("train"),
        "test_records": ckpt.records("test"), "test_figures": _figures(figures),
        "test_spread": _spread(figures["spread"]) if "spread" in figures else None,
        "ecg_utils_version": meta["ecg_utils_version"], "graph": meta["graph"],
    }


def _spread(s: dict[str, Any]) -> dict[str, Any]:
    return {"trainings": s["trainings"], "accuracy": s["accuracy"], "macro_f1": s["macro_f1"],
            **{f"{c}_{k}": s["classes"][c][k] for c in CLASSES for k in ("se", "ppv")}}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _spread_cell(s: dict[str, Any] | None) -> str:
    if s is None or s["mean"] is None:
        return "–"
    return f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}" if s["sd"] is not None else f"{100 * s['mean']:.1f}"


def _running_rr(preprocess: dict[str, Any]) -> str:
    """The patient's running rhythm the model reads, in words."""
    config = PreprocessConfig.from_dict(preprocess)
    stat = config.mean_rr_stat if config.running_quantile in (None, 0.5) else f"{config.mean_rr_stat[1:]}th percentile"
    return f"{stat} of the last {config.mean_rr_beats}"


def _rr_text(names: list[str], running: str) -> str:
    """What the model's RR features are, in words."""
    text = f"four RR intervals (previous, next, the causal local mean and the running {running})"
    if "sinus_rr" in names:
        text += (" and the rhythm around the beat (the underlying cycle, a high quantile of the recent intervals, and "
                 "the irregularity of the recent intervals)")
    return text


def _whole_record_text(info: dict[str, Any]) -> str:
    """The model card's paragraph on whole-record mode, with its DS2 figures (empty for a model without it)."""
    w = info.get("whole_record")
    if not w:
        return ""
    f, sp = w["test_figures"], w["test_spread"]
    rows = "\n".join(f"| {c} | {_pct(f[f'{c}_se'])} | {_pct(f[f'{c}_ppv'])} | {_spread_cell(sp and sp[f'{c}_se'])} | "
                      f"{_spread_cell(sp and sp[f'{c}_ppv'])} |" for c in info["classes"])
    return f"""
**Whole-record mode** (`predict` on a file and the service, by default; `--no-adapt` / `adapt=false` turn it off; the
stream never uses it). Before classifying a record, the model's batch norms take {w['weight']:g} of their statistics
from that record's own beats ({w['label']}; up to {w['max_beats']:,} evenly spaced beats), reading no label. The
setting was chosen on the DS1 folds alone (`make adaptation`). On DS2, each record adapted to on its own: accuracy
{_pct(f['accuracy'])} % (members {_spread_cell(sp and sp['accuracy'])} %), macro F1 {f['macro_f1']:.3f}.

| class | Se (%) | +P (%) | members' Se, mean ± sd | members' +P, mean ± sd |
| --- | ---: | ---: | ---: | ---: |
{rows}
"""


def model_card(info: dict[str, Any]) -> str:
    """The model card, every figure from `info`."""
    f, sp = info["test_figures"], info["test_spread"]
    rows = "\n".join(f"| {c} | {_pct(f[f'{c}_se'])} | {_pct(f[f'{c}_ppv'])} | {_spread_cell(sp and sp[f'{c}_se'])} | "
                     f"{_spread_cell(sp and sp[f'{c}_ppv'])} |" for c in info["classes"])
    return f"""# Model card: {info['model']} ({info['protocol'].replace('_', '-')}), ensemble of {info['members']}

Written by `python -m ecg_utils.model.publish` from the runs of the last `make reproduce`; do not edit by hand.

**What it is.** A beat-sequence CNN–LSTM heartbeat classifier: {info['members']} models ({info['parameters']:,}
parameters in all) averaged in probability. Each gives every beat one of the five AAMI EC57 classes (N normal, S
supraventricular ectopic, V ventricular ectopic, F fusion, Q unknown), mapped from the MIT-BIH symbols as de Chazal
et al. (2004) do: N = N, L, R, e, j; S = A, a, J, S; V = V, E; F = F; Q = /, f, Q. A CNN encodes each beat (a
{info['window']}-sample window of one ECG lead at {info['fs']:g} Hz, 0.25 s before to 0.45 s after the R peak,
band-passed 0.5–40 Hz) beside the running median template of the patient's last beats, in units of that template,
with {_rr_text(info.get('rr_features', []), info.get('running_rr', 'mean'))}; an LSTM reads the encodings of this beat
and the {info['context'] - 1} before it. Nothing later than the next R peak is used, and nothing depends on the
recording's gain. Input lead by name, in order of preference: {', '.join(info['leads'])}. Other sampling rates are
resampled to {info['fs']:g} Hz.

**Training data and protocol.** MIT-BIH Arrhythmia Database 1.0.0 (PhysioNet), inter-patient protocol of de Chazal
et al. 2004: the {len(info['train_records'])} DS1 records in {info['members']} patient-wise cross-validation folds;
each member trained {info['epochs']} epochs on the other folds (seeds {', '.join(map(str, info['seeds']))}), its
epoch chosen on its own fold (mean validation macro F1 {info['val_macro_f1']:.3f}). Tested once on the
{len(info['test_records'])} DS2 records, patients no member saw. Paced records are left out.

**Figures on DS2** ({f['n_beats']:,} beats at the reference beat positions): accuracy {_pct(f['accuracy'])} %
(members {_spread_cell(sp and sp['accuracy'])} %), macro F1 {f['macro_f1']:.3f}.

| class | Se (%) | +P (%) | members' Se, mean ± sd | members' +P, mean ± sd |
| --- | ---: | ---: | ---: | ---: |
{rows}
{_whole_record_text(info)}
The members are {info['members']} trainings, each on all DS1 folds but one with its own seed (any two share most of their
training patients): their spread shows how much one training's figures move.
A new training lands elsewhere within that spread: with two CPU threads training repeats bit for bit only within
one process, and another CPU differs further.

**Intended use.** Research: reproducing and comparing beat classifiers, exploring recordings, teaching. It is
**not a medical device**, has not been validated for diagnosis, and must not guide the care of a patient.

**Limits.** Trained on 22 patients of one database (Boston, 1975–79, ambulatory recordings at 360 Hz); other
hospitals, devices, leads and patient groups may score far lower. S beats are found mostly by how early they come
against the patient's running RR (the {info.get('running_rr', 'mean')} intervals): where ectopic beats are most of
those beats for minutes (long atrial bigeminy, runs of atrial tachycardia; DS2's record 232) they no longer look early
and most are called N. F beats are rarely recognised, Q (paced and
unclassifiable) beats hardly at all; noise and artefacts can be called arrhythmias; the R-peak detector misses or
adds beats in noisy stretches. `predict`, the streaming classifier and the service apply a signal-quality gate
(`quality_gate.json` beside this file, calibrated on DS1 records with noise added) that reports beats in noise, on
a flat line or in clipping as Q: it reduces false calls in noise but does not remove them (docs/realtime-noise.md, "Noise").

**File.** `{info['file']}`, {info['bytes']:,} bytes, SHA-256 `{info['sha256']}` (ONNX, dynamic batch; the
preprocessing configuration travels in its metadata). Exported from a PyTorch checkpoint with SHA-256
`{info['checkpoint_sha256']}`{_upgraded_text(info)}.
"""


def _upgraded_text(info: dict[str, Any]) -> str:
    """Where the shipped graph was moved to a newer graph version from an earlier export, the same weights."""
    if not info.get("upgraded_from"):
        return ""
    return (f"; brought to this ecg_utils' form (graph version {info['graph']}, with the `adapter` metadata that lets "
            f"ONNX Runtime alone adapt it to a record) from the export with SHA-256 `{info['upgraded_from']}`, weights "
            "unchanged (`python -m ecg_utils.model.publish --upgrade`)")


def whole_record(reports: Path) -> tuple[Adaptation, dict[str, Any]] | None:
    """The whole-record setting notebook 03 scored on DS2 (`adapted.json`: chosen on the DS1 folds) and its figures,
    which the export carries as its default; None where there is no such report (the model is then used as
    trained)."""
    path = reports / "adapted.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    m = report["method"]
    figures = report["inter_patient_adapted"][MODEL]
    return Adaptation(m["layers"], m["weight"], m["max_beats"]), {
        "method": m["name"], "label": m["label"], "layers": m["layers"], "weight": m["weight"],
        "max_beats": m["max_beats"], "test_figures": _figures(figures),
        "test_spread": _spread(figures["spread"]) if "spread" in figures else None}


def publish(run_dir: Path, reports: Path, model_path: Path = MODEL_PATH) -> dict[str, Any]:
    """Export, check, fingerprint and describe the published model; returns the fingerprint."""
    checkpoint = run_dir / "best.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}: run notebook 02 (`make reproduce`) first")
    metrics = json.loads((reports / "metrics.json").read_text())
    adapted = whole_record(reports)
    export_onnx(checkpoint, model_path, adapted[0] if adapted else None)
    diff = max(max_difference(checkpoint, model_path, n) for n in (1, 256))
    if diff > MAX_DIFF:
        raise RuntimeError(f"ONNX export differs from PyTorch by {diff:.1e} (limit {MAX_DIFF})")
    info = fingerprint(model_path, checkpoint, metrics) | {"whole_record": adapted[1] if adapted else None}
    _write_record(info, reports, model_path)
    return info


def _write_record(info: dict[str, Any], reports: Path, model_path: Path) -> None:
    """The fingerprint in reports/ and beside the shipped file, and the model card."""
    write_json(reports / "published_model.json", info)
    write_json(model_path.with_name(MODEL_INFO.name), info)
    with atomic_open(model_path.with_name(MODEL_CARD.name), "w") as handle:
        handle.write(model_card(info))


def upgrade(reports: Path, model_path: Path = MODEL_PATH) -> dict[str, Any]:
    """Move the shipped model to this ecg_utils' graph version with its weights unchanged (`export.upgrade_onnx`), and
    its fingerprint and card with it: the run, the checkpoint and every published figure stay the published run's."""
    info = json.loads((reports / "published_model.json").read_text())
    if sha256(model_path) != info["sha256"]:
        raise RuntimeError(f"{model_path} is not the published model of {reports / 'published_model.json'}; "
                           "ship it again with `python -m ecg_utils.model.publish`")
    upgrade_onnx(model_path, model_path)
    meta = read_metadata(model_path)
    info |= {"sha256": sha256(model_path), "bytes": model_path.stat().st_size, "graph": meta["graph"],
             "ecg_utils_version": meta["ecg_utils_version"], "upgraded_from": info["sha256"]}
    _write_record(info, reports, model_path)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("--run", type=Path, default=RUNS_DIR / f"{PROTOCOL}_{MODEL}", help="run folder with best.pt")
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR)
    parser.add_argument("--upgrade", action="store_true",
                        help="move the shipped model to this version's graph, weights unchanged (no checkpoint needed)")
    args = parser.parse_args(argv)
    try:
        info = upgrade(args.reports) if args.upgrade else publish(args.run, args.reports)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"published {MODEL_PATH.relative_to(PROJ_ROOT)} ({info['bytes'] / 1e3:.0f} kB, sha256 {info['sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
