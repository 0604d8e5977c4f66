"""Scoring in noise: false calls per hour, the gate's targets, calibration on DS1, the detector test."""

import math

import numpy as np
import pandas as pd
import pytest

from ecg_utils.data.splits import DS1
from ecg_utils.errors import DataError
from ecg_utils.evaluate.robustness import (
    DESIGN_DETECTORS,
    calibrate_gate,
    design_records,
    detection_by_snr,
    detector_design,
    gate_design,
    gate_design_scores,
    gate_target,
    gate_tradeoff,
    gated,
    noise_figures,
    nst_detection,
)
from ecg_utils.signal.quality import GateConfig


def _beats() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One record, em at 6 dB: 2 h noisy and 2 h clean; the gate turns two noisy false V calls into Q."""
    rows = [  # true, model, pred (gated), unreadable, noisy
        ("N", "V", "Q", "noise", True), ("", "V", "Q", "noise", True), ("", "V", "V", "", True),
        ("V", "V", "V", "", True), ("N", "S", "S", "", True), ("V", "V", "V", "", False),
        ("V", "N", "N", "", False), ("N", "V", "V", "", False), ("N", "N", "N", "", False)]
    beats = pd.DataFrame(rows, columns=["true", "model", "pred", "unreadable", "noisy"]).assign(
        record="100", noise="em", snr_db=6.0, path="offline")
    hours = pd.DataFrame([{"record": "100", "noise": "em", "snr_db": 6.0, "noisy_h": 2.0, "clean_h": 2.0}])
    return beats, hours


def test_false_calls_per_hour_count_false_detections_in_their_stretch():
    figures = noise_figures(*_beats()).set_index("gate")
    off, on = figures.loc["off"], figures.loc["on"]
    assert off.false_V_per_h_noisy == 1.5 and on.false_V_per_h_noisy == 0.5  # 3 then 1 false V in 2 h
    assert off.false_V_per_h_clean == on.false_V_per_h_clean == 0.5
    assert off.false_S_per_h_noisy == 0.5
    assert off.V_se_clean_stretches == 50.0 and off.V_se == pytest.approx(200 / 3)
    assert on.readable == pytest.approx(100 * 6 / 7) and off.readable == 100.0
    assert off.accuracy == pytest.approx(100 * 3 / 7) and on.accuracy == pytest.approx(100 * 3 / 7)


def test_noise_figures_give_ec57_averages_beside_the_gross_ones():
    beats, hours = _beats()
    # a second record: 3 V beats, all found, and 1 S beat called N; record 100 holds no S beat
    more = pd.DataFrame([("V", "V", "V", "", False)] * 3 + [("S", "N", "N", "", False)],
                        columns=["true", "model", "pred", "unreadable", "noisy"]).assign(
        record="101", noise="em", snr_db=6.0, path="offline")
    hours = pd.concat([hours, hours.assign(record="101")])
    off = noise_figures(pd.concat([beats, more]), hours).set_index("gate").loc["off"]
    assert off.V_se == pytest.approx(100 * 5 / 6)  # gross: 5 of 6 V beats
    assert off.V_se_avg == pytest.approx(100 * (2 / 3 + 1) / 2) and off.V_se_avg_records == 2  # 66.7 and 100
    assert off.V_ppv_avg == pytest.approx(100 * (2 / 4 + 1) / 2)  # 100: 2 of its 4 scored V calls
    assert off.S_se == off.S_se_avg == 0.0 and off.S_se_avg_records == 1  # only 101 holds an S beat
    assert off.S_ppv_avg == 0.0 and off.S_ppv_avg_records == 1  # only 100 calls S


def test_gate_target_says_halved_and_clean_drop():
    t = gate_target(noise_figures(*_beats()))
    assert t["halved"] and t["clean_V_se_drop"] == 0.0 and t["clean_V_se_drop_within_1"]
    assert t["false_V_per_h_noisy"] == {"off": 1.5, "on": 0.5}
    assert gate_target(noise_figures(*_beats()), snr=0.0) == {}


def test_calibration_gates_at_most_the_allowed_share_of_clean_beats():
    rng = np.random.default_rng(0)
    clean = pd.DataFrame({"true": np.repeat(list("NSV"), 1000), "quality_db": rng.normal(20, 3, 3000),
                          "noise": "none", "path": "offline", "noisy": False, "model": "N"})
    clean.loc[clean.true == "V", "quality_db"] -= 4  # V beats score lower: they set the threshold
    noisy = pd.DataFrame({"true": "", "quality_db": rng.normal(5, 3, 500), "noise": "em", "path": "offline",
                          "noisy": True, "model": "V"})
    scores = pd.concat([clean, noisy], ignore_index=True)
    gate = calibrate_gate(scores, GateConfig(), max_loss=0.01)
    v = clean.quality_db[clean.true == "V"]
    assert (v < gate.min_snr_db).mean() <= 0.01 and (v < gate.min_snr_db + 0.2).mean() > 0.005
    table = gate_tradeoff(scores, [gate.min_snr_db]).iloc[0]
    assert table["clean_V_gated_%"] <= 1.0 and table["noisy_false_V_removed_%"] > 85
    with pytest.raises(DataError, match="no clean S beats"):
        calibrate_gate(scores[scores.true != "S"], GateConfig())


def test_gate_design_calibrates_each_measure_alike_and_names_the_clean_records_it_gates():
    # A small record "a" (N beats only) and a large one "b", scored by two noise measures. The second scores b's V beats
    # higher (its QRS complexes left out of the noise), so its threshold rises and it removes more false V calls in
    # noise; but 20 of a's 500 N beats score low under it, few enough among all N beats to pass the class budget,
    # enough to gate 4 % of record a, which the first measure spares.
    rng = np.random.default_rng(1)

    def scores(v_score: float, a_low: bool) -> pd.DataFrame:
        true = np.r_[np.repeat("N", 500), np.repeat(list("NSV"), [5000, 500, 500])]
        clean = pd.DataFrame({"record": np.repeat(["a", "b"], [500, 6000]), "true": true,
                              "quality_db": rng.normal(20, 1, 6500), "noise": "none", "snr_db": math.inf,
                              "path": "offline", "noisy": False, "model": "N"})
        clean.loc[clean.true == "V", "quality_db"] += v_score - 20
        if a_low:
            clean.loc[:19, "quality_db"] = 12.0
        noisy = pd.DataFrame({"record": "b", "true": "", "quality_db": np.linspace(5, 18, 400), "noise": "em",
                              "snr_db": 6.0, "path": "offline", "noisy": True, "model": "V"})
        return pd.concat([clean, noisy], ignore_index=True)

    whole, masked = GateConfig(), GateConfig(qrs_s=(0.05, 0.1))
    table = gate_design({"whole": (whole, scores(12.0, False), False), "masked": (masked, scores(18.0, True), False)},
                        0.005)
    assert list(table.gate) == ["whole", "masked"] and list(table.records) == [2, 2]
    assert table.threshold_db[0] < 10 and 14 < table.threshold_db[1] < 16 and table.noisy[0] == "em 6 dB"
    removed = table["noisy_false_V_removed_%"]
    assert removed[0] < 40 and removed[1] > 70
    assert table.records_over[0] == 0 and table.over[0] == ""
    assert table.records_over[1] == 1 and table.over[1] == "a 4.00"
    assert table.qrs_s[1] == [0.05, 0.1]


def test_gate_design_scores_reuse_the_configs_own_scores():
    # The variant that changes nothing takes the scores already computed for the config: nothing is classified again
    # (no classifier, records or databases are given, so scoring anything would fail).
    scores = pd.DataFrame({"quality_db": [12.0]})
    config = GateConfig(min_snr_db=11.4)
    variants = gate_design_scores(None, None, None, [], ["em"], [6.0], config, scores, {"same": ({}, False),
                                                                                          "shape": ({}, True)})
    assert list(variants) == ["same", "shape"] and variants["same"][0] == config and variants["same"][1] is scores
    assert variants["shape"][1] is scores and variants["shape"][2]  # the similarity is in every beat's scores


def _shape_scores() -> pd.DataFrame:
    """Clean records "a" (2,000 beats: N, S and V) and "c" (1,000 N beats, 10 of them of low SNR and dissimilar:
    1 % of the record), and noisy beats (half of them false V calls) of low SNR and low similarity."""
    rng = np.random.default_rng(2)
    clean = pd.DataFrame({"record": np.repeat(["a", "c"], [2000, 1000]),
                          "true": np.r_[np.repeat(list("NSV"), [1400, 300, 300]), np.repeat("N", 1000)],
                          "quality_db": rng.normal(20, 3, 3000), "similarity": rng.normal(99, 0.5, 3000),
                          "noise": "none", "path": "offline", "noisy": False, "model": "N"})
    clean.loc[clean.true == "V", "quality_db"] -= 6  # wide beats: a low SNR, but they repeat their shape
    clean.loc[2000:2009, ["quality_db", "similarity"]] = [2.0, 80.0]
    noisy = pd.DataFrame({"record": "a", "true": "", "quality_db": rng.normal(12, 2, 1000),
                          "similarity": rng.normal(85, 5, 1000), "noise": "em", "path": "offline", "noisy": True,
                          "model": np.tile(["V", "N"], 500)})
    return pd.concat([clean, noisy], ignore_index=True)


def test_shape_calibration_removes_more_within_the_budget_and_spares_the_records_snr_spares():
    scores = _shape_scores()
    alone, both = (calibrate_gate(scores, GateConfig(), max_loss=0.01, shape=s) for s in (False, True))
    assert alone.min_similarity is None and both.min_snr_db >= alone.min_snr_db and both.min_similarity < 99
    tables = [gate_tradeoff(scores, [g.min_snr_db], g.min_similarity).iloc[0] for g in (alone, both)]
    assert tables[1]["noisy_false_V_removed_%"] > tables[0]["noisy_false_V_removed_%"] + 30
    assert all(tables[1][f"clean_{c}_gated_%"] <= 1.0 for c in "NSV")
    clean = scores[(scores.noise == "none") & (scores.record == "a")]
    per_record = 100 * gated(clean, both.min_snr_db, both.min_similarity).mean()
    assert per_record <= 0.2  # record a: SNR alone gates under 0.2 % of it, and so must the pair
    # Record c's 10 dissimilar beats of low SNR are gated by both (SNR alone already gated them: c is not spared).
    assert gated(scores.loc[2000:2009], both.min_snr_db, both.min_similarity).all()


def test_noise_stress_test_counts_both_detectors(mitdb_dir, nstdb_dir):
    table = nst_detection(nstdb_dir, mitdb_dir, ["119"], ["24"], progress=False)
    assert list(table.detector) == ["this repo", "wfdb xqrs"] * 2
    assert math.isinf(table.snr_db[0]) and table.snr_db[2] == 24.0
    assert table.measured_snr_db[2] == pytest.approx(18.0, abs=0.5)  # MLII got twice the nominal noise
    by_snr = detection_by_snr(table)
    assert (by_snr["se"] > 95).all().all() and (by_snr["ppv"] > 95).all().all()
    with pytest.raises(DataError, match="unknown noise stress test"):
        nst_detection(nstdb_dir, mitdb_dir, ["100"], ["24"], progress=False)


def test_detector_design_compares_the_designs_on_ds1_only(mitdb_dir, nstdb_dir):
    table = detector_design(mitdb_dir, nstdb_dir, ["205"], [6.0], ["em", "ma"], progress=False)
    k = len(DESIGN_DETECTORS)
    assert list(table.detector) == list(DESIGN_DETECTORS) * 3 and list(table.noise) == ["none"] * k + ["em"] * k + ["ma"] * k
    assert list(table.snr_db) == [math.inf] * k + [6.0] * 2 * k
    clean, noisy = table[table.noise == "none"], table[table.noise != "none"]
    assert (clean.fp < 5).all() and (noisy.fp > 30).all()  # the noise is in the signal the detector read
    em = noisy[noisy.noise == "em"].set_index("detector").fp
    assert em.nunique() == k  # each design is the detector with its own options
    for outside in ("118", "100"):  # 118 and 119 are the test; DS2 is never looked at
        with pytest.raises(DataError, match="not in the detector's development set"):
            detector_design(mitdb_dir, nstdb_dir, [outside], [6.0], progress=False)
    assert set(design_records()) == set(DS1) - {"118", "119"}


def test_noise_episodes_follow_the_records_own_signal_quality_annotations(mitdb_dir):
    """Record 105's first '~' (sample 30,739, subtype 2) marks its second signal, V1, noisy until the next '~'
    (31,306, subtype 0); MLII stays clean there."""
    from ecg_utils.evaluate.robustness import in_noise_episodes

    samples = np.array([100, 30_749, 31_000, 31_316])
    assert in_noise_episodes(mitdb_dir / "105", "V1", samples).tolist() == [False, True, True, False]
    assert not in_noise_episodes(mitdb_dir / "105", "MLII", samples).any()
    assert not in_noise_episodes(mitdb_dir / "100", "MLII", samples).any()  # 100 has no '~' at all


def test_gate_design_scores_score_each_set_of_measures_once(monkeypatch):
    # Two variants that measure alike (thresholds apart) share one scoring; one that measures otherwise gets its own.
    from ecg_utils.evaluate import robustness

    calls = []

    def fake_scores(classifier, mitdb_dir, nstdb_dir, records, noises, snrs, config, progress):
        calls.append(config)
        return pd.DataFrame({"quality_db": [float(len(calls))]})

    monkeypatch.setattr(robustness, "gate_scores", fake_scores)
    scores = pd.DataFrame({"quality_db": [0.0]})
    config = GateConfig(min_snr_db=13.9, min_similarity=94.6)
    variants = gate_design_scores(None, None, None, [], ["em"], [6.0], config, scores,
                                  {"short": ({"recover_beats": 5}, True), "short, SNR alone": ({"recover_beats": 5}, False),
                                   "away": ({"qrs_s": (0.05, 0.1)}, False), "as it is": ({}, True)})
    assert [c.recover_beats for c in calls] == [5, None] and calls[1].qrs_s == (0.05, 0.1)
    assert variants["short"][1] is variants["short, SNR alone"][1] and variants["as it is"][1] is scores
    assert variants["away"][1].quality_db[0] == 2.0


def test_gate_tradeoff_counts_the_v_beats_gated_between_the_noisy_stretches():
    # A record with noise added: 4 V beats and 4 N beats between its noisy stretches, two of the V beats (just after
    # a stretch) still scored low; the clean record's beats and the noisy stretches' beats do not count.
    between = pd.DataFrame({"true": list("VVVVNNNN"), "quality_db": [5.0, 6.0, 20.0, 21.0, 5.0, 5.0, 20.0, 20.0],
                            "noise": "em", "path": "offline", "noisy": False, "model": "N"})
    inside = pd.DataFrame({"true": "V", "quality_db": [3.0, 25.0], "noise": "em", "path": "offline", "noisy": True,
                           "model": "V"})
    clean = pd.DataFrame({"true": list("NSV"), "quality_db": [4.0, 30.0, 4.0], "noise": "none", "path": "offline",
                          "noisy": False, "model": "N"})
    row = gate_tradeoff(pd.concat([between, inside, clean], ignore_index=True), [10.0]).iloc[0]
    assert row["between_V_gated_%"] == 50.0 and row["clean_V_gated_%"] == 100.0
    assert row["noisy_beats_gated_%"] == 50.0
