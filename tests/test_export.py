"""ONNX export: ONNX Runtime gives PyTorch's logits on real beats, and the file says how to feed it."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ecg_utils.checkpoint import load_model
from ecg_utils.export import main, read_metadata


@pytest.fixture(scope="module")
def exported(tiny_model, tiny_onnx):
    return tiny_model, tiny_onnx


@pytest.mark.parametrize("batch", [1, 256])
def test_onnx_runtime_matches_pytorch_on_real_beats(small, exported, batch):
    ds, split = small
    ckpt, onnx_path = exported
    idx = split.test[:batch]
    x, rr = ds.signal[idx][:, None, :], ds.rr[idx]
    model, _ = load_model(ckpt)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x), torch.from_numpy(rr)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": x, "rr": rr})[0]
    assert out.shape == (batch, 5)
    assert np.abs(out - ref).max() < 1e-4
    np.testing.assert_array_equal(out.argmax(1), ref.argmax(1))


def test_metadata_says_how_to_prepare_inputs(small, exported):
    ds, _ = small
    meta = read_metadata(exported[1])
    assert meta["classes"] == ["N", "S", "V", "F", "Q"]
    assert (meta["fs"], meta["window"], meta["before"]) == (360.0, 252, 90)
    assert meta["rr_features"] == ["pre_rr", "post_rr", "local_rr", "mean_rr"]
    assert meta["preprocess_config"] == ds.config and meta["normalize"] == "record"
    assert meta["model"] == "cnn_lstm" and meta["protocol"] == "inter_patient"


def test_cli(exported, tmp_path, capsys):
    assert main(["--model", str(exported[0]), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "max |logit difference| vs PyTorch" in capsys.readouterr().out
    assert main(["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


def test_export_carries_no_paths_of_the_exporting_machine(exported):
    """The exporter's per-node debug records (stack traces with file paths) are dropped before shipping."""
    import onnx

    checkpoint, path = exported
    proto = onnx.load(str(path))
    assert not any(len(n.metadata_props) for n in proto.graph.node)
    raw = path.read_bytes()
    assert b"site-packages" not in raw and b"ecg_utils/models.py" not in raw
    assert str(checkpoint.parent).encode() not in raw
