"""One interface over a trained model, whichever file holds it: a PyTorch checkpoint or an ONNX export.

PyTorch is imported only for a checkpoint, so a device that runs the ONNX export needs ONNX Runtime
and numpy, not PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import DataError
from .preprocess import PreprocessConfig


class Classifier(Protocol):
    preprocess: PreprocessConfig
    backend: str

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 5) for beat windows x (n, 1, window) and RR features rr (n, 4)."""
        ...


class TorchClassifier:
    backend = "torch"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch

        from .checkpoint import load_model

        if threads is not None:
            torch.set_num_threads(threads)  # process-wide in PyTorch
        self._torch = torch
        self.model, ckpt = load_model(path)  # a damaged or foreign file raises DataError, saying what to do
        self.preprocess = ckpt.preprocess

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                torch.from_numpy(np.ascontiguousarray(rr, np.float32)))
            return torch.softmax(logits, dim=1).numpy()


class OnnxClassifier:
    backend = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        from .export import decode_metadata

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            meta = decode_metadata(self.session.get_modelmeta().custom_metadata_map)
            self.preprocess = PreprocessConfig.from_dict(meta["preprocess_config"])
        except Exception as exc:  # ONNX Runtime raises its own error types on damaged or foreign files
            raise DataError(f"model file {path} is not an ONNX export of this repo ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]}); export it again (python -m ecg_utils.export) or use "
                            "the published model") from exc

    def predict_proba(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {"x": np.ascontiguousarray(x, np.float32),
                                         "rr": np.ascontiguousarray(rr, np.float32)})[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def load_classifier(path: str | Path, threads: int | None = None) -> Classifier:
    """A classifier from `best.pt` (PyTorch) or `model.onnx` (ONNX Runtime), chosen by the file's suffix.

    `threads` caps the CPU threads inference uses (None: the backend's default, all cores).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no model at {path}: pass a checkpoint (runs/<protocol>_<model>/best.pt) or an ONNX export")
    if path.suffix == ".onnx":
        return OnnxClassifier(path, threads)
    if path.suffix in (".pt", ".pth"):
        return TorchClassifier(path, threads)
    raise DataError(f"{path}: unknown model file type {path.suffix!r}; expected .pt (PyTorch) or .onnx")
