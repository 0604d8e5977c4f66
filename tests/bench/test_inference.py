"""`make bench`'s inference part: a trained checkpoint on both backends, or the shipped model before any training."""

import numpy as np

from ecg_utils.bench.inference import backend_models, bench_backends
from ecg_utils.model.inference import load_classifier
from ecg_utils.model.shipped import MODEL_PATH


def test_a_fresh_clone_measures_the_shipped_model(tmp_path):
    models = backend_models(tmp_path / "runs" / "inter_patient_cnn_lstm" / "best.pt", tmp_path)
    assert models == {"onnxruntime": MODEL_PATH}
    figures = bench_backends(models, batch=16, repeat=5)
    assert set(figures) == {"onnxruntime"}
    assert figures["onnxruntime"]["beats_per_s"] > 0 and figures["onnxruntime"]["p99_ms"] >= figures["onnxruntime"]["p50_ms"]


def test_a_trained_checkpoint_is_measured_on_both_backends(tiny_model, tmp_path):
    models = backend_models(tiny_model, tmp_path)
    assert set(models) == {"onnxruntime", "pytorch"} and models["pytorch"] == tiny_model
    assert models["onnxruntime"].parent == tmp_path
    assert load_classifier(models["onnxruntime"]).backend == "onnx"


def test_the_signal_path_alone_finds_the_same_beats(mitdb_dir):
    """The stand-in for the model changes the classes (constant), not the beats: the signal path is the one timed."""
    from ecg_utils.bench.inference import SignalOnly
    from ecg_utils.classify import classify_record

    model = load_classifier(MODEL_PATH)
    with_model = classify_record(mitdb_dir / "208", model, progress=False, block_s=120).beats
    alone = classify_record(mitdb_dir / "208", SignalOnly(model), progress=False, block_s=120).beats
    assert alone["sample"].tolist() == with_model["sample"].tolist()
    np.testing.assert_array_equal(alone["quality_db"], with_model["quality_db"])  # NaN where not yet scored
    assert set(with_model["pred"]) >= {"N", "V"} and set(alone.loc[alone.unreadable == "", "pred"]) == {"N"}
