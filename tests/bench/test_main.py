"""`make bench` keeps what it measured: each part merged into reports/bench.json with its date and cores."""

import json

from ecg_utils.bench.__main__ import save


def test_save_merges_parts_and_keeps_the_others(tmp_path):
    path = tmp_path / "bench.json"
    save({"data": {"build_cold_s": 2.0}}, path)
    save({"detector": {"se": 0.99}}, path)
    save({"data": {"build_cold_s": 1.5}}, path)
    report = json.loads(path.read_text())
    assert list(report) == ["data", "detector"]
    assert report["data"]["build_cold_s"] == 1.5 and report["detector"]["se"] == 0.99
    assert {"measured", "cores"} <= set(report["data"])
