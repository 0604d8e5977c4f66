"""One interface over a trained model, whichever file holds it: a PyTorch checkpoint or an ONNX export.

PyTorch is imported only for a checkpoint, so a device that runs the ONNX export needs ONNX Runtime
and numpy, not PyTorch.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ecg_utils.atomic import atomic_open
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError
from ecg_utils.model.batchnorm import Adaptation
from ecg_utils.signal.context import RunningTemplate
from ecg_utils.signal.preprocess import PreprocessConfig, rr_names


class Classifier(Protocol):
    preprocess: PreprocessConfig
    backend: str
    context: int  # beats each classification reads: the current one and context - 1 before it
    dim: int  # length of a beat's encoding
    rhythm: bool  # whether the model reads the rhythm pair of RR features (`preprocess.rr_names`)
    adaptation: Adaptation | None  # the model's setting for a whole record (None: it is used as trained)

    def run(self, x: np.ndarray, rr: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n, 5), encodings (n, dim)) of n consecutive beats of one record, model inputs x
        (n, 2, window) and RR features rr (n, len(rr_names(rhythm))), whose predecessors' encodings are
        `history` (context - 1, dim)."""
        ...

    def adapt(self, x: np.ndarray, rr: np.ndarray, adaptation: Adaptation) -> Classifier:
        """This model with its batch norms adapted to one record whose beats' inputs are x and rr (as `run` takes
        them: the record's beats in order, all of them or those its statistics are measured on), reading nothing
        else."""
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
        self.trained = model
        self.model = inference_form(model).eval()
        self.preprocess = ckpt.preprocess
        self.context, self.dim, self.rhythm = self.model.context, self.model.dim, self.model.rhythm
        self.adaptation: Adaptation | None = None  # a checkpoint carries no published setting

    def adapt(self, x: np.ndarray, rr: np.ndarray, adaptation: Adaptation) -> TorchClassifier:
        from ecg_utils.model.adapt import adapt_batchnorm
        from ecg_utils.model.wide import inference_form

        torch = self._torch
        adapted = copy.copy(self)
        adapted.trained = adapt_batchnorm(self.trained, torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                                          torch.from_numpy(np.ascontiguousarray(rr, np.float32)), adaptation.weight,
                                          adaptation.layers, adaptation.max_beats)
        adapted.model = inference_form(adapted.trained).eval()
        return adapted

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
        from ecg_utils.model.export import GRAPH_VERSION, decode_metadata

        self.path, self.threads = Path(path), threads
        try:
            self.session, self._replaced = self._session(str(path))
            meta = decode_metadata(self.session.get_modelmeta().custom_metadata_map)
            self.preprocess = PreprocessConfig.from_dict(meta["preprocess_config"])
            self.context, self.dim = meta["context"], meta["dim"]
            self.rhythm = tuple(meta["rr_features"]) == rr_names(True)
            self._norms = meta.get("norms")  # text, decoded when a record is adapted
            self._adapter_text = meta.get("adapter")  # the rest of what adapting needs (older exports: None)
            self._prepared: tuple[dict[str, Any], dict[str, np.ndarray], list[tuple[Any, list[str]]]] | None = None
            self.adaptation = Adaptation(**meta["adaptation"]) if "adaptation" in meta else None
        except Exception as exc:  # ONNX Runtime raises its own error types on damaged or foreign files
            raise DataError(f"model file {path} is not an ONNX export of this repo ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]}); export it again (python -m ecg_utils.model.export) or use "
                            "the published model") from exc
        if meta["graph"] == 2:  # the same weights, the recurrence unrolled: rewritten without its checkpoint
            raise DataError(f"model file {path} holds graph version 2, and this ecg_utils runs version {GRAPH_VERSION}; "
                            f"upgrade it, weights unchanged (python -m ecg_utils.model.export --upgrade {path} --out "
                            "model.onnx), or use the published model")
        if meta["graph"] != GRAPH_VERSION:
            raise DataError(f"model file {path} holds graph version {meta['graph']}, and this ecg_utils runs version "
                            f"{GRAPH_VERSION}; export it again from its checkpoint (python -m ecg_utils.model.export "
                            "--model best.pt --out model.onnx) or use the published model")
        if tuple(meta["rr_features"]) != rr_names(self.rhythm):
            raise DataError(f"model file {path} reads RR features {meta['rr_features']}, and this ecg_utils computes "
                            f"{list(rr_names(False))} or {list(rr_names(True))}; use the ecg_utils version that "
                            "exported it or export it again")

    def _session(self, model: str | bytes, replaced: dict[str, np.ndarray] | None = None,
                 arena: bool = True) -> tuple[Any, list[Any]]:
        """An ONNX Runtime session with the thread cap, the initialisers named in `replaced` holding its arrays
        instead; and those values, which ONNX Runtime needs alive as long as the session."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        options.enable_cpu_mem_arena = arena
        values = [(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a, np.float32)))
                  for name, a in (replaced or {}).items()]
        for name, value in values:
            options.add_initializer(name, value)
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]), values

    def _adapter(self) -> tuple[dict[str, Any], dict[str, np.ndarray], list[tuple[Any, list[str]]]]:
        """What adapting needs, prepared on the first record and kept: the batch norms' parameters, the graph's own
        weights they were folded into, and for each convolution a session of the graph from `x` to its output that
        takes the earlier convolutions' weights as inputs (so one session serves every record). An export carries
        the weights and graphs in its metadata (`adapter`); for an older one they are cut from the graph here, which
        needs the onnx package (about a second to import)."""
        from ecg_utils.model.batchnorm import decode_adapter, decode_norms

        if self._prepared is not None:
            return self._prepared
        if self._norms is None:
            raise DataError(f"model file {self.path} carries no batch-norm parameters, so it cannot adapt to a record; "
                            "export it again with this ecg_utils (python -m ecg_utils.model.export), or classify "
                            "without adaptation (--no-adapt)")
        norms = decode_norms(self._norms)
        if self._adapter_text is None:
            import onnx

            from ecg_utils.model.export import adapter_parts

            initial, graphs = adapter_parts(onnx.load(str(self.path)), norms)
            prefixes = [(self._session(graph, arena=False)[0], inputs) for graph, inputs in graphs]
        else:
            try:
                initial, graphs = decode_adapter(self._adapter_text)
                prefixes = [(self._session(graph, arena=False)[0], inputs) for graph, inputs in graphs]
            except Exception as exc:  # damaged metadata: JSON, base64 or ONNX Runtime errors of their own types
                raise DataError(f"model file {self.path}: its `adapter` metadata is damaged ({type(exc).__name__}), "
                                "so it cannot adapt to a record; export it again (python -m ecg_utils.model.export), "
                                "or classify without adaptation (--no-adapt)") from exc
        self._prepared = (norms, initial, prefixes)
        return self._prepared

    def adapt(self, x: np.ndarray, rr: np.ndarray, adaptation: Adaptation) -> OnnxClassifier:
        from ecg_utils.model.batchnorm import adapted_weights

        norms, initial, prefixes = self._adapter()

        def run_prefix(i: int, replaced: dict[str, np.ndarray], chunk: np.ndarray) -> np.ndarray:
            session, inputs = prefixes[i]
            feeds = {"x": np.ascontiguousarray(chunk, np.float32)}
            feeds |= {n: np.ascontiguousarray(replaced[n], np.float32) for n in inputs}
            return session.run(None, feeds)[0]

        weights = adapted_weights(run_prefix, initial, norms, np.asarray(x), np.asarray(rr), adaptation)
        adapted = copy.copy(self)
        adapted.session, adapted._replaced = self._session(str(self.path), weights)
        return adapted

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
