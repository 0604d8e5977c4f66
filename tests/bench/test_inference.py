"""`make bench`'s inference part: a trained checkpoint on both backends, or the shipped model before any training."""

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
