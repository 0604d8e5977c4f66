"""One interface over both model files; the ONNX path runs without PyTorch."""

import subprocess
import sys

import numpy as np
import pytest

from ecg_utils.errors import DataError
from ecg_utils.model.inference import BeatSequence, OnnxClassifier, TorchClassifier, load_classifier


def test_load_classifier_picks_the_backend_by_suffix(tiny_model, tiny_onnx, tmp_path):
    assert isinstance(load_classifier(tiny_model), TorchClassifier)
    onnx = load_classifier(tiny_onnx, threads=1)
    assert isinstance(onnx, OnnxClassifier) and onnx.session.get_session_options().intra_op_num_threads == 1
    assert onnx.preprocess == load_classifier(tiny_model).preprocess  # from the embedded metadata
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(DataError, match="unknown model file type '.h5'"):
        load_classifier(tmp_path / "model.h5")


def test_both_backends_give_the_same_probabilities(tiny_model, tiny_onnx):
    rng = np.random.default_rng(0)
    onnx, torch = load_classifier(tiny_onnx), load_classifier(tiny_model)
    x, rr = rng.standard_normal((3, onnx.preprocess.window)), rng.uniform(0.5, 1.2, (3, 4))
    p, q = BeatSequence(onnx)(x, rr), BeatSequence(torch)(x, rr)
    assert p.shape == (3, 5) and np.abs(p - q).max() < 1e-5 and (p.argmax(1) == q.argmax(1)).all()
    assert np.abs(p - p[::-1]).max() > 1e-3  # different beats, different probabilities: not a constant answer


@pytest.mark.parametrize("batch", [1, 5, 64, 4000])
def test_beat_sequence_gives_the_training_path_s_probabilities_whatever_the_batching(small, tiny_model, tiny_onnx,
                                                                                     batch):
    """Beats fed in order, in any batch size, to either backend: the probabilities that training and evaluation
    compute from the dataset (template, context and all)."""
    from ecg_utils.model.checkpoint import load_model
    from ecg_utils.model.sources import SequenceData
    from ecg_utils.model.training import predict_proba

    ds, _ = small
    rows = np.flatnonzero(ds.record == "208")[:600]
    reference = predict_proba(load_model(tiny_model)[0], SequenceData.from_dataset(ds), rows)
    for path in (tiny_model, tiny_onnx):
        sequence = BeatSequence(load_classifier(path))
        out = np.concatenate([sequence(ds.signal[rows[i:i + batch]], ds.rr[rows[i:i + batch]])
                              for i in range(0, len(rows), batch)])
        assert np.abs(out - reference).max() < 1e-5, path.suffix
        np.testing.assert_array_equal(out.argmax(1), reference.argmax(1))


def test_an_onnx_deployment_never_imports_pytorch(tiny_onnx, mitdb_dir):
    # A device runs the exported model with ONNX Runtime and numpy: record classification and
    # streaming must work in a process where PyTorch is never loaded.
    code = f"""
import sys
from ecg_utils.model.inference import load_classifier
from ecg_utils.classify import classify_record
from ecg_utils.evaluate.realtime import stream_record
clf = load_classifier({str(tiny_onnx)!r})
assert len(classify_record({str(mitdb_dir / "100")!r}, clf, progress=False).beats) > 2000
assert len(stream_record({str(mitdb_dir / "100")!r}, clf, 1.0)) > 2000
assert "torch" not in sys.modules, "PyTorch was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_corrupt_model_file(tmp_path, suffix):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(b"\x08\x01garbage" * 100)
    kind = "an ONNX export" if suffix == ".onnx" else "a readable checkpoint"
    with pytest.raises(DataError, match=rf"model file .*model\{suffix} is not {kind} of this repo"):
        load_classifier(bad)


def test_an_export_of_the_earlier_graph_is_refused_with_the_fix(tiny_onnx, tmp_path):
    """Files exported before graph version 2 (one window of context per beat) name no graph version."""
    import onnx

    proto = onnx.load(str(tiny_onnx))
    kept = [p for p in proto.metadata_props if p.key != "graph"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(proto, str(old))
    with pytest.raises(DataError, match=r"old\.onnx holds graph version 1.*export it again from its checkpoint"):
        load_classifier(old)
