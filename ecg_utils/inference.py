"""One interface over a trained model, whichever file holds it: a PyTorch checkpoint or an ONNX export."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import DataError
from .preprocess import PreprocessConfig
from .training import load_checkpoint


class Classifier(Protocol):
    preprocess: PreprocessConfig
    backend: str

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 5) for beat windows x (n, 1, window) and RR features rr (n, 4)."""
        ...


class TorchClassifier:
    backend = "torch"

    def __init__(self, path: Path) -> None:
        self.model, ckpt = load_checkpoint(path)
        self.preprocess = PreprocessConfig.from_dict(ckpt["preprocess_config"])

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                torch.from_numpy(np.ascontiguousarray(rr, np.float32)))
            return torch.softmax(logits, dim=1).numpy()


class OnnxClassifier:
    backend = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        from .export import read_metadata

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.preprocess = PreprocessConfig.from_dict(read_metadata(path)["preprocess_config"])

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {"x": np.ascontiguousarray(x, np.float32),
                                         "rr": np.ascontiguousarray(rr, np.float32)})[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def load_classifier(path: str | Path) -> Classifier:
    """A classifier from `best.pt` (PyTorch) or `model.onnx` (ONNX Runtime), chosen by the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no model at {path}: pass a checkpoint (runs/<protocol>_<model>/best.pt) or an ONNX export")
    if path.suffix == ".onnx":
        return OnnxClassifier(path)
    if path.suffix in (".pt", ".pth"):
        return TorchClassifier(path)
    raise DataError(f"{path}: unknown model file type {path.suffix!r}; expected .pt (PyTorch) or .onnx")
