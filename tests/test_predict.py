"""The command line `python -m ecg_utils.predict`: one row per beat, its own flags in its messages, bad input."""

import numpy as np
import pandas as pd
import wfdb

from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH
from ecg_utils.predict import main

from .synthetic_records import write_record


def test_cli_reports_a_missing_record(tiny_model, tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--model", str(tiny_model), "--out", str(tmp_path / "o.csv")]) == 1
    assert "error: record nothing" in capsys.readouterr().err


def test_cli_writes_one_row_per_beat(tiny_model, rec100, tmp_path, capsys):
    out = tmp_path / "beats.csv"
    assert main([str(rec100[0]), "--model", str(tiny_model), "--out", str(out), "--beats", "atr"]) == 0
    table = pd.read_csv(out)
    assert len(table) > 300 and "N " in capsys.readouterr().out


def test_cli_names_its_own_flags(rec100, tmp_path, capsys):
    at360, _, _ = rec100
    out = tmp_path / "o.csv"
    assert main([str(at360), "--out", str(out), "--lead", "V1"]) == 1
    assert "none of the leads ['V1'] is in this record; it has ['MLII']; pass --lead with one of them" in \
        capsys.readouterr().err
    # no --model: the published model shipped with the package, in whole-record mode unless --no-adapt where it
    # carries a setting for it, else as trained either way
    assert main([str(at360), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    default = pd.read_csv(out)
    assert main([str(at360), "--out", str(out), "--no-adapt"]) == 0
    assert "(onnx)" in said and "classified by the model as trained" in capsys.readouterr().out
    trained = pd.read_csv(out)
    assert len(default) == len(trained) > 300
    if load_classifier(MODEL_PATH).adaptation is None:
        assert "classified by the model as trained" in said and default.equals(trained)
    else:
        assert "whole-record mode:" in said and not default[["p_N", "p_S", "p_V"]].equals(trained[["p_N", "p_S", "p_V"]])
    hea = tmp_path / "z.hea"
    hea.write_text("z 1 0 1000\nz.dat 16 200 11 1024 0 0 0 MLII\n")
    assert main([str(tmp_path / "z"), "--out", str(out)]) == 1
    assert "header z.hea gives the sampling rate as 0 Hz" in capsys.readouterr().err


def test_cli_adapts_a_model_with_a_whole_record_setting_unless_told_not_to(tiny_model, rec100, tmp_path, capsys):
    from ecg_utils.model.batchnorm import Adaptation
    from ecg_utils.model.export import export_onnx

    at360, _, _ = rec100
    model, out = export_onnx(tiny_model, tmp_path / "adaptive.onnx", Adaptation("all", 0.5)), tmp_path / "o.csv"
    assert main([str(at360), "--model", str(model), "--out", str(out)]) == 0
    assert "whole-record mode: every batch norm of the model took 0.5 of its" in capsys.readouterr().out
    adapted = pd.read_csv(out)
    assert main([str(at360), "--model", str(model), "--out", str(out), "--no-adapt"]) == 0
    assert "classified by the model as trained" in capsys.readouterr().out
    trained = pd.read_csv(out)
    assert len(adapted) == len(trained) > 300 and not adapted[["p_N", "p_S", "p_V"]].equals(trained[["p_N", "p_S", "p_V"]])


def test_cli_says_where_the_lead_was_flat_and_reports_unreadable_beats_as_q(rec100, tmp_path, capsys):
    """A lead-off stretch (constant samples) gives no beats and its length; beats in heavy noise and in clipping
    are reported as Q with the reason."""
    at360, _, ann = rec100
    x = wfdb.rdrecord(str(at360)).p_signal[:, 0].copy()
    x[100 * 360: 130 * 360] = x[100 * 360]
    x[150 * 360: 180 * 360] += np.random.default_rng(0).normal(0, 1.0, 30 * 360)  # 1 mV RMS of white noise
    clip = slice(210 * 360, 240 * 360)
    x[clip] = np.clip(x[clip], None, np.percentile(x[clip], 97))  # the amplifier at its rail on every R peak
    path = write_record(tmp_path, "flat", x, 360, ann.sample, ann.symbol)
    out = tmp_path / "beats.csv"
    assert main([str(path), "--out", str(out)]) == 0
    assert "30.0 s of flat line" in capsys.readouterr().out
    beats = pd.read_csv(out, keep_default_na=False)
    inside = beats[(beats.time_s > 100.3) & (beats.time_s < 129.7)]
    assert inside.empty and set(beats.unreadable) == {"", "noise", "clipped"}
    noisy, clipped = beats[beats.time_s.between(151, 179)], beats[beats.time_s.between(211, 239)]
    assert (noisy.unreadable == "noise").mean() > 0.8 and (clipped.unreadable == "clipped").mean() > 0.6
    assert (beats[beats.time_s < 99].unreadable == "").all()  # the clean stretch before them is read
    unreadable = beats[beats.unreadable != ""]
    assert len(unreadable) > 50 and (unreadable.pred == "Q").all()
