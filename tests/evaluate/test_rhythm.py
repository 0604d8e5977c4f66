"""How closely each running RR of the ablation follows the sinus cycle on DS1, from DS1's labels and no model."""

import json

import numpy as np

from ecg_utils.evaluate.rhythm import MIN_REFERENCE, main, sinus_reference, track_record
from tests.evaluate.test_ablation import DS1
from tests.evaluate.test_ablation import _params as _ablation_params

FS = 360.0


def test_the_sinus_reference_reads_only_intervals_between_two_n_beats():
    label = np.array(["N"] * 20 + ["V", "N"] * 10)
    pre = np.concatenate([np.full(20, 1.0), np.tile([0.6, 1.4], 10)])  # bigeminy: early V, compensatory pause
    ref = sinus_reference(pre, label)
    assert np.isnan(ref[:MIN_REFERENCE]).all()  # beat 0 has no previous beat, so 16 N-N intervals end at beat 16
    np.testing.assert_array_equal(ref[MIN_REFERENCE:], 1.0)  # neither the V beats nor the pauses move it


def test_a_statistic_that_follows_early_beats_or_pauses_is_measured_off_the_cycle():
    # 200 sinus beats at 1.0 s, then trigeminy-like runs: two early S beats (0.75 s) after each N beat (1.0 s).
    pre = np.concatenate([np.full(200, 1.0), np.tile([1.0, 0.75, 0.75], 100)])
    label = np.concatenate([np.full(200, "N"), np.tile(["N", "S", "S"], 100)])
    sample = np.round(np.cumsum(pre) * FS)
    stats = {"mean": {"mean_rr_stat": "mean", "mean_rr_beats": 100},
             "p90": {"mean_rr_stat": "p90", "mean_rr_beats": 100}}
    out = track_record(sample, label, FS, stats)
    assert np.isclose(out["ectopic_share"], 200 / 500) and out["s_beats"] == 200
    assert out["error"]["p90"] < 0.01 and out["error"]["mean"] > 5  # the mean falls towards 0.83 s
    assert out["s_early"]["p90"] == 1.0 and out["s_early"]["mean"] < 0.5  # 0.75 s is not under 90 % of 0.83 s


def test_every_ds1_record_and_running_rr_of_the_ablation_is_reported(tmp_path, mitdb_dir, capsys):
    params = _ablation_params(tmp_path, mitdb_dir)
    assert main(["--params", str(params)]) == 0
    out = json.loads((tmp_path / "reports" / "rhythm_tracking.json").read_text())
    assert sorted(out["records"]) == DS1  # DS2's record 100 is in the dataset and never read
    assert sorted(out["stats"]) == ["mean of 256", "median of 50"]  # PREPROCESS, and a configuration's own over it
    assert "208" in out["rich_records"] and "101" not in out["rich_records"]
    assert "median of 50:" in capsys.readouterr().out
