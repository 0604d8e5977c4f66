"""The teacher of a distilled model: its members' class probabilities for the beats the student trains on.

A published ensemble costs its members' time at every use; a student trained to give what they agree on costs one
model's (`TrainConfig.distil_weight`). The teacher's probabilities are those of its members averaged, each beat
classified from its sequence as the members were trained to (`training.predict_proba`); a student resumes only
under the teacher it began with (`teacher_name` goes into its configuration).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ecg_utils.data.aami import CLASSES
from ecg_utils.model.checkpoint import load_model
from ecg_utils.model.sources import BeatSource
from ecg_utils.model.training import predict_proba


def teacher_proba(members: Sequence[str | Path], data: BeatSource, rows: np.ndarray, threads: int = 1) -> np.ndarray:
    """(len(data), 5): the members' mean probabilities on `rows`, NaN on every other row (so that nothing can read a
    row the teacher did not classify)."""
    if not members:
        raise ValueError("a teacher needs at least one member checkpoint")
    torch.set_num_threads(threads)
    out = np.full((len(data), len(CLASSES)), np.nan, np.float32)
    rows = np.asarray(rows)
    total = np.zeros((len(rows), len(CLASSES)), np.float64)
    for path in members:
        model, _ = load_model(path)
        total += predict_proba(model, data, rows)
    out[rows] = total / len(members)
    return out


def teacher_name(members: Sequence[str | Path], proba: np.ndarray) -> str:
    """What a student's configuration records of its teacher: the members' run folders and a digest of the
    probabilities (another training of the same folders is another teacher)."""
    digest = hashlib.sha256(np.ascontiguousarray(np.nan_to_num(proba, nan=-1.0), np.float32).tobytes()).hexdigest()
    names = ", ".join(Path(m).parent.name for m in members)
    return f"mean of {len(members)}: {names}; sha256 {digest[:16]}"

