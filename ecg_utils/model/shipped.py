"""The published model shipped inside the package: where it is and what it is.

`resources/model.onnx` is the inter-patient CNN–LSTM of the last `make reproduce` (exported by
`ecg_utils.model.publish`); `resources/model.json` holds its fingerprint and published figures, and
`resources/MODEL_CARD.md` says what it is for. `predict`, the web service and the app use it when no
model is named, so classifying a record needs no training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
MODEL_PATH = RESOURCES / "model.onnx"
MODEL_INFO = RESOURCES / "model.json"
MODEL_CARD = RESOURCES / "MODEL_CARD.md"


def sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_info(path: str | Path = MODEL_INFO) -> dict[str, Any]:
    """The shipped model's fingerprint and published figures (`resources/model.json`)."""
    return json.loads(Path(path).read_text())
