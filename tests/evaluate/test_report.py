import pytest

from ecg_utils.evaluate.protocols import summarize
from ecg_utils.evaluate.report import (
    markers,
    render,
    render_pages,
    results_markdown,
    s_targets_markdown,
    targets_markdown,
)

START, END = markers("results")


def _metrics():
    import numpy as np

    true = np.array(list("NNNNSSVVFQ"))
    pred = np.array(list("NNNSSNVVNQ"))
    m = {**summarize(true, pred), "params": 1234}
    return {"intra_patient": {"cnn_lstm": m, "all_N": summarize(true, np.full(10, "N"))},
            "inter_patient": {"cnn_lstm": m}}


def test_results_markdown_states_protocols_and_figures():
    text = results_markdown(_metrics())
    assert "intra-patient (random beats): accuracy" in text and "inter-patient (DS1 → DS2): accuracy" in text
    assert "| CNN–LSTM | 1,234 | 70.0 | " in text
    assert "| all-N baseline | – | 40.0 | 0.114 | – | – |" in text  # no inter-patient baseline given
    # F: one beat, missed, never predicted -> Se 0.0 and +P undefined (–)
    assert "| inter-patient (DS1 → DS2) | CNN–LSTM | 75.0 | 60.0 | 50.0 | 50.0 | 100.0 | 100.0 | 0.0 | – |" in text


def test_render_replaces_only_the_marked_part():
    readme = f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\nrest\n"
    body = {"results": results_markdown(_metrics())}
    out = render(readme, body)
    assert out.startswith("# Title\n\nintro\n\n" + START) and out.endswith(END + "\n\nrest\n")
    assert "old table" not in out and render(out, body) == out
    assert render("# no markers", body) == "# no markers"  # another page holds them


def test_each_section_lives_in_exactly_one_page():
    from pathlib import Path

    rt_start, rt_end = markers("realtime")
    pages = {Path("README.md"): f"{START}\nold\n{END}\n", Path("docs/a.md"): f"{rt_start}\nold\n{rt_end}\n"}
    out = render_pages(pages, {"results": "new results", "realtime": "new realtime"})
    assert out[Path("README.md")] == f"{START}\nnew results\n{END}\n"
    assert out[Path("docs/a.md")] == f"{rt_start}\nnew realtime\n{rt_end}\n"
    with pytest.raises(ValueError, match="noise:start.*in no page"):
        render_pages(pages, {"noise": "x"})
    pages[Path("docs/b.md")] = pages[Path("README.md")]
    with pytest.raises(ValueError, match="in 2 pages"):
        render_pages(pages, {"results": "x"})


def test_main_writes_and_checks_every_page(tmp_path):
    import json

    from ecg_utils.evaluate.report import main

    m = _metrics()
    m["inter_patient"]["all_N"] = m["intra_patient"]["all_N"]
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(m))
    (tmp_path / "docs").mkdir()
    h_start, h_end = markers("headline")
    (tmp_path / "README.md").write_text(f"# front\n{h_start}\n{h_end}\n")
    s_start, s_end = markers("targets-s")
    (tmp_path / "docs" / "results.md").write_text(f"# results\n{START}\n{END}\n{s_start}\n{s_end}\n")
    args = ["--reports", str(tmp_path / "reports"), "--root", str(tmp_path)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0 and main([*args, "--check"]) == 0
    assert "| every beat called N, DS1 → DS2 | 40.0 |" in (tmp_path / "README.md").read_text()
    assert "| target (CNN–LSTM)" in (tmp_path / "docs" / "results.md").read_text()
    assert "| DS1-only: S F1 ≥ 0.78 | no (0.500) |" in (tmp_path / "docs" / "results.md").read_text()


def test_targets_table_says_met_or_not():
    import numpy as np

    from ecg_utils.evaluate.protocols import spread

    m = _metrics()
    m["inter_patient"]["all_N"] = m["intra_patient"]["all_N"]
    true = np.array(list("NNNNSSVVFQ"))
    m["inter_patient"]["cnn"] = summarize(true, np.array(list("NNNNNNVVNQ")))
    m["inter_patient"]["cnn_lstm"] = {**m["inter_patient"]["cnn_lstm"],
                                      "spread": spread([m["inter_patient"]["cnn_lstm"], m["inter_patient"]["cnn"]])}
    text = targets_markdown(m)
    assert "| intra-patient accuracy ≥ 99.3 % | no (70.0) |" in text
    assert "| inter-patient accuracy ≥ 96.5 % | no (70.0 (70.0 ± 0.0)) |" in text
    assert "| inter-patient V Se ≥ 93 % | yes (100.0 (100.0 ± 0.0)) |" in text
    assert "| inter-patient S Se ≥ 80 % | no (50.0 (25.0 ± 35.4)) |" in text
    # The CNN never calls S: its S F1 is 0 and the CNN–LSTM's 0.5 beats it; its macro F1 is compared too.
    assert "| inter-patient S F1 above the CNN's | yes (0.500 vs 0.000) |" in text
    assert "inter-patient macro F1 above the CNN's" in text and "GRU" not in text


def test_supraventricular_targets_cover_both_rows_and_the_folds():
    import numpy as np

    true = np.array(list("NNNNSSVVFQ"))
    m = _metrics()
    adapted = {"inter_patient_adapted": {"cnn_lstm": summarize(true, true)}}  # every beat right
    folds = {"configs": {"cnn_lstm": summarize(true, np.array(list("NNNSSSVVNQ")))}}  # S +P 2/3
    text = s_targets_markdown(m, adapted, folds)
    # DS1-only: S Se 50 % and +P 50 % give S F1 0.5; V is all right
    assert "| DS1-only: S F1 ≥ 0.78 | no (0.500) |" in text and "| DS1-only: V F1 ≥ 0.93 | yes (1.000) |" in text
    assert "| DS1-only: S +P ≥ 75 % | no (50.0) |" in text
    assert "| adapted to each test patient: S Se ≥ 85 % | yes (100.0) |" in text
    assert "| adapted to each test patient: accuracy ≥ 97.5 % | yes (100.0) |" in text
    assert "| DS1 folds, pooled: S +P above 50 % | yes (66.7) |" in text
    # Without the adapted report the adapted targets are one unmet row that says why; without the folds' no row.
    bare = s_targets_markdown(m, None, None)
    assert "| adapted to each test patient: accuracy ≥ 97.5 %, S Se and +P ≥ 85 %, V Se and +P ≥ 95 % | no (no " \
        "adapted row: no method passed on the DS1 folds" in bare
    assert "DS1 folds, pooled" not in bare and "DS1-only: accuracy" in bare and "S Se ≥ 85 % | yes" not in bare


def test_results_show_the_spread_beside_inter_patient_figures():
    import numpy as np

    from ecg_utils.evaluate.protocols import spread

    m = _metrics()
    member = summarize(np.array(list("NNNNSSVVFQ")), np.array(list("NNNNNNVVNQ")))
    m["inter_patient"]["cnn_lstm"] = {**m["inter_patient"]["cnn_lstm"], "spread": spread([member, member])}
    text = results_markdown(m)
    assert "| CNN–LSTM | 1,234 (2,468) | 70.0 | 0.633 | 70.0 (70.0 ± 0.0) | 0.633 (0.545 ± 0.000) |" in text
    assert "ensembles of 2 fold models" in text


def test_ablation_markdown():
    import numpy as np
    import pandas as pd

    from ecg_utils.evaluate.protocols import spread
    from ecg_utils.evaluate.report import ablation_markdown

    f = summarize(np.array(list("NNNNSSVVFQ")), np.array(list("NNNSSNVVNQ")))
    cv = {"folds": 2, "configs": {"cnn": {**f, "params": 900, "spread": spread([f, f])}}}
    text = ablation_markdown(cv)
    assert "(2 folds, pooled)" in text
    assert "| per-beat CNN, beat + template | 900 | 70.0 | 0.633 | 0.633 ± 0.000 | 50.0 | 50.0 | 50.0 | 100.0 |" in text

    from ecg_utils.evaluate.by_record import average_figures

    pred = pd.DataFrame({"record": list("aaaaabbbbb"), "true": list("NNNNSSVVFQ"), "pred": list("NNNSSNVVNQ")})
    entry = {**f, "params": 900, "spread": spread([f, f]), "average": average_figures(pred)}
    weaker = {**entry, "macro_f1": 0.5, "classes": {**f["classes"], "V": {**f["classes"]["V"], "ppv": 0.25}}}
    cv = {"folds": 2, "configs": {"cnn_lstm": entry, "gru": entry, "cnn": entry, "cnn_lstm_no_template": weaker}}
    text = ablation_markdown(cv)
    # S: record a finds its one S beat (Se 100) in two S calls (+P 50), b misses its one (Se 0): averages 50 and 50
    assert "| 0.633 ± 0.000 | 50.0 / 50.0 | 50.0 / 50.0 | 50.0 | 100.0 / 100.0 | 100.0 / 100.0 |" in text
    assert 'Without the template ("beat only") V +P is 25.0 % against 100.0 % with it, and pooled macro F1 ' \
        "0.500 against 0.633." in text
    assert "S Se is 50.0 % with the LSTM, 50.0 % with the GRU and 50.0 % without a sequence" in text
    assert "with a fold-to-fold sd of 0.00–0.00." in text


def _sources():
    import numpy as np

    true = np.array(list("NNNNSSVVFQ"))
    f = summarize(true, np.array(list("NNNSSNVVNQ")))
    return {"reference positions": f, "detected beats": f, "streamed": f, "chunk_s": 0.5, "records": ["100", "232"],
            "unmatched_detections": {"reference positions": 0, "detected beats": 3, "streamed": 4},
            "stream_latency_s": {"p50": 1.61, "p99": 2.345}}


def test_realtime_markdown():
    import pandas as pd

    from ecg_utils.evaluate.report import realtime_markdown

    detection = pd.DataFrame({"record": ["100", "101"], "tp": [990, 1000], "fn": [10, 0], "fp": [0, 2]})
    text = realtime_markdown(detection, _sources())
    assert "2 records" in text and "**Se 99.50 %, +P 99.90 %** (TP 1,990, FN 10, FP 2); target 99.5 % each: met" in text
    assert "| streamed in 0.5 s chunks | 10 | 4 | 70.0 | " in text and "on 2 DS2 records" in text
    assert "1.61 s after the R peak (median; 99th percentile 2.35 s)" in text
    detection.loc[0, "fn"] = 11
    assert "target 99.5 % each: not met" in realtime_markdown(detection, _sources())


def test_detector_design_markdown_pools_each_band_by_noise_and_snr():
    import pandas as pd

    from ecg_utils.evaluate.report import detector_design_markdown

    rows = [("101", "none", float("inf"), "this repo", 99, 1, 0), ("101", "none", float("inf"), "wide", 98, 2, 1),
            ("101", "em", 6.0, "this repo", 90, 10, 30), ("101", "em", 6.0, "wide", 80, 20, 20),
            ("106", "em", 6.0, "this repo", 100, 0, 70), ("106", "em", 6.0, "wide", 100, 0, 80)]
    design = pd.DataFrame(rows, columns=["record", "noise", "snr_db", "detector", "tp", "fn", "fp"])
    text = detector_design_markdown(design)
    assert "on the 2 DS1 records" in text and "| noise | SNR (dB) | this repo | wide |" in text
    assert "| none | clean | 99.00 / 100.00 | 98.00 / 98.99 |" in text
    assert "| em | 6 | 95.00 / 65.52 | 90.00 / 64.29 |" in text  # pooled: 190 / 200 and 190 / 290; 180 / 200, 180 / 280


def test_noise_markdown_sets_detectors_and_gate_side_by_side():
    from ecg_utils.evaluate.report import noise_markdown

    detection = [{"record": "118", "snr_db": snr, "measured_snr_db": m, "detector": d, "tp": tp, "fn": fn, "fp": fp,
                  "seconds": sec}
                 for snr, m in ((float("inf"), float("inf")), (6.0, 0.1))
                 for d, tp, fn, fp, sec in (("this repo", 90, 10, 5, 0.1), ("wfdb xqrs", 95, 5, 5, 2.0))]
    figure = {"path": "offline", "noise": "em", "snr_db": 6.0, "readable": 80.0, "accuracy": 75.0, "S_se": None,
              "S_ppv": 10.0, "V_se": 90.0, "V_ppv": 60.0, "false_S_per_h_noisy": 12.0, "false_V_per_h_noisy": 1950.4,
              "false_V_per_h_clean": 3.0}
    stress = {"detection": detection, "records": ["100", "233"],
              "figures": [{**figure, "gate": "off"}, {**figure, "gate": "on", "false_V_per_h_noisy": 868.0}],
              "gate": {"min_snr_db": 11.7, "beats": 15, "band_hz": [8.0, 20.0], "flat_s": 0.5, "clip_s": 0.014},
              "target": {"noise": "em", "snr_db": 6.0, "path": "offline",
                         "false_V_per_h_noisy": {"off": 1950.4, "on": 868.0},
                         "V_se_clean_stretches": {"off": 99.8, "on": 99.3}, "halved": True, "clean_V_se_drop": 0.5,
                         "clean_V_se_drop_within_1": True, "max_false_V_per_h": 800.0, "at_most_max": False},
              "clean_records": [{"record": "208", "beats": 2950, "unreadable": 0, "unreadable_pct": 0.0,
                                 "unreadable_first_30_s": 0},
                                {"record": "105", "beats": 2564, "unreadable": 124, "unreadable_pct": 4.836,
                                 "unreadable_first_30_s": 3}]}
    text = noise_markdown(stress)
    assert "868, at least halved: **met**, at most 800: **not met**; V Se" in text
    assert ("On the 2 clean records, classified as `predict` does by default: 1 record with more than 0.2 % of its "
            "beats unreadable: 105 4.84 % (124 of 2,564); at most 0.2 % in every record: **not met**. Record 208's "
            "first 30 s: 0 unreadable beats (target 0: **met**).") in text
    assert "| 6 | 0.1 | 90.00 | 94.74 | 95.00 | 95.00 | no |" in text
    assert "| offline | em | 6 | off | 80.0 | 75.0 | – | 10.0 | 90.0 | 60.0 | 12 | 1,950 | 3 |" in text
    assert "1,950 → 868, at least halved: **met**" in text and "**11.7 dB**" in text
    assert "Counting only the beats outside" not in text  # a report without the noise-episode counts
    episodes = [{**r, "unreadable_in_noise_episodes": n} for r, n in zip(stress["clean_records"], (0, 110))]
    text = noise_markdown({**stress, "clean_records": episodes})
    assert "105 4.84 % (124 of 2,564; 110 in the lead's annotated noise episodes)" in text
    assert "noisy or unreadable, 1 record exceeds 0.2 %: 105 0.55 %." in text  # 14 of 2,564 beats outside them
    episodes[1]["unreadable_in_noise_episodes"] = 124
    assert "noisy or unreadable, 0 records exceed 0.2 %." in noise_markdown({**stress, "clean_records": episodes})
    # How `predict` classified the noisy records: whole-record mode unless the report says the model had no setting.
    assert "the whole-record mode (each noisy version adapts" in text
    as_trained = noise_markdown({**stress, "offline_adaptation": None})
    assert "Offline is `predict`'s default, the model as trained (it carries no whole-record setting)" in as_trained
    averaged = {**figure, "gate": "off", "S_se_avg": None, "S_ppv_avg": 5.0, "V_se_avg": 85.04, "V_ppv_avg": 40.0}
    text = noise_markdown({**stress, "figures": [averaged]})
    assert "| offline | em | 6 | off | 80.0 | 75.0 | – / – | 10.0 / 5.0 | 90.0 / 85.0 | 60.0 / 40.0 | 12 |" in text


def test_errors_paragraph_counts_from_the_predictions():
    import pandas as pd

    from ecg_utils.evaluate.report import errors_markdown

    rows = ([("a", "N", "S")] * 3 + [("a", "N", "N")] * 5 + [("a", "V", "N")] + [("b", "S", "N")] * 2
            + [("b", "S", "S")] * 6 + [("b", "N", "S")] + [("c", "F", "N")] * 2 + [("c", "F", "F"), ("c", "Q", "N")])
    pred = pd.DataFrame(rows, columns=["record", "true", "pred"])
    text = errors_markdown(pred, top=2)
    assert text.startswith("10 of the 22 DS2 beats are misclassified. The records with the most errors: "
                           "a (4, of which 3 N called S), b (3, of which 2 S called N).")
    assert "Record b holds 8 of DS2's 8 S beats: 2 of them are called N and 2 missed in all (S Se 75.0 %, +P 85.7 %" in text
    assert text.endswith("2 of the 3 F beats are called N; the 1 Q beats are too few to mean anything.")


def test_seeds_markdown_gives_mean_sd_over_trainings_and_the_difference():
    from ecg_utils.evaluate.ablation import over_seeds
    from ecg_utils.evaluate.by_record import average_figures
    from ecg_utils.evaluate.report import seeds_markdown

    def figures(pred):
        import pandas as pd

        true = list("NNNNSSVVFQ")
        df = pd.DataFrame({"record": ["a"] * 5 + ["b"] * 5, "true": true, "pred": list(pred)})
        return {**summarize(df.true.to_numpy(), df.pred.to_numpy()), "average": average_figures(df)}

    base, rhythm = [figures("NNNSSNVVNQ"), figures("NNNNSNVVNQ")], [figures("NNNNSSVVNQ"), figures("NNNNSSVVNQ")]
    ab = {"seeds": [0, 100], "folds": 5, "configs": {
        "cnn_lstm": {"params": 10, "over_seeds": over_seeds(base), "per_seed": base},
        "cnn_lstm_rhythm": {"params": 12, "over_seeds": over_seeds(rhythm), "per_seed": rhythm},
        "cnn_lstm_context32": {"params": 12, "config": {"against": "cnn_lstm_rhythm"}, "over_seeds": over_seeds(rhythm),
                               "per_seed": rhythm}}}
    text = seeds_markdown(ab)
    # A configuration that names the one it is judged against is compared with that one, not the first.
    assert ("CNN–LSTM over 32 beats, beat + template against CNN–LSTM over 16 beats, beat + template, rhythm pair, "
            "difference of the means in points: accuracy +0.0,") in text
    # S Se: 50 % and 50 % for the first, 100 % twice for the second; S +P 50 % and 100 %, then 100 % twice
    assert "| CNN–LSTM over 16 beats, beat + template | 10 | 75.0 ± 7.1 |" in text
    assert "| CNN–LSTM over 16 beats, beat + template, rhythm pair | 12 | 90.0 ± 0.0 |" in text
    assert "difference of the means in points: accuracy +15.0, macro F1 " in text
    assert "S Se +50.0, S +P +25.0" in text
    assert "**not better**, needs at least 3 trainings of both with the same seeds (2 given)." in text
    assert "By the reference rhythm" not in text  # no configuration was scored by rhythm
    by = {"regular": {"beats": 9, "S": 2, "S found": 1, "false S": 1, "false V": 0}}
    scored = {**ab["configs"]["cnn_lstm"], "per_seed": [{**f, "by_rhythm": {"regular": {**by["regular"], "S found": k}}}
                                                         for f, k in zip(base, (1, 2))]}
    text = seeds_markdown({**ab, "configs": {**ab["configs"], "cnn_lstm": scored}})
    assert "| CNN–LSTM over 16 beats, beat + template | regular | 9 | 1.5 / 2 | 1.0 |" in text
    assert text.count("| regular |") == 1  # only the configuration scored by rhythm


def test_adaptation_markdown_gives_each_method_and_its_signed_paired_difference():
    from ecg_utils.evaluate.ablation import over_seeds
    from ecg_utils.evaluate.adaptation import paired
    from ecg_utils.evaluate.by_record import average_figures
    from ecg_utils.evaluate.report import adaptation_markdown

    def figures(pred):
        import pandas as pd

        df = pd.DataFrame({"record": ["a"] * 5 + ["b"] * 5, "true": list("NNNNSSVVFQ"), "pred": list(pred)})
        return {**summarize(df.true.to_numpy(), df.pred.to_numpy()), "average": average_figures(df)}

    base = [figures("NNNSSNVVNQ"), figures("NNNNSNVVNQ")]  # accuracy 70 %, 80 %
    worse = [figures("NNSSSNVVNQ"), figures("NNNSSNVVNQ")]  # accuracy 60 %, 70 %: 10 points lower each time
    methods = {"none": {"layers": "all", "weight": 0.0, "label": "not adapted", "over_seeds": over_seeds(base),
                        "paired": paired(base, base), "per_seed": base},
               "rr": {"layers": "rr", "weight": 1.0, "label": "RR, the record's", "over_seeds": over_seeds(worse),
                      "paired": paired(worse, base), "per_seed": worse}}
    text = adaptation_markdown({"config": "cnn_lstm", "seeds": [0, 100], "folds": 5, "methods": methods})
    assert "| not adapted | 0.00 | 75.0 ± 7.1 |" in text and "| RR, the record's | 1.00 | 65.0 ± 7.1 |" in text
    assert "| RR, the record's | 1.00 | -10.0 ± 0.0 |" in text  # the paired difference, signed
    assert text.count("| not adapted |") == 1  # the baseline has no row of differences from itself
    assert "RR, the record's: **not better** (needs at least 3 trainings" in text  # the rule's verdict and why


def test_scale_markdown_says_which_targets_are_met():
    from ecg_utils.evaluate.report import scale_markdown

    def figures(acc, s_se):
        return {"accuracy": acc, "macro_f1": 0.6, "classes": {"S": {"se": s_se, "ppv": 0.5}, "V": {"se": 0.9, "ppv": 0.8}}}

    spread = {"accuracy": {"mean": 0.93, "sd": 0.07}, "macro_f1": {"mean": 0.55, "sd": 0.1},
              "classes": {c: {k: {"mean": 0.5, "sd": 0.2} for k in ("se", "ppv")} for c in ("S", "V")}}
    bench = {"cores": 2, "records": 48, "archive": {"1 worker": 24.0, "2 workers": 12.0,
                                                    "Dask LocalCluster, 2 workers": 16.0, "identical": 1.0},
             "training": {"1 process": 1000.0, "2 processes": 1400.0, "1 process, with validation": 900.0,
                          "2 processes, with validation": 1170.0},
             "fold": {"torchrun": {**figures(0.97, 0.40), "seconds": 240.0}, "published": figures(0.98, 0.65),
                      "spread": spread}}
    text = scale_markdown(bench)
    assert "| 2 worker processes | 12.0 s, 4.00 records/s, 2.00 × one worker | ≥ 1.7 × (met) |" in text
    assert "0.75 × the local processes | within 15 % (not met) |" in text
    assert ("| 2 processes under torchrun (gloo) | 1,400 beats/s, 1.40 × (whole epochs: 1,170, 1.30 ×) | ≥ 1.5 × "
            "(not met) |") in text
    assert "within the folds' spread (not met) |" in text  # S Se 40 % against 65 %: more than one sd (20) away
    bench["fold"]["torchrun"]["classes"]["S"]["se"] = 0.50
    assert "within the folds' spread (met) |" in scale_markdown(bench)


def test_judge_applies_the_rule_for_a_better_model():
    from ecg_utils.evaluate.ablation import judge

    def run(s_f1, v_f1, acc=0.9, s_ppv=0.5, v_ppv=0.8, s_se=0.6):
        return {"accuracy": acc, "classes": {"S": {"f1": s_f1}, "V": {"f1": v_f1}},
                "average": {"S": {"ppv": s_ppv, "se": s_se}, "V": {"ppv": v_ppv, "se": 0.85}}}

    base = [run(0.40, 0.80), run(0.45, 0.82), run(0.42, 0.81)]
    assert judge(base, [run(0.46, 0.80), run(0.50, 0.82), run(0.47, 0.81)]) == (
        True, "gains S F1 +5.3 ± 0.6")
    # the same mean gain, but not repeated: one training loses
    better, why = judge(base, [run(0.55, 0.80), run(0.40, 0.82), run(0.48, 0.81)])
    assert not better and why.startswith("neither S F1 nor V F1 gains")
    # a gain bought with a clear loss elsewhere
    better, why = judge(base, [run(0.46, 0.80, acc=0.85), run(0.50, 0.82, acc=0.86), run(0.47, 0.81, acc=0.85)])
    assert not better and why == "loses accuracy -4.7 ± 0.6"
    # pooled S F1 bought with the S beats of the records that have few: the per-record average Se falls
    better, why = judge(base, [run(0.46, 0.80, s_se=0.5), run(0.50, 0.82, s_se=0.45), run(0.47, 0.81, s_se=0.5)])
    assert not better and why == "loses S Se avg -11.7 ± 2.9"
    assert judge(base[:2], base[:2])[0] is False


def test_rhythm_markdown_gives_each_running_rr_and_its_worst_record():
    from ecg_utils.evaluate.report import rhythm_markdown

    stat = {"mean_error": 1.04, "rich_error": 1.9, "worst_record": "203", "worst_error": 5.62, "s_early": 0.9641}
    text = rhythm_markdown({"reference_beats": 256, "rich": 0.2, "rich_records": ["119", "208"],
                            "stats": {"median of 256": stat}, "records": {}})
    assert "the 2 where S, V and F beats are at least 20 % (119, 208)" in text
    assert "| median of 256 | 1.0 | 1.9 | 5.6 (203) | 96.4 |" in text


def test_gate_design_markdown_gives_each_measure_its_row():
    import pandas as pd

    from ecg_utils.evaluate.report import gate_design_markdown

    design = pd.DataFrame([
        {"gate": "whole window (published)", "qrs_s": "[0.0, 0.0]", "min_similarity": "", "noisy": "em 6 dB",
         "threshold_db": 11.4,
         "clean_N_gated_%": 0.1, "clean_S_gated_%": 0.0, "clean_V_gated_%": 0.7, "noisy_false_V_removed_%": 56.9,
         "noisy_beats_gated_%": 44.4, "records": 22, "records_over": 0, "over": ""},
        {"gate": "away from the QRS (rejected)", "qrs_s": "[0.05, 0.1]", "min_similarity": "", "noisy": "em 6 dB",
         "threshold_db": 14.7,
         "clean_N_gated_%": 0.2, "clean_S_gated_%": 0.1, "clean_V_gated_%": 0.74, "noisy_false_V_removed_%": 70.4,
         "noisy_beats_gated_%": 56.8, "records": 22, "records_over": 2, "over": "108 3.64; 203 0.98"},
        {"gate": "with the shape", "qrs_s": "[0.0, 0.0]", "min_similarity": 94.6, "noisy": "em 6 dB",
         "threshold_db": 13.9, "clean_N_gated_%": 0.45, "clean_S_gated_%": 0.11, "clean_V_gated_%": 0.69,
         "noisy_false_V_removed_%": 87.4, "noisy_beats_gated_%": 71.9, "between_V_gated_%": 3.24, "records": 22,
         "records_over": 1, "over": "108 7.29"}])  # as the report reads the file: an empty cell, not NaN, for the SNR
    # alone; the first two rows as written before the V beats between the noisy stretches were measured
    text = gate_design_markdown(design)
    assert "3 gate designs, each calibrated on the 22 DS1 records" in text and "noisy stretches: em 6 dB" in text
    assert "| with the shape | 13.9; 94.6 | 0.45 / 0.11 / 0.69 | 87.4 | 71.9 | 3.24 | 1 of 22: 108 7.29 |" in text
    assert "| whole window (published) | 11.4 | 0.10 / 0.00 / 0.70 | 56.9 | 44.4 | – | 0 of 22 |" in text
    assert ("| away from the QRS (rejected) | 14.7 | 0.20 / 0.10 / 0.74 | 70.4 | 56.8 | – | 2 of 22: 108 3.64; 203 0.98 |"
            in text)
