"""One interface over a trained model, whichever file holds it: a PyTorch checkpoint or an ONNX export.

PyTorch is imported only for a checkpoint, so a device that runs the ONNX export needs ONNX Runtime
and numpy, not PyTorch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from ecg_utils.atomic import atomic_open
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError
from ecg_utils.signal.context import RunningTemplate
from ecg_utils.signal.preprocess import PreprocessConfig, rr_names


class Classifier(Protocol):
    preprocess: PreprocessConfig
    backend: str
    context: int  # beats each classification reads: the current one and context - 1 before it
    dim: int  # length of a beat's encoding
    rhythm: bool  # whether the model reads the rhythm pair of RR features (`preprocess.rr_names`)

    def run(self, x: np.ndarray, rr: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n, 5), encodings (n, dim)) of n consecutive beats of one record, model inputs x
        (n, 2, window) and RR features rr (n, len(rr_names(rhythm))), whose predecessors' encodings are
        `history` (context - 1, dim)."""
        ...


class TorchClassifier:
    """A checkpoint run in its inference form (`wide.WideModel`), the graph the ONNX export holds."""

    backend = "torch"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch

        from ecg_utils.model.checkpoint import load_model
        from ecg_utils.model.wide import inference_form

        if threads is not None:
            torch.set_num_threads(threads)  # process-wide in PyTorch
        self._torch = torch
        model, ckpt = load_model(path)  # a damaged or foreign file raises DataError, saying what to do
        self.model = inference_form(model).eval()
        self.preprocess = ckpt.preprocess
        self.context, self.dim, self.rhythm = self.model.context, self.model.dim, self.model.rhythm

    def run(self, x: np.ndarray, rr: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        inputs = [torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (x, rr, history)]
        with torch.inference_mode():
            proba, enc = self.model(*inputs[:2], inputs[2] if self.context > 1 else None)
        return proba.numpy(), enc.numpy()


class OnnxClassifier:
    """The exported graph (`export`) run by ONNX Runtime: one run per chunk of beats."""

    backend = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        from ecg_utils.model.export import GRAPH_VERSION, decode_metadata

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            meta = decode_metadata(self.session.get_modelmeta().custom_metadata_map)
            self.preprocess = PreprocessConfig.from_dict(meta["preprocess_config"])
            self.context, self.dim = meta["context"], meta["dim"]
            self.rhythm = tuple(meta["rr_features"]) == rr_names(True)
        except Exception as exc:  # ONNX Runtime raises its own error types on damaged or foreign files
            raise DataError(f"model file {path} is not an ONNX export of this repo ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]}); export it again (python -m ecg_utils.model.export) or use "
                            "the published model") from exc
        if meta["graph"] != GRAPH_VERSION:
            raise DataError(f"model file {path} holds graph version {meta['graph']}, and this ecg_utils runs version "
                            f"{GRAPH_VERSION}; export it again from its checkpoint (python -m ecg_utils.model.export "
                            "--model best.pt --out model.onnx) or use the published model")
        if tuple(meta["rr_features"]) != rr_names(self.rhythm):
            raise DataError(f"model file {path} reads RR features {meta['rr_features']}, and this ecg_utils computes "
                            f"{list(rr_names(False))} or {list(rr_names(True))}; use the ecg_utils version that "
                            "exported it or export it again")

    def run(self, x: np.ndarray, rr: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = {"x": np.ascontiguousarray(x, np.float32), "rr": np.ascontiguousarray(rr, np.float32)}
        if self.context > 1:
            feeds["history"] = np.ascontiguousarray(history, np.float32)
        proba, enc = self.session.run(None, feeds)
        return proba, enc


class BeatSequence:
    """Classifies the beats of one record or stream, given in order, in batches of any size.

    Keeps what the next beats need and nothing more: the running template's last windows and the last
    `context - 1` encodings (zeros before the first beat, as in training). A beat's class depends on it
    and the beats before it, not on how the beats were batched; each beat is encoded once.
    """

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        cfg = classifier.preprocess
        self.template = RunningTemplate(cfg.template_beats, cfg.window)
        self._history = np.zeros((classifier.context - 1, classifier.dim), np.float32)
        self._n_rr = len(rr_names(classifier.rhythm))

    def __call__(self, windows: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Probabilities (n, 5) for the next n beats' windows (n, window) and RR features (n, the model's columns
        of `preprocess.RR_FEATURES` or all of them)."""
        if len(windows) == 0:
            return np.zeros((0, len(CLASSES)), np.float32)
        proba, enc = self.classifier.run(self.template(windows), rr[:, :self._n_rr], self._history)
        self._history = np.concatenate([self._history, enc])[len(enc):]
        return proba


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


_LOADED: dict[str, Classifier] = {}  # per process: each model, by its file's SHA-256, loaded once


def load_once(model: str | Path | bytes | None, sha: str, suffix: str, threads: int | None = None) -> Classifier:
    """The model whose file has SHA-256 `sha`, loaded on this process's first call and kept, so that an archive's
    tasks load it once per process, not once per record. `model`: its path, or its bytes (a Dask worker plugin
    carries them; written to a temporary file with `suffix` first); None: it must have been loaded here already."""
    if sha not in _LOADED:
        if model is None:
            raise DataError(f"model {sha[:16]} is not loaded in this process; on a Dask worker the model's plugin "
                            "did not run: restart the run so that it registers the plugin again")
        if isinstance(model, bytes):
            local = Path(tempfile.gettempdir()) / f"ecg_utils-model-{sha[:16]}{suffix}"
            if not local.is_file():
                with atomic_open(local) as handle:
                    handle.write(model)
            model = local
        _LOADED[sha] = load_classifier(model, threads)
    return _LOADED[sha]


def loads_in_this_process() -> int:
    """How many models this process has loaded (the tests check that a worker loads the model once)."""
    return len(_LOADED)
