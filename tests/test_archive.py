"""Classifying an archive: every record once, the same beats as a single `predict`, a damaged record named in the
summary without stopping the rest, resuming by model and options, and the same results on processes and on Dask."""

import json
import os

import pandas as pd
import pytest
import wfdb

from ecg_utils.archive import Job, expand_inputs
from ecg_utils.errors import DataError
from ecg_utils.model.shipped import sha256
from ecg_utils.predict import main

from .synthetic_records import write_record


@pytest.fixture(scope="module")
def archive(mitdb_dir, tmp_path_factory):
    """Two minutes each of records 100 and 208 in subfolders, and a record whose signal file is missing."""
    root = tmp_path_factory.mktemp("archive")
    for folder, record in (("a", "100"), ("b", "208")):
        (root / folder).mkdir()
        rec = wfdb.rdrecord(str(mitdb_dir / record), channel_names=["MLII"], sampto=120 * 360)
        ann = wfdb.rdann(str(mitdb_dir / record), "atr", sampto=120 * 360)
        write_record(root / folder, record, rec.p_signal[:, 0], 360, ann.sample, ann.symbol)
    (root / "broken.hea").write_text("broken 1 360 43200\nbroken.dat 16 200 11 1024 0 0 0 MLII\n")
    return root


def _run(*args: str) -> int:
    """`predict` in this process (one worker)."""
    return main([*args, "--workers", "1"])


def test_every_record_gets_its_csv_and_a_summary_row_and_the_damaged_one_its_reason(archive, tiny_onnx, tmp_path,
                                                                                    capsys):
    out = tmp_path / "out"
    assert _run(str(archive), "--out-dir", str(out), "--model", str(tiny_onnx)) == 1  # one record failed
    printed = capsys.readouterr()
    assert "3 records" in printed.out and "2 classified" in printed.out and "1 failed" in printed.out
    assert "broken" in printed.err
    summary = pd.read_csv(out / "summary.csv", dtype={"record": str}, keep_default_na=False)
    assert list(summary.record) == ["a/100", "b/208", "broken"]
    assert list(summary.status) == ["ok", "ok", "error"]
    broken = summary.set_index("record").loc["broken"]
    assert "broken" in broken.error and broken.beats == ""
    for name in ("a/100", "b/208"):
        row = summary.set_index("record").loc[name]
        beats = pd.read_csv(out / f"{name}.csv", keep_default_na=False)
        assert int(row.beats) == len(beats) and sum(int(row[c]) for c in "NSVFQ") == len(beats)
        assert row.format == "wfdb" and row.lead == "MLII" and float(row.fs) == 360.0
        assert float(row.duration_s) == 120.0 and 40 < float(row.heart_rate_bpm) < 120
        # the same beats and classes as a single predict of that record
        single = tmp_path / "single.csv"
        assert main([str(archive / name), "--model", str(tiny_onnx), "--out", str(single)]) == 0
        pd.testing.assert_frame_equal(beats, pd.read_csv(single, keep_default_na=False))
    assert (pd.read_csv(out / "b/208.csv").pred == "V").sum() > 0  # 208 is rich in V beats


def test_a_rerun_skips_what_this_model_did_and_redoes_the_rest(archive, tiny_onnx, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    _run(str(archive / "a"), str(archive / "b"), "--out-dir", str(out), "--model", str(tiny_onnx))
    csv = out / "100.csv"
    stamp = csv.stat().st_mtime_ns
    sidecar = json.loads((out / "100.csv.json").read_text())
    assert sidecar["model_sha256"] == sha256(tiny_onnx)
    capsys.readouterr()

    assert _run(str(archive / "a"), str(archive / "b"), "--out-dir", str(out), "--model", str(tiny_onnx)) == 0
    assert "0 classified, 2 already done" in capsys.readouterr().out and csv.stat().st_mtime_ns == stamp
    summary = pd.read_csv(out / "summary.csv", dtype={"record": str})
    assert list(summary.status) == ["skipped", "skipped"] and summary.beats.gt(100).all()  # counts kept

    for changed in (["--force"], ["--no-gate"], ["--beats", "atr"]):
        _run(str(archive / "a"), "--out-dir", str(out), "--model", str(tiny_onnx), *changed)
        assert "1 classified" in capsys.readouterr().out
    _run(str(archive / "a"), "--out-dir", str(out), "--model", str(tiny_model))  # another model file
    assert "1 classified" in capsys.readouterr().out

    # a run killed between the beats file and its sidecar: the record is done again, not trusted
    (out / "100.csv.json").unlink()
    _run(str(archive / "a"), "--out-dir", str(out), "--model", str(tiny_model))
    assert "1 classified" in capsys.readouterr().out and not list(out.rglob("*.tmp"))


def test_two_processes_give_what_one_gives(archive, tiny_onnx, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    inputs = [str(archive / "a" / "100"), str(archive / "b" / "208")]
    assert main([*inputs, "--out-dir", str(one), "--model", str(tiny_onnx), "--workers", "1"]) == 0
    assert main([*inputs, "--out-dir", str(two), "--model", str(tiny_onnx), "--workers", "2"]) == 0
    for name in ("100", "208"):
        assert (one / f"{name}.csv").read_bytes() == (two / f"{name}.csv").read_bytes()


def test_a_run_killed_halfway_does_only_the_missing_records_when_restarted(archive, tiny_onnx, tmp_path, capsys,
                                                                           monkeypatch):
    import ecg_utils.archive

    out, inputs = tmp_path / "out", [str(archive / "a" / "100"), str(archive / "b" / "208")]
    real = ecg_utils.archive.classify_record

    def killed_at_208(path, *args, **kwargs):
        if path.endswith("208"):
            raise KeyboardInterrupt  # Ctrl-C, or the machine going away, while 208 is classified
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ecg_utils.archive, "classify_record", killed_at_208)
    with pytest.raises(KeyboardInterrupt):
        _run(*inputs, "--out-dir", str(out), "--model", str(tiny_onnx))
    assert sorted(p.name for p in out.iterdir()) == ["100.csv", "100.csv.json"]  # no half file, no summary yet
    monkeypatch.setattr(ecg_utils.archive, "classify_record", real)
    capsys.readouterr()
    assert _run(*inputs, "--out-dir", str(out), "--model", str(tiny_onnx)) == 0
    assert "1 classified, 1 already done" in capsys.readouterr().out
    assert list(pd.read_csv(out / "summary.csv").status) == ["skipped", "ok"]


def test_a_dask_cluster_of_two_workers_gives_the_same_bytes_and_each_worker_loads_the_model_once(archive, tiny_onnx, tmp_path, capsys):
    from dask.distributed import Client, LocalCluster

    from ecg_utils.model.inference import loads_in_this_process

    local = tmp_path / "local"
    assert main([str(archive / "a"), str(archive / "b"), "--out-dir", str(local), "--model", str(tiny_onnx),
                 "--workers", "1"]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        out = tmp_path / "dask"
        assert main([str(archive), "--out-dir", str(out), "--model", str(tiny_onnx),
                     "--scheduler", cluster.scheduler_address]) == 1  # the broken record fails there too
        assert "dashboard http://127.0.0.1:" in capsys.readouterr().out
        loads = list(client.run(loads_in_this_process).values())
        assert loads == [1, 1]  # three records on two workers: one load each, by the worker plugin
        cluster.scale(3)  # a worker that joins later gets the model from the plugin too
        client.wait_for_workers(3, timeout=60)
        assert list(client.run(loads_in_this_process).values()) == [1, 1, 1]
    for name in ("100", "208"):
        folder = "a" if name == "100" else "b"
        assert (local / f"{name}.csv").read_bytes() == (out / folder / f"{name}.csv").read_bytes()
    assert list(pd.read_csv(out / "summary.csv").status) == ["ok", "ok", "error"]


def test_inputs_are_expanded_once_and_clashing_outputs_refused(archive, tmp_path):
    assert expand_inputs([str(archive / "*" / "*.hea")]) == [Job("100", str(archive / "a" / "100")),
                                                             Job("208", str(archive / "b" / "208"))]
    twice = expand_inputs([str(archive / "a" / "100"), str(archive / "a" / "100.hea")])
    assert twice == [Job("100", str(archive / "a" / "100"))]
    copy = tmp_path / "other" / "100.hea"
    copy.parent.mkdir()
    copy.write_text((archive / "a" / "100.hea").read_text())
    with pytest.raises(DataError, match=r"several records would write the same output \(100\)"):
        expand_inputs([str(archive / "a" / "100"), str(copy.with_suffix(""))])
    with pytest.raises(DataError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.edf")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no records in"):
        expand_inputs([str(tmp_path / "empty")])
    # this run's own outputs under the input folder are never read back as records
    outputs = archive / "a" / "out"
    outputs.mkdir()
    (outputs / "x.hea").write_text("x 1 360 10\n")
    try:
        assert [j.name for j in expand_inputs([str(archive / "a")], out_dir=outputs)] == ["100"]
    finally:
        (outputs / "x.hea").unlink()
        outputs.rmdir()


def test_several_records_need_an_out_dir(archive, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(archive / "a" / "100"), str(archive / "b" / "208"), "--out", str(tmp_path / "o.csv")])
    assert "2 records given: pass --out-dir DIR" in capsys.readouterr().err
    assert main([str(archive / "a"), "--out-dir", str(tmp_path / "o"), "--workers", "0"]) == 1
    assert "--workers 0: give at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("environ, applied", [({"MALLOC_TRIM_THRESHOLD_": "65536"}, True), ({}, False)])
def test_a_dask_worker_gets_glibcs_malloc_thresholds_back_only_where_the_nanny_set_one(environ, applied):
    """The nanny's MALLOC_TRIM_THRESHOLD_ switches off glibc's dynamic mmap threshold (the archive's tasks ran about
    40 % longer); the plugin sets the thresholds back in each worker, and leaves a process without it alone."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the thresholds are glibc's")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"} | environ
    code = "from ecg_utils.cluster import restore_malloc_thresholds as r; print(r())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(applied)
