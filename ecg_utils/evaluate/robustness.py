"""Noise: the EC57 noise stress test of the detector, the classifier on unseen patients in noise, and the
calibration of the signal-quality gate (notebook 05-robustness).

- `nst_detection`: this repo's R-peak detector and wfdb's `xqrs_detect` on the noise stress test
  database's 12 records (118 and 119 with electrode-motion noise at 24 ... -6 dB) and on the clean
  records, counted as EC57 counts (150 ms match window, first 5 minutes a learning period).
- `detector_design`: the detector beside the designs it was compared with (without its rhythm check, a wider band)
  on DS1 records other than 118 and 119 with noise mixed in, the comparison they were chosen on (118 and 119 stay a
  test).
- `classify_in_noise`: DS2 records with `em`, `ma` or `bw` noise mixed in as the database was made
  (`noise.mix`), classified offline (`predict`, whole-record mode) and as a stream, every beat kept with its reference
  class, its class with and without the gate, and whether it lies in a noisy stretch.
- `noise_figures`: accuracy, S and V Se/+P and false S and V calls per hour in the noisy and in
  the clean stretches, with the gate and without.
- `calibrate_gate`: the gate's thresholds (the SNR, and the QRS-shape similarity with it) from DS1 records only (clean
  and with noise added); `gate_design` the same for each gate design that was tried (`gate_design_scores`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from tqdm.auto import tqdm

from ecg_utils.atomic import write_json
from ecg_utils.classify import classify_source
from ecg_utils.data.aami import CLASSES, PROBA_COLUMNS, beat_mask, to_aami
from ecg_utils.data.readers import ArraySource
from ecg_utils.data.records import MITDB_FIX, Record, read_record
from ecg_utils.errors import DataError
from ecg_utils.evaluate.by_record import average_figures
from ecg_utils.evaluate.protocols import class_figures, confusion
from ecg_utils.evaluate.realtime import events_table, replay
from ecg_utils.model.inference import Classifier
from ecg_utils.signal.detect import QRS_BAND, QRSDetector, detect_r_peaks, ec57_counts, label_detected_beats
from ecg_utils.signal.noise import measured_snr, mix
from ecg_utils.signal.quality import GateConfig

NOISES = ("em", "ma", "bw")  # electrode motion, muscle artefact, baseline wander
#: The noisy versions of 118 and 119 in the database, by their names' SNR part.
NST_SNRS = {"24": 24.0, "18": 18.0, "12": 12.0, "06": 6.0, "00": 0.0, "_6": -6.0}
NST_RECORDS = ("118", "119")
MATCH_S = 0.150
LEAD = "MLII"


def read_noise(nstdb_dir: Path, kind: str) -> tuple[np.ndarray, float]:
    """The first signal (`noise1`) of the noise record `kind` (bw, em or ma) in mV, and its rate."""
    if kind not in NOISES:
        raise DataError(f"unknown noise record {kind!r}; the database has {', '.join(NOISES)}")
    try:
        rec = wfdb.rdrecord(str(nstdb_dir / kind), channels=[0])
    except FileNotFoundError as exc:
        raise DataError(f"no noise record {kind} in {nstdb_dir}: run `make data` or set NSTDB_DIR") from exc
    return np.asarray(rec.p_signal[:, 0], dtype=np.float64), float(rec.fs)


def _normal_beats(sample: np.ndarray, symbol: np.ndarray) -> np.ndarray:
    beats = beat_mask(symbol)
    return sample[beats][to_aami(symbol[beats]) == "N"]


def nst_detection(nstdb_dir: Path, mitdb_dir: Path, records: Sequence[str] = NST_RECORDS,
                  snrs: Sequence[str] = tuple(NST_SNRS), progress: bool = True) -> pd.DataFrame:
    """EC57 counts of both detectors on lead MLII of 118 and 119, clean and at every SNR of the database.

    `snr_db` is the SNR the record's name gives; `measured_snr_db` is that of lead MLII measured
    with `noise.measured_snr` from the clean record (the database's nominal SNR holds for its
    second lead; on MLII the noise is 6 dB stronger, see README).
    """
    from wfdb import processing

    rows = []
    unknown = sorted(set(records) - set(NST_RECORDS)) + sorted(set(snrs) - set(NST_SNRS))
    if unknown:
        raise DataError(f"unknown noise stress test record(s) or SNR name(s) {unknown}: records {NST_RECORDS}, "
                        f"SNRs {tuple(NST_SNRS)}")
    jobs = [(rec, snr) for rec in records for snr in (None, *snrs)]
    for rec, snr in tqdm(jobs, desc="noise stress test", disable=not progress):
        clean = read_record(mitdb_dir / rec, [LEAD], fix=MITDB_FIX)
        record = clean if snr is None else read_record(nstdb_dir / f"{rec}e{snr}", [LEAD],
                                                       fix="re-run `make data` or repair your NSTDB_DIR copy")
        measured = math.inf if snr is None else measured_snr(clean.signal, record.signal,
                                                             _normal_beats(clean.ann_sample, clean.ann_symbol), clean.fs)
        for name in ("this repo", "wfdb xqrs"):
            t0 = time.perf_counter()
            if name == "this repo":
                found = detect_r_peaks(record.signal, record.fs)
            else:
                found = processing.xqrs_detect(record.signal, record.fs, verbose=False)
            seconds = time.perf_counter() - t0
            c = ec57_counts(record.ann_sample, record.ann_symbol, found, record.fs, MATCH_S)
            rows.append({"record": rec, "snr_db": math.inf if snr is None else NST_SNRS[snr],
                         "measured_snr_db": round(measured, 2), "detector": name, **c, "seconds": seconds})
    return pd.DataFrame(rows)


def band_name(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g} Hz"


#: The designs `detector_design` compares (name: `QRSDetector` options): the detector's own, the same without the
#: rhythm check (the detector until 2026-12-07), and a wider band that was tried without it and rejected.
DESIGN_DETECTORS = {f"this repo ({band_name(QRS_BAND)}, rhythm check)": {},
                    "without the rhythm check (until 2026-12-07)": {"rhythm_check": False},
                    "6-18 Hz, no rhythm check (rejected)": {"band": (6.0, 18.0), "rhythm_check": False}}


def design_records() -> list[str]:
    """DS1 without 118 and 119: the noise stress test mixes the same noise into those two records."""
    from ecg_utils.data.splits import DS1

    return [r for r in DS1 if r not in NST_RECORDS]


def detector_design(mitdb_dir: Path, nstdb_dir: Path, records: Sequence[str], snrs: Sequence[float],
                    noises: Sequence[str] = ("em", "ma"), designs: dict[str, dict] = DESIGN_DETECTORS,
                    progress: bool = True) -> pd.DataFrame:
    """EC57 counts of each of the detector `designs` (name: `QRSDetector` options) on lead MLII of `records`
    (`design_records`), clean and with each of `noises` mixed in at each SNR (`with_noise`): the detector's development
    set, on which a change must help in electrode motion and muscle noise alike, so that 118 and 119 stay a test."""
    outside = sorted(set(records) - set(design_records()))
    if outside:
        raise DataError(f"records {outside} are not in the detector's development set: DS1 without "
                        f"{' and '.join(NST_RECORDS)}, whose noisy versions are the noise stress test")
    noise_signals = {kind: read_noise(nstdb_dir, kind) for kind in noises}
    rows = []
    for rec in tqdm(records, desc="detector design (DS1)", disable=not progress):
        clean = read_record(mitdb_dir / rec, [LEAD], fix=MITDB_FIX)
        versions = [("none", math.inf, clean.signal)] + [
            (kind, float(snr), with_noise(clean, noise_signals[kind], snr)[0]) for kind in noises for snr in snrs]
        for kind, snr, x in versions:
            for name, options in designs.items():
                found = np.asarray(QRSDetector(clean.fs, **options).process(x), dtype=np.int64)
                c = ec57_counts(clean.ann_sample, clean.ann_symbol, found, clean.fs, MATCH_S)
                rows.append({"record": rec, "noise": kind, "snr_db": float(snr), "detector": name, **c})
    return pd.DataFrame(rows)


def detection_by_snr(table: pd.DataFrame) -> pd.DataFrame:
    """Se and +P (%) of each detector at each SNR, pooled over 118 and 119."""
    g = table.groupby(["snr_db", "detector"], sort=False)[["tp", "fn", "fp"]].sum()
    out = pd.DataFrame({"se": 100 * g.tp / (g.tp + g.fn), "ppv": 100 * g.tp / (g.tp + g.fp)})
    out = out.unstack("detector")
    return out.sort_index(ascending=False)


def _conditions(noises: Sequence[str], snrs: Sequence[float]) -> list[tuple[str, float]]:
    return [("none", math.inf)] + [(k, float(s)) for k in noises for s in snrs]


def _with_model_class(beats: pd.DataFrame) -> pd.DataFrame:
    """The columns scored in noise, and `model`: the class without the gate (the most probable)."""
    model = np.asarray(CLASSES)[beats[PROBA_COLUMNS].to_numpy().argmax(axis=1)] if len(beats) else []
    return beats[["sample", "pred", "quality_db", "similarity", "unreadable"]].assign(model=model)


def _replay(classifier: Classifier, x: np.ndarray, fs: float, chunk_s: float,
            gate: GateConfig | None) -> pd.DataFrame:
    events = replay(classifier, x, fs, chunk_s, gate)
    beats = events_table(events).assign(quality_db=[e.quality_db for e in events],
                                        similarity=[e.similarity for e in events],
                                        unreadable=[e.unreadable for e in events])
    return _with_model_class(beats)


def _offline(classifier: Classifier, x: np.ndarray, fs: float, name: str, gate: GateConfig | None) -> pd.DataFrame:
    return _with_model_class(classify_source(ArraySource(x, fs, name, LEAD), classifier, progress=False,
                                             gate=gate).beats)


def with_noise(clean: Record, noise: tuple[np.ndarray, float], snr: float) -> tuple[np.ndarray, np.ndarray]:
    """`clean`'s lead with `noise` (signal, rate) mixed in at `snr` dB as the database was made: (signal, noisy mask)."""
    signal, fs = noise
    if not math.isclose(fs, clean.fs):
        raise DataError(f"noise at {fs:g} Hz, record {clean.name} at {clean.fs:g} Hz: resample one of them first")
    return mix(clean.signal, _normal_beats(clean.ann_sample, clean.ann_symbol), signal, clean.fs, snr)


def classify_in_noise(classifier: Classifier, mitdb_dir: Path, nstdb_dir: Path, records: Iterable[str],
                      noises: Sequence[str], snrs: Sequence[float], gate: GateConfig,
                      stream_noises: Sequence[str] = (), chunk_s: float = 1.0,
                      progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every detected beat of `records`, clean and with each noise at each SNR, offline and (for
    `stream_noises`, and then the clean records too) streamed: (beats, hours).

    beats: record, noise, snr_db, path, sample, true ('' for a false detection), pred (gated),
    model (without the gate), quality_db, unreadable, noisy (inside a noisy stretch).
    hours: per record and condition, the hours of noisy and of clean stretches.
    """
    noise = {k: read_noise(nstdb_dir, k) for k in set(noises) | set(stream_noises)}
    tables, hours = [], []
    conditions, records = _conditions(noises, snrs), list(records)
    bar = tqdm(total=len(records) * len(conditions), desc="records in noise", disable=not progress)
    for rec in records:
        clean = read_record(mitdb_dir / rec, [LEAD], fix=MITDB_FIX)  # once, for all its conditions
        for kind, snr in conditions:
            x, mask = ((clean.signal, np.zeros(len(clean.signal), bool)) if kind == "none"
                       else with_noise(clean, noise[kind], snr))
            stream = kind in stream_noises or (kind == "none" and bool(stream_noises))
            for path, t in _classify_version(classifier, clean, x, mask, gate, stream, chunk_s):
                tables.append(t.assign(record=rec, noise=kind, snr_db=snr, path=path))
            hours.append({"record": rec, "noise": kind, "snr_db": snr, "noisy_h": mask.sum() / clean.fs / 3600,
                          "clean_h": (~mask).sum() / clean.fs / 3600})
            bar.update()
    bar.close()
    cols = ["record", "noise", "snr_db", "path", "sample", "true", "pred", "model", "quality_db", "similarity",
            "unreadable", "noisy"]
    return pd.concat(tables, ignore_index=True)[cols], pd.DataFrame(hours)


def _classify_version(classifier: Classifier, clean: Record, x: np.ndarray, mask: np.ndarray, gate: GateConfig,
                      stream: bool, chunk_s: float) -> list[tuple[str, pd.DataFrame]]:
    """One version `x` of the record `clean`, classified offline (and streamed), each beat labelled with the
    reference class within 150 ms and whether it lies in a noisy stretch."""
    beats = beat_mask(clean.ann_symbol)
    ref_sample, ref_label = clean.ann_sample[beats], to_aami(clean.ann_symbol[beats])
    out = []
    for path in ["offline"] + (["stream"] if stream else []):
        t = (_offline(classifier, x, clean.fs, clean.name, gate) if path == "offline"
             else _replay(classifier, x, clean.fs, chunk_s, gate))
        t["true"] = label_detected_beats(t["sample"].to_numpy(), ref_sample, ref_label, round(MATCH_S * clean.fs))
        t["noisy"] = mask[np.clip(t["sample"].to_numpy(), 0, len(mask) - 1)]
        out.append((path, t))
    return out


def _figures(g: pd.DataFrame, column: str, noisy_h: float, clean_h: float) -> dict[str, float | None]:
    scored = g[g.true != ""]
    figs = class_figures(confusion(scored.true.to_numpy(), scored[column].to_numpy()))
    out: dict[str, float | None] = {
        "accuracy": 100 * float((scored.true == scored[column]).mean()) if len(scored) else None,
        "readable": 100 * float((scored.unreadable == "").mean()) if column == "pred" and len(scored) else 100.0}
    average = average_figures(scored.assign(pred=scored[column]))
    for c in ("S", "V"):
        for kind in ("se", "ppv"):
            out[f"{c}_{kind}"] = None if figs[c][kind] is None else 100 * figs[c][kind]
            avg = average[c][kind]
            out[f"{c}_{kind}_avg"] = None if avg is None else 100 * avg
            out[f"{c}_{kind}_avg_records"] = average[c][f"{kind}_records"]
        false = (g[column] == c) & (g.true != c)  # false calls, false detections included
        out[f"false_{c}_per_h_noisy"] = float(false[g.noisy].sum() / noisy_h) if noisy_h else None
        out[f"false_{c}_per_h_clean"] = float(false[~g.noisy].sum() / clean_h) if clean_h else None
    clean_v = scored[(~scored.noisy) & (scored.true == "V")]
    out["V_se_clean_stretches"] = 100 * float((clean_v[column] == "V").mean()) if len(clean_v) else None
    return out


def noise_figures(beats: pd.DataFrame, hours: pd.DataFrame) -> pd.DataFrame:
    """Per path, noise and SNR, with the gate and without: the figures of `_figures` over all records."""
    rows = []
    for (path, kind, snr), g in beats.groupby(["path", "noise", "snr_db"], sort=False):
        h = hours[(hours.noise == kind) & (hours.snr_db == snr) & hours.record.isin(g.record.unique())]
        for gate, column in (("off", "model"), ("on", "pred")):
            rows.append({"path": path, "noise": kind, "snr_db": snr, "gate": gate,
                         **_figures(g, column, float(h.noisy_h.sum()), float(h.clean_h.sum()))})
    return pd.DataFrame(rows)


#: The gate's target for false V calls per hour in the noisy stretches (at 6 dB em).
MAX_FALSE_V_PER_H = 800.0


def gate_target(figures: pd.DataFrame, noise: str = "em", snr: float = 6.0, path: str = "offline") -> dict:
    """The gate's targets at `noise` and `snr` (from `noise_figures`): false V calls per hour in the noisy
    stretches at least halved and at most `MAX_FALSE_V_PER_H`, and V Se on the clean stretches down by at most 1
    point."""
    pick = figures[(figures.path == path) & (figures.noise == noise) & (figures.snr_db == snr)].set_index("gate")
    if not {"on", "off"} <= set(pick.index):
        return {}
    off, on = pick.loc["off"], pick.loc["on"]
    drop = float(off.V_se_clean_stretches - on.V_se_clean_stretches)
    return {"noise": noise, "snr_db": snr, "path": path,
            "false_V_per_h_noisy": {"off": float(off.false_V_per_h_noisy), "on": float(on.false_V_per_h_noisy)},
            "V_se_clean_stretches": {"off": float(off.V_se_clean_stretches), "on": float(on.V_se_clean_stretches)},
            "halved": bool(on.false_V_per_h_noisy <= 0.5 * off.false_V_per_h_noisy),
            "max_false_V_per_h": MAX_FALSE_V_PER_H, "at_most_max": bool(on.false_V_per_h_noisy <= MAX_FALSE_V_PER_H),
            "clean_V_se_drop": drop, "clean_V_se_drop_within_1": bool(drop <= 1.0)}


def in_noise_episodes(path: Path, lead: str, samples: np.ndarray) -> np.ndarray:
    """Which `samples` lie where the record's reference annotations call `lead` noisy or unreadable.

    MIT-BIH marks each change of signal quality with a '~' annotation whose subtype holds one bit per signal for
    "noisy" (1 << k) and one for "unreadable" (16 << k); the state holds until the next '~'."""
    ann = wfdb.rdann(str(path), "atr")
    k = list(wfdb.rdheader(str(path)).sig_name).index(lead)
    change = np.asarray(ann.symbol) == "~"
    starts, states = np.asarray(ann.sample)[change], np.asarray(ann.subtype)[change]
    at = np.searchsorted(starts, samples, side="right") - 1
    state = np.where(at >= 0, states[np.clip(at, 0, None)], 0) if len(starts) else np.zeros(len(samples), int)
    return (state & ((1 << k) | (16 << k))) != 0


def clean_unreadable(classifier: Classifier, mitdb_dir: Path, records: Iterable[str], gate: GateConfig,
                     first_s: float = 30.0, progress: bool = True) -> pd.DataFrame:
    """Per clean record, classified as `predict` does by default (detected beats, the gate `gate`): its reference
    beats, how many of them were called unreadable and their share, how many of the unreadable ones lie in the
    record's first `first_s` seconds, and how many where the database's own annotations call the lead noisy."""
    rows = []
    for name in tqdm(list(records), desc="clean records", disable=not progress):
        rec = read_record(mitdb_dir / name, fix=MITDB_FIX)
        t = _offline(classifier, rec.signal, rec.fs, name, gate)
        keep = beat_mask(rec.ann_symbol)
        true = label_detected_beats(t["sample"].to_numpy(), rec.ann_sample[keep], to_aami(rec.ann_symbol[keep]),
                                    round(MATCH_S * rec.fs))
        matched, gated = true != "", (t["unreadable"] != "").to_numpy()
        early = t["sample"].to_numpy() < first_s * rec.fs
        noisy = in_noise_episodes(mitdb_dir / name, rec.lead, t["sample"].to_numpy())
        rows.append({"record": name, "beats": int(matched.sum()), "unreadable": int((matched & gated).sum()),
                     "unreadable_pct": 100 * float((matched & gated).sum() / max(1, matched.sum())),
                     f"unreadable_first_{first_s:g}_s": int((matched & gated & early).sum()),
                     "unreadable_in_noise_episodes": int((matched & gated & noisy).sum())})
    return pd.DataFrame(rows)


def gate_scores(classifier: Classifier, mitdb_dir: Path, nstdb_dir: Path, records: Iterable[str],
                noises: Sequence[str], snrs: Sequence[float], config: GateConfig,
                progress: bool = True) -> pd.DataFrame:
    """Every detected beat of `records` (DS1), clean and in noise, with its gate score and the model's class."""
    beats, _ = classify_in_noise(classifier, mitdb_dir, nstdb_dir, records, noises, snrs,
                                 replace(config, min_snr_db=None, min_similarity=None), progress=progress)
    return beats


def write_gate(path: Path, gate: GateConfig, calibration: dict) -> None:
    """The calibrated gate as `quality.published_gate` reads it, with how it was calibrated."""
    write_json(path, {"gate": gate.to_dict(), "calibration": calibration})


def calibrate_gate(scores: pd.DataFrame, config: GateConfig, max_loss: float = 0.005, shape: bool = False) -> GateConfig:
    """The gate with its thresholds, from `gate_scores` on DS1 (never DS2).

    SNR alone (`shape` False): the highest threshold that marks at most `max_loss` of the clean records' beats of each
    class N, S and V unreadable. With the QRS-shape similarity (`shape`), a beat is noise where both scores are low: the
    SNR threshold runs from that of SNR alone up in 0.5 dB steps, each with the highest similarity threshold (0.1 %
    steps) that keeps the same class budget and leaves every clean record that SNR alone gates at most
    `MAX_CLEAN_UNREADABLE_PCT` of within it; of those pairs, the one that removes the most false V calls in the noisy
    stretches of `scores`."""
    clean = scores[(scores.noise == "none") & (scores.path == "offline")]
    cuts = []
    for c in ("N", "S", "V"):
        q = clean.quality_db[clean.true == c].dropna().to_numpy()
        if not len(q):
            raise DataError(f"no clean {c} beats to calibrate the gate on; include records with {c} beats")
        cuts.append(float(np.quantile(q, max_loss)))
    alone = replace(config, min_snr_db=math.floor(10 * min(cuts)) / 10, min_similarity=None)
    if not shape:
        return alone
    noisy = scores[(scores.noise != "none") & scores.noisy & (scores.path == "offline")]
    false_v = noisy[(noisy.model == "V") & (noisy.true != "V")]
    matched = clean[clean.true != ""]
    spared = (100 * gated(matched, alone.min_snr_db)).groupby(matched.record).mean() <= MAX_CLEAN_UNREADABLE_PCT
    # Each limit: beats that may be gated, and the beats they are counted among (a class's, or a spared record's).
    groups = [(clean[clean.true == c], max_loss * int(clean.quality_db[clean.true == c].notna().sum()))
              for c in ("N", "S", "V")]
    groups += [(g, MAX_CLEAN_UNREADABLE_PCT / 100 * len(g)) for r, g in matched.groupby("record") if spared[r]]
    best, removed = alone, float(gated(false_v, alone.min_snr_db).mean()) if len(false_v) else 0.0
    for snr in np.round(alone.min_snr_db + np.arange(0.0, 10.01, 0.5), 1):
        ceiling = 100.0
        for g, allowed in groups:
            # Beats below a similarity threshold t are gated; at most `allowed` of them: t up to the next one's score.
            low = np.sort(g.similarity[g.quality_db < snr].dropna().to_numpy())
            if int(allowed) < len(low):
                ceiling = min(ceiling, float(low[int(allowed)]))
        sim = math.floor(10 * ceiling) / 10
        got = float(gated(false_v, snr, sim).mean()) if len(false_v) else 0.0
        if got > removed:
            best, removed = replace(config, min_snr_db=float(snr), min_similarity=sim), got
    return best


#: The gate's target: the most of a clean record's beats it may call unreadable, %.
MAX_CLEAN_UNREADABLE_PCT = 0.2
#: The gate designs `gate_design` compares: the SNR alone, its noise measured over the whole window, QRS complexes
#: included (published until 2026-12-07), or with each QRS complex left out (`GateConfig.qrs_s`: 50 ms before to 100 ms
#: after each R peak); the whole-window SNR with the QRS-shape similarity, each score the median of 15 beats (published
#: until 2026-12-07), and the same with each score the higher of that and the median of the last 5 beats
#: (`GateConfig.recover_beats`; published since): (changes to the config, whether the similarity is calibrated too).
DESIGN_GATES = {"SNR, whole window": ({"recover_beats": None}, False),
                "SNR, away from the QRS (rejected)": ({"qrs_s": (0.05, 0.10), "recover_beats": None}, False),
                "SNR and QRS-shape similarity, medians of 15 beats": ({"recover_beats": None}, True),
                "the same, and of the last 5 beats (published)": ({"recover_beats": 5}, True)}


def gate_design_scores(classifier: Classifier, mitdb_dir: Path, nstdb_dir: Path, records: Iterable[str],
                       noises: Sequence[str], snrs: Sequence[float], config: GateConfig, scores: pd.DataFrame,
                       variants: dict[str, tuple[dict, bool]] = DESIGN_GATES, progress: bool = True
                       ) -> dict[str, tuple[GateConfig, pd.DataFrame, bool]]:
    """Each of `variants` (changes to `config`, and whether the similarity is calibrated too) with its `gate_scores` on
    `records`, for `gate_design`: `scores`, those of `config` itself, already computed, serve the variants that change
    none of its measures (every beat's similarity is in them), and variants that measure alike share their scores."""
    def measures(c: GateConfig) -> GateConfig:
        return replace(c, min_snr_db=None, min_similarity=None)

    out: dict[str, tuple[GateConfig, pd.DataFrame, bool]] = {}
    scored = {measures(config): scores}
    for name, (change, shape) in variants.items():
        variant = GateConfig.from_dict({**config.to_dict(), **change})
        if measures(variant) not in scored:
            scored[measures(variant)] = gate_scores(classifier, mitdb_dir, nstdb_dir, records, noises, snrs, variant,
                                                    progress)
        out[name] = (variant, scored[measures(variant)], shape)
    return out


def gate_design(variants: dict[str, tuple[GateConfig, pd.DataFrame, bool]], max_loss: float) -> pd.DataFrame:
    """Each gate design calibrated on DS1 as the published gate is, and what it removes and costs there.

    `variants`: name → (config, its `gate_scores`, whether the similarity is calibrated too). Per variant: the calibrated
    thresholds, the shares of `gate_tradeoff` at them, and the DS1 records whose clean beats it gates beyond
    `MAX_CLEAN_UNREADABLE_PCT` (counted as `gate_tradeoff` counts, from the scores: a record's first beats, which the gate
    never gates, included). The design that removes the most false V calls at the same budget is not the better gate if
    it gates clean records that another spares.
    """
    rows = []
    for name, (config, scores, shape) in variants.items():
        gate = calibrate_gate(scores, config, max_loss, shape)
        row = gate_tradeoff(scores, [gate.min_snr_db], gate.min_similarity).iloc[0].to_dict()
        clean = scores[(scores.noise == "none") & (scores.path == "offline") & (scores.true != "")]
        pct = (100 * gated(clean, gate.min_snr_db, gate.min_similarity)).groupby(clean.record).mean()
        over = pct[pct > MAX_CLEAN_UNREADABLE_PCT].sort_values(ascending=False)
        noisy = scores[scores.noise != "none"][["noise", "snr_db"]].drop_duplicates()
        rows.append({"gate": name, "qrs_s": list(config.qrs_s), "min_similarity": gate.min_similarity,
                     "noisy": "; ".join(f"{n} {s:g} dB" for n, s in noisy.itertuples(index=False)),
                     **row, "records": int(clean.record.nunique()),
                     "records_over": len(over), "over": "; ".join(f"{r} {v:.2f}" for r, v in over.items())})
    return pd.DataFrame(rows)


def gated(scores: pd.DataFrame, min_snr_db: float, min_similarity: float | None = None) -> pd.Series:
    """Which beats of `scores` a gate with these thresholds calls noise (as `quality.SignalQuality` decides)."""
    low = scores.quality_db < min_snr_db
    return low if min_similarity is None else low & (scores.similarity < min_similarity)


def gate_tradeoff(scores: pd.DataFrame, thresholds: Sequence[float], min_similarity: float | None = None) -> pd.DataFrame:
    """For each SNR threshold (with the similarity threshold, if given): % of clean N, S, V beats gated, % of false V
    calls in noisy stretches removed, % of the noisy stretches' beats gated, and % of the V beats gated in the clean
    stretches of the records with noise added (the gate's lag after a noisy stretch ends costs those)."""
    clean = scores[(scores.noise == "none") & (scores.path == "offline")]
    noisy = scores[(scores.noise != "none") & scores.noisy & (scores.path == "offline")]
    between = scores[(scores.noise != "none") & ~scores.noisy.astype(bool) & (scores.path == "offline")]
    between_v = between[between.true == "V"]
    false_v = noisy[(noisy.model == "V") & (noisy.true != "V")]
    rows = []
    for t in thresholds:
        row = {"threshold_db": t}
        for c in ("N", "S", "V"):
            row[f"clean_{c}_gated_%"] = 100 * float(gated(clean[clean.true == c], t, min_similarity).mean())
        row["noisy_false_V_removed_%"] = 100 * float(gated(false_v, t, min_similarity).mean()) if len(false_v) else None
        row["noisy_beats_gated_%"] = 100 * float(gated(noisy, t, min_similarity).mean()) if len(noisy) else None
        row["between_V_gated_%"] = 100 * float(gated(between_v, t, min_similarity).mean()) if len(between_v) else None
        rows.append(row)
    return pd.DataFrame(rows)
