"""Export a trained checkpoint to ONNX for edge devices: `python -m ecg_utils.export --model CKPT --out model.onnx`.

The graph has a dynamic batch axis and takes the same two inputs as the PyTorch model: beat windows
`x` (batch, 1, window) and RR features `rr` (batch, 4, seconds); it returns logits (batch, 5). What
a device needs to prepare those inputs travels inside the file as metadata: class order, sampling
rate, window, the whole preprocessing configuration and the RR feature names.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .aami import CLASSES
from .atomic import atomic_open
from .checkpoint import Checkpoint, load_model
from .preprocess import RR_FEATURES


def _metadata(ckpt: Checkpoint) -> dict[str, str]:
    pre = ckpt.preprocess_config
    config = ckpt.preprocess
    return {
        "classes": json.dumps(list(CLASSES)),
        "fs": str(config.fs),
        "window": str(config.window),
        "before": str(config.before),
        "normalize": config.normalize,
        "rr_features": json.dumps(list(RR_FEATURES)),
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


def export_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """Write `checkpoint`'s model as ONNX (dynamic batch, metadata embedded), atomically."""
    import onnx
    import torch

    model, ckpt = load_model(checkpoint)
    meta = _metadata(ckpt)
    window = int(meta["window"])
    x, rr = torch.zeros(2, 1, window), torch.full((2, len(RR_FEATURES)), 0.8)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), _quiet("torch.onnx"):  # exporter chatter (e.g. torchvision absent)
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x, rr), dynamo=True, input_names=["x", "rr"], output_names=["logits"],
                                    dynamic_shapes={"x": {0: batch}, "rr": {0: batch}}, optimize=True,
                                    verbose=False)
    proto = program.model_proto
    _strip_debug_info(proto)
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        handle.write(proto.SerializeToString())
    return out


def _strip_debug_info(proto: Any) -> None:
    """Drop the exporter's per-node debug records (FX node names, Python stack traces with the exporting
    machine's file paths): a shipped model should not carry them, and without them the same weights export
    to the same bytes from any folder."""
    graph = proto.graph
    for item in [*graph.node, *graph.value_info, *graph.input, *graph.output, *graph.initializer]:
        if hasattr(item, "metadata_props"):
            del item.metadata_props[:]
        if hasattr(item, "doc_string"):
            item.doc_string = ""


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported model, JSON fields decoded."""
    import onnx

    return decode_metadata({p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props})


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """Metadata as stored (all strings) to values: JSON fields decoded, numbers parsed."""
    props = dict(props)
    for key in ("classes", "rr_features", "preprocess_config", "train_config"):
        props[key] = json.loads(props[key])
    for key in ("window", "before"):
        props[key] = int(props[key])
    props["fs"] = float(props["fs"])
    return props


def max_logit_difference(checkpoint: str | Path, onnx_path: str | Path, x: np.ndarray, rr: np.ndarray) -> float:
    """Largest |PyTorch - ONNX Runtime| logit over a batch: the parity check after an export."""
    import onnxruntime as ort
    import torch

    model, _ = load_model(checkpoint)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = session.run(None, {"x": x.astype(np.float32), "rr": rr.astype(np.float32)})[0]
    with torch.inference_mode():
        ref = model(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(rr.astype(np.float32))).numpy()
    return float(np.abs(ours - ref).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (best.pt of a run folder)")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: no checkpoint at {args.model}; train one with notebook 02 (runs/<protocol>_<model>/best.pt)",
              file=sys.stderr)
        return 1
    out = export_onnx(args.model, args.out)
    meta = read_metadata(out)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, meta["window"])).astype(np.float32)
    rr = rng.uniform(0.4, 1.5, (64, len(RR_FEATURES))).astype(np.float32)
    diff = max_logit_difference(args.model, out, x, rr)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB, {meta['model']}, {meta['protocol']}); "
          f"max |logit difference| vs PyTorch on 64 random inputs: {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
