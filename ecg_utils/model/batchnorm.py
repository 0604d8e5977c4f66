"""A model adapted to one record's batch-norm statistics without PyTorch: what an export carries for it, and the
adapted weights of the exported graph (numpy and ONNX, no torch).

`adapt.adapt_batchnorm` re-estimates a model's batch norms on a record's own beats (AdaBN) in PyTorch. The exported
graph (`wide.WideModel`) has no batch norm left to re-estimate: each one is folded into the weights before it. A
convolution's output is y = a·z + c, where z is the convolution before its batch norm, a = γ/√(σ² + ε) and
c = β − μ·a; the RR features' batch norm is folded into the projection after it. So the export also writes γ, β,
μ and σ² of every batch norm (and the RR projection they were folded into) to its metadata (`norms`). From those
and the record's statistics of z, measured by running the graph's own prefix up to each convolution, this module
computes the adapted model's folded weights; ONNX Runtime then runs the shipped graph with them in place of its
initialisers, optimised alike. The statistics are measured as `adapt_batchnorm` measures them (every earlier
layer normalised with the record's own statistics, variances unbiased), so both give the same model (tested).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LAYERS = ("rr", "conv", "all")  # the RR features' batch norm, the encoder's convolutions', or both
MAX_BEATS = 4096  # beats the statistics are measured on: evenly spaced over a longer record, so memory is bounded
CHUNK = 32  # beats per run of the graph's prefix while measuring: small keeps its activations in cache and memory low


@dataclass(frozen=True)
class Adaptation:
    """Which batch norms take the record's statistics (`layers`), and the record's share of them (`weight`)."""

    layers: str
    weight: float
    max_beats: int = MAX_BEATS

    def __post_init__(self) -> None:
        if self.layers not in LAYERS:
            raise ValueError(f"layers={self.layers!r}: choose one of {', '.join(LAYERS)}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight={self.weight}: the record's share of the statistics must lie in [0, 1]")
        if self.max_beats < 2:
            raise ValueError(f"max_beats={self.max_beats}: the statistics need at least 2 beats")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measured_rows(n: int, max_beats: int = MAX_BEATS) -> np.ndarray:
    """The beats of an n-beat record the statistics are measured on: all, or `max_beats` evenly spaced."""
    if n <= max_beats:
        return np.arange(n)
    return np.linspace(0, n - 1, max_beats).round().astype(np.int64)


def pack(a: np.ndarray) -> dict[str, Any]:
    """A float32 array as JSON: its shape and its bytes in base64 (exact, and a quarter the size of decimals)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode()}


def unpack(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["f32"]), dtype="<f4").reshape(d["shape"]).astype(np.float64)


def pack_norms(norms: dict[str, Any]) -> dict[str, Any]:
    """`wide.WideModel.norms` as JSON: every array packed, names and ε as they are."""
    def packed(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: pack(v) if isinstance(v, np.ndarray) else v for k, v in entry.items()}

    return {"convs": [packed(c) for c in norms["convs"]], "rr": packed(norms["rr"])}


def decode_norms(text: str) -> dict[str, Any]:
    """The export's `norms` metadata with its arrays as float64 numpy arrays."""
    raw = json.loads(text)
    convs = [{**{k: unpack(c[k]) for k in ("gamma", "beta", "mean", "var")}, "w": c["w"], "b": c["b"],
              "eps": float(c["eps"])} for c in raw["convs"]]
    rr = raw["rr"]
    return {"convs": convs, "rr": {**{k: unpack(rr[k]) for k in ("gamma", "beta", "mean", "var", "w_rr",
                                                                    "to_feats")},
                                   "eps": float(rr["eps"]), "project_rr": rr["project_rr"],
                                   "project_b": rr["project_b"]}}


def pack_adapter(initial: dict[str, np.ndarray], prefixes: list[tuple[bytes, list[str]]]) -> str:
    """The rest of what adapting needs (`export.adapter_parts`) as the export's `adapter` metadata: the graph's weights
    the batch norms were folded into, and each convolution's prefix graph (serialised ONNX, base64) with the names of
    the weights it takes as inputs. Shipped with the model, so that adapting needs ONNX Runtime only."""
    return json.dumps({"initial": {name: pack(a) for name, a in initial.items()},
                       "prefixes": [{"model": base64.b64encode(graph).decode(), "inputs": inputs}
                                    for graph, inputs in prefixes]})


def decode_adapter(text: str) -> tuple[dict[str, np.ndarray], list[tuple[bytes, list[str]]]]:
    """`pack_adapter`'s text back: the initial weights (float64) and the prefix graphs (bytes) with their inputs."""
    raw = json.loads(text)
    return ({name: unpack(a) for name, a in raw["initial"].items()},
            [(base64.b64decode(p["model"]), list(p["inputs"])) for p in raw["prefixes"]])


def _folded(w: np.ndarray, norm: dict[str, Any], mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The graph's folded convolution weights `w` (trained statistics) refolded with statistics (mean, var) of z."""
    trained = norm["gamma"] / np.sqrt(norm["var"] + norm["eps"])
    scale = norm["gamma"] / np.sqrt(var + norm["eps"])
    ratio = np.divide(scale, trained, out=np.ones_like(scale), where=trained != 0)
    return w * ratio[:, None, None], norm["beta"] - mean * scale


def rr_log_features(rr: np.ndarray, to_feats: np.ndarray) -> np.ndarray:
    """The RR features the RR batch norm normalises: log intervals and log ratios (`architectures.RRFeatures`)."""
    return np.log(np.clip(rr[:, :to_feats.shape[0]].astype(np.float64), 1e-2, None)) @ to_feats


def adapted_rr(norms: dict[str, Any], project_b: np.ndarray, rr: np.ndarray,
               weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The RR projection (n_rr, members * dim) and bias (members, 1, dim) with the RR batch norm adapted."""
    n = norms["rr"]
    f = rr_log_features(rr, n["to_feats"])
    mean, var = f.mean(axis=0), f.var(axis=0, ddof=1)  # the same features for every member
    members = n["gamma"].shape[0]
    new_mean = weight * mean + (1 - weight) * n["mean"]  # (members, features)
    new_var = weight * var + (1 - weight) * n["var"]
    scale = n["gamma"] / np.sqrt(new_var + n["eps"])
    old_shift = n["beta"] - n["mean"] * n["gamma"] / np.sqrt(n["var"] + n["eps"])
    shift = n["beta"] - new_mean * scale
    w_rr = n["w_rr"]  # (members, dim, features)
    project_rr = np.concatenate([(n["to_feats"] * scale[m]) @ w_rr[m].T for m in range(members)], axis=1)
    bias = project_b + np.einsum("mdf,mf->md", w_rr, shift - old_shift)[:, None, :]
    return project_rr, bias


class StatisticsMeter:
    """Per-channel mean and variance of (n, channels, length) tensors given in pieces, accumulated in float64."""

    def __init__(self) -> None:
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def add(self, y: np.ndarray) -> None:
        self.count += y.shape[0] * y.shape[2]  # sums in float64 without a float64 copy of y
        self.total = self.total + y.sum(axis=(0, 2), dtype=np.float64)
        self.squares = self.squares + np.einsum("ncl,ncl->c", y, y, dtype=np.float64)

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, biased variance (what training-mode batch norm normalises with) and unbiased (what it stores)."""
        mean = self.total / self.count
        var = np.maximum(self.squares / self.count - mean * mean, 0.0)
        return mean, var, var * self.count / max(self.count - 1, 1)


def adapted_weights(run_prefix: Any, initial: dict[str, np.ndarray], norms: dict[str, Any], x: np.ndarray,
                    rr: np.ndarray, adaptation: Adaptation) -> dict[str, np.ndarray]:
    """The graph's adapted initialisers (name → float32 array) for a record whose beats are x (n, 2, window) and
    rr (n, RR columns).

    `run_prefix(i, replaced, x)` runs the graph up to convolution i (the i-th entry of `norms["convs"]`) on beats x
    with the initialisers in `replaced` in place of the graph's, and returns that convolution's output (before its
    ReLU). `initial`: the graph's own initialisers of the convolutions' weights and the RR projection.
    """
    rows = measured_rows(len(x), adaptation.max_beats)
    if len(rows) < 2:
        raise ValueError(f"{len(rows)} beats: a record's statistics need at least 2 beats")
    x, rr, w = x[rows], rr[rows], adaptation.weight
    during: dict[str, np.ndarray] = {}  # every earlier layer normalised with the record's own statistics
    final: dict[str, np.ndarray] = {}
    if adaptation.layers in ("conv", "all"):
        for i, norm in enumerate(norms["convs"]):
            meter = StatisticsMeter()
            for start in range(0, len(x), CHUNK):
                meter.add(run_prefix(i, during, x[start:start + CHUNK]))
            mean_y, var_y, unbiased_y = meter.moments()
            a = norm["gamma"] / np.sqrt(norm["var"] + norm["eps"])  # y = a z + c with the trained statistics
            c = norm["beta"] - norm["mean"] * a
            safe = np.where(a != 0, a, 1.0)
            mean_z = np.where(a != 0, (mean_y - c) / safe, norm["mean"])
            var_z = np.where(a != 0, var_y / safe ** 2, norm["var"])
            unbiased_z = np.where(a != 0, unbiased_y / safe ** 2, norm["var"])
            wi = initial[norm["w"]]  # the convolution has no bias of its own: the folded one is β − μ·a
            during[norm["w"]], during[norm["b"]] = (v.astype(np.float32) for v in _folded(wi, norm, mean_z, var_z))
            mean = w * mean_z + (1 - w) * norm["mean"]
            var = w * unbiased_z + (1 - w) * norm["var"]
            final[norm["w"]], final[norm["b"]] = (v.astype(np.float32) for v in _folded(wi, norm, mean, var))
    if adaptation.layers in ("rr", "all"):
        r = norms["rr"]
        project_rr, project_b = adapted_rr(norms, initial[r["project_b"]], rr, w)
        final[r["project_rr"]], final[r["project_b"]] = project_rr.astype(np.float32), project_b.astype(np.float32)
    return final
