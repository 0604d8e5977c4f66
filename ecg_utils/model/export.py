"""Export a trained checkpoint to ONNX for edge devices: `python -m ecg_utils.model.export --model CKPT --out model.onnx`.

The graph is the model's inference form (`wide.WideModel`: an ensemble's members in wide operators, each beat
encoded once) over a chunk of n consecutive beats of one record, n dynamic. Inputs: `x` (n, 2, window), each
beat beside its running template (`context.RunningTemplate`); `rr` (n, 4 or 6), the RR features it reads (metadata `rr_features`); and, for a
sequence model, `history` (context - 1, dim), the encodings of the beats before the chunk's first (zeros
before a record's first beat). Outputs: `proba` (n, 5), the class probabilities, and `encoding` (n, dim):
the last context - 1 of them are the next chunk's history. What a device needs to prepare the inputs
travels inside the file as metadata: graph version, class order, sampling rate, window, context length,
encoding size, the whole preprocessing configuration and the RR feature names; and what adapting the model to a
whole record needs: the folded batch norms' parameters (`norms`) and the published setting (`adaptation`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ecg_utils import __version__
from ecg_utils.atomic import atomic_open
from ecg_utils.data.aami import CLASSES
from ecg_utils.errors import DataError
from ecg_utils.model.batchnorm import Adaptation, decode_norms, pack_adapter, pack_norms
from ecg_utils.model.checkpoint import Checkpoint, load_model
from ecg_utils.signal.preprocess import rr_names

# 3: as 2, each member's recurrence one native LSTM/GRU operator; 2: (x, rr, history) -> (proba, encoding) over a
# chunk of beats, the recurrence unrolled (`upgrade_onnx` moves such a file to 3, its weights as they are);
# 1 (before): (x, rr, context) -> (logits, encoding), one window of context per beat
GRAPH_VERSION = 3
# The names the fused model's weights keep in the graph (`wide.WideModel`), as version 2 stored them.
_VERSION2_WEIGHTS = re.compile(r"(conv|res)\d+_[wb]|project_(w|rr|b)|[wb]_(ih|hh)|head[12]_[wb]")


def _metadata(ckpt: Checkpoint, model: Any) -> dict[str, str]:
    pre = ckpt.preprocess_config
    config = ckpt.preprocess
    return {
        "graph": str(GRAPH_VERSION),
        "classes": json.dumps(list(CLASSES)),
        "fs": str(config.fs),
        "window": str(config.window),
        "before": str(config.before),
        "normalize": config.normalize,
        "context": str(model.context),
        "dim": str(model.dim),
        "rr_features": json.dumps(list(rr_names(model.rhythm))),
        "preprocess_config": json.dumps(pre),
        "model": ckpt.model_name,
        "train_config": json.dumps(ckpt.train_config),
        "protocol": ckpt.protocol,
        "ecg_utils_version": __version__,
    }


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def export_onnx(checkpoint: str | Path, out: str | Path, adaptation: Adaptation | None = None) -> Path:
    """Write `checkpoint`'s model as ONNX (dynamic batch, metadata embedded), atomically.

    The fused form also writes its batch norms' parameters (`norms`), with which ONNX Runtime can adapt the model to
    a record's own statistics (`batchnorm`); `adaptation` is the setting classifying a whole record uses by default.
    """
    from ecg_utils.model.wide import inference_form

    model, ckpt = load_model(checkpoint)
    meta = _metadata(ckpt, model)
    wide = inference_form(model).eval()
    norms = getattr(wide, "norms", None)
    if norms is not None:
        meta["norms"] = json.dumps(pack_norms(norms))
    if adaptation is not None:
        if norms is None:
            raise ValueError(f"{checkpoint}: its model has no fused form with batch norms to adapt; export it "
                             "without an adaptation")
        meta["adaptation"] = json.dumps(adaptation.to_dict())
    return _write(wide, meta, out)


def _write(wide: Any, meta: dict[str, str], out: str | Path) -> Path:
    """The inference form `wide` as ONNX with metadata `meta`, dynamic batch, written atomically."""
    import onnx
    import torch

    inputs = example_inputs(wide, int(meta["window"]), 3)
    names = ["x", "rr", "history"][:len(inputs)]
    batch = torch.export.Dim("batch")
    dynamic = {"x": {0: batch}, "rr": {0: batch}, "history": None}
    with warnings.catch_warnings(), _quiet("torch.onnx"):  # exporter chatter (e.g. torchvision absent)
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wide, tuple(torch.from_numpy(a) for a in inputs), dynamo=True, input_names=names,
                                    output_names=["proba", "encoding"],
                                    dynamic_shapes={n: dynamic[n] for n in names}, optimize=True, verbose=False)
    proto = program.model_proto
    _strip_debug_info(proto)
    if "norms" in meta:  # what adapting needs beyond the norms, so that it needs ONNX Runtime only
        meta = {**meta, "adapter": pack_adapter(*adapter_parts(proto, decode_norms(meta["norms"])))}
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        handle.write(proto.SerializeToString())
    return out


def upgrade_onnx(path: str | Path, out: str | Path) -> tuple[Path, float]:
    """An older export brought to this ecg_utils' form, its weights and metadata as they were (no checkpoint needed):
    graph version 2 rewritten as this version's graph, or a version-3 export without the `adapter` metadata given it
    (its graph untouched). Returns the file written and the largest difference of the two files' outputs on random
    beats at 1 and 256 beats, checked before `out` is replaced (it may be `path`)."""
    import onnx
    from onnx import numpy_helper

    from ecg_utils.model.wide import WideModel

    try:
        proto = onnx.load(str(path))
        meta = {p.key: p.value for p in proto.metadata_props}
        version = meta["graph"]
    except Exception as exc:  # onnx raises its own error types on damaged or foreign files
        raise DataError(f"{path} is not an ONNX export of this repo ({type(exc).__name__}); nothing to upgrade") from exc
    if version == str(GRAPH_VERSION) and "norms" in meta and "adapter" not in meta:
        meta["adapter"] = pack_adapter(*adapter_parts(proto, decode_norms(meta["norms"])))
        meta["ecg_utils_version"] = __version__
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, meta)
        return _replace_checked(path, out, lambda new: new.write_bytes(proto.SerializeToString()))
    if version != "2":
        raise DataError(f"{path} holds graph version {version} in this ecg_utils' form already, or one too old to "
                        f"upgrade (only version 2, and version {GRAPH_VERSION} without the `adapter` metadata, can be): "
                        "export older files again from their checkpoint")
    arrays = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer if _VERSION2_WEIGHTS.fullmatch(t.name)}
    convs = {n.input[1]: n for n in proto.graph.node if n.op_type == "Conv"}
    pools = [n for n in proto.graph.node if n.op_type == "MaxPool"]
    specs = []
    for i, pool in enumerate(pools):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in convs[f"conv{i}_w"].attribute}
        kernel = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}["kernel_shape"][0]
        specs.append((attrs.get("strides", [1])[0], attrs.get("pads", [0])[0], kernel, f"res{i}_w" in arrays))
    context, rhythm = int(meta["context"]), tuple(json.loads(meta["rr_features"])) == rr_names(True)
    wide = WideModel.from_version2(arrays, specs, context, rhythm)
    meta |= {"graph": str(GRAPH_VERSION), "ecg_utils_version": __version__}
    return _replace_checked(path, out, lambda new: _write(wide, meta, new))


def _replace_checked(path: str | Path, out: str | Path, write: Any) -> tuple[Path, float]:
    """`write(new)` a file beside `out`, and move it onto `out` (which may be `path`) only if its outputs are those of
    `path` within 1e-5 on random beats at 1 and 256 beats; returns `out` and that difference."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # beside `out`, which may be `path` itself
        new = Path(tmp) / out.name
        write(new)
        diff = max(onnx_difference(path, new, n) for n in (1, 256))
        if diff > 1e-5:
            raise RuntimeError(f"the upgraded graph differs from {path} by {diff:.1e} (limit 1e-5); keep the old file")
        os.replace(new, out)
    return out, diff


def onnx_difference(a: str | Path, b: str | Path, n: int, seed: int = 0) -> float:
    """Largest |difference| between two exports' probabilities and encodings for a chunk of `n` random beats."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (a, b)]
    shapes = {i.name: i.shape for i in sessions[0].get_inputs()}
    rng = np.random.default_rng(seed)
    feeds = {"x": rng.standard_normal((n, *shapes["x"][1:])).astype(np.float32),
             "rr": rng.uniform(0.4, 1.5, (n, shapes["rr"][1])).astype(np.float32)}
    if "history" in shapes:
        feeds["history"] = rng.standard_normal(shapes["history"]).astype(np.float32)
    first, second = (s.run(None, feeds) for s in sessions)
    return float(max(np.abs(u - v).max() for u, v in zip(first, second)))


def example_inputs(model: Any, window: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the graph's shapes for n beats: x, rr and (for a sequence model) history."""
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal((n, 2, window)).astype(np.float32),
              rng.uniform(0.4, 1.5, (n, len(rr_names(model.rhythm)))).astype(np.float32)]
    if model.context > 1:
        inputs.append(rng.standard_normal((model.context - 1, model.dim)).astype(np.float32))
    return inputs


def adapter_parts(proto: Any, norms: dict[str, Any]) -> tuple[dict[str, np.ndarray], list[tuple[bytes, list[str]]]]:
    """What adapting the graph `proto` to a record needs besides its batch norms (`norms`, decoded): the graph's own
    weights they were folded into (float64), and for each convolution the graph from `x` to its output that takes the
    earlier convolutions' weights as inputs (serialised), so one session per convolution serves every record."""
    import onnx
    from onnx import helper, numpy_helper

    names = {c["w"] for c in norms["convs"]} | {norms["rr"]["project_rr"], norms["rr"]["project_b"]}
    initial = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in proto.graph.initializer
               if t.name in names}
    outputs = {node.input[1]: node.output[0] for node in proto.graph.node if node.op_type == "Conv"}
    prefixes = []
    for i, conv in enumerate(norms["convs"]):
        prefix = onnx.utils.Extractor(proto).extract_model(["x"], [outputs[conv["w"]]])
        earlier = {n for c in norms["convs"][:i] for n in (c["w"], c["b"])}
        moved = [t for t in prefix.graph.initializer if t.name in earlier]
        kept = [t for t in prefix.graph.initializer if t.name not in earlier]
        del prefix.graph.initializer[:]
        prefix.graph.initializer.extend(kept)
        prefix.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in moved)
        prefixes.append((prefix.SerializeToString(), [t.name for t in moved]))
    return initial, prefixes


def _strip_debug_info(proto: Any) -> None:
    """Drop the exporter's per-node debug records (FX node names, Python stack traces with the exporting
    machine's file paths), in subgraphs too: a shipped model should not carry them, and without them the same
    weights export to the same bytes from any folder."""
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for item in [*graph.node, *graph.value_info, *graph.input, *graph.output, *graph.initializer]:
            if hasattr(item, "metadata_props"):
                del item.metadata_props[:]
            if hasattr(item, "doc_string"):
                item.doc_string = ""
        graphs.extend(a.g for node in graph.node for a in node.attribute if a.HasField("g"))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported model, JSON fields decoded."""
    import onnx

    return decode_metadata({p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props})


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """Metadata as stored (all strings) to values: JSON fields decoded, numbers parsed."""
    props = dict(props)
    for key in ("classes", "rr_features", "preprocess_config", "train_config"):
        props[key] = json.loads(props[key])
    for key in ("window", "before", "context", "dim"):
        props[key] = int(props[key])
    props["graph"] = int(props.get("graph", 1))
    if "adaptation" in props:
        props["adaptation"] = json.loads(props["adaptation"])
    props["fs"] = float(props["fs"])
    return props


def max_difference(checkpoint: str | Path, onnx_path: str | Path, n: int, seed: int = 0) -> float:
    """Largest |PyTorch - ONNX Runtime| over probabilities and encodings for a chunk of `n` random beats, the
    PyTorch side being the model as trained (one window of context per beat, member by member): the parity
    check after an export."""
    import onnxruntime as ort
    import torch

    from ecg_utils.model.wide import reference

    model, _ = load_model(checkpoint)
    inputs = example_inputs(model, read_metadata(onnx_path)["window"], n, seed)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = session.run(None, dict(zip(["x", "rr", "history"], inputs)))
    ref = reference(model, *(torch.from_numpy(a) for a in inputs))
    return float(max(np.abs(o - r.numpy()).max() for o, r in zip(ours, ref)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="checkpoint (best.pt of a run folder)")
    source.add_argument("--upgrade", type=Path, metavar="ONNX",
                        help=f"an older export to bring to this version's form (graph version 2 rewritten as "
                             f"{GRAPH_VERSION}, or a version {GRAPH_VERSION} without the `adapter` metadata given it), "
                             "weights unchanged")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    args = parser.parse_args(argv)
    given = args.model or args.upgrade
    if not given.is_file():
        fix = ("no checkpoint at {}; train one with notebook 02 (runs/<protocol>_<model>/best.pt)" if args.model
               else "no file at {}; give the path of an older ONNX export of this repo")
        print(f"error: {fix.format(given)}", file=sys.stderr)
        return 1
    if args.upgrade:
        try:
            out, diff = upgrade_onnx(args.upgrade, args.out)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB, graph version {GRAPH_VERSION}); max |difference| vs "
              f"{args.upgrade} on random inputs, batch 1 and 256: {diff:.1e}")
        return 0
    out = export_onnx(args.model, args.out)
    meta = read_metadata(out)
    diff = max(max_difference(args.model, out, n) for n in (1, 256))
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB, {meta['model']}, {meta['protocol']}); "
          f"max |difference| vs PyTorch on random inputs, batch 1 and 256: {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
