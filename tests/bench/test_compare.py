"""`python -m ecg_utils.bench.compare`: refuses what it cannot time, naming it."""

import pytest

from ecg_utils.bench.compare import main


def test_compare_names_a_missing_model_file(tmp_path, capsys):
    present = tmp_path / "a.onnx"
    present.write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main([str(present), str(tmp_path / "b.onnx")])
    assert exc.value.code == 2 and f"no model file {tmp_path / 'b.onnx'}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(present), str(present), "--rounds", "0"])
    assert "--rounds and --hours must be positive" in capsys.readouterr().err
