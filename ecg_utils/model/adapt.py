"""Label-free adaptation to one patient: batch-norm statistics re-estimated from the record's own beats (AdaBN).

A model trained on DS1 normalises every layer with its training patients' statistics. AdaBN (Li et al., Pattern
Recognition 2018) replaces them, in whole or in part, with the statistics of the test record's own beats, so a
patient whose RR ratios or QRS shapes sit away from the training patients' is measured against themselves. The
inputs are all it reads: there is no argument through which a label could enter.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

LAYERS = ("rr", "conv", "all")  # the RR features' batch norm, the encoder's convolutions', or both
MAX_BEATS = 4096  # beats the statistics are measured on: evenly spaced over a longer record, so memory is bounded


def batchnorms(model: nn.Module, layers: str) -> list[nn.BatchNorm1d]:
    """The model's batch-norm layers of one kind (every member's, for an ensemble)."""
    if layers not in LAYERS:
        raise ValueError(f"layers={layers!r}: choose one of {', '.join(LAYERS)}")
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm1d):
            is_rr = name == "rr.norm" or name.endswith(".rr.norm")
            if layers == "all" or (layers == "rr") == is_rr:
                found.append(module)
    return found


def measured_rows(n: int, max_beats: int = MAX_BEATS) -> np.ndarray:
    """The beats of an n-beat record the statistics are measured on: all, or `max_beats` evenly spaced."""
    if n <= max_beats:
        return np.arange(n)
    return np.linspace(0, n - 1, max_beats).round().astype(np.int64)


def adapt_batchnorm(model: Any, x: torch.Tensor, rr: torch.Tensor, weight: float, layers: str = "rr") -> Any:
    """A copy of `model` whose chosen batch norms use `weight` x the record's statistics + (1 - weight) x the
    training ones, measured on the record's beats x (n, channels, window) and rr (n, RR columns) in one pass.

    In that pass every chosen layer normalises with the record's own statistics, so each layer's statistics are
    measured on what a fully adapted model (weight 1) feeds it; with a smaller weight they are blended afterwards.
    Weight 0 gives the model unchanged.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight={weight}: the record's share of the statistics must lie in [0, 1]")
    if len(x) < 2:
        raise ValueError(f"{len(x)} beats: a record's statistics need at least 2 beats")
    adapted = copy.deepcopy(model).eval()
    norms = batchnorms(adapted, layers)
    trained = [(b.running_mean.clone(), b.running_var.clone(), b.momentum) for b in norms]
    for b in norms:
        b.reset_running_stats()
        b.momentum = None  # a cumulative average: after one pass, exactly this batch's statistics
        b.train()
    rows = torch.from_numpy(measured_rows(len(x)))
    with torch.no_grad():
        adapted.encode(x[rows], rr[rows])
    for b, (mean, var, momentum) in zip(norms, trained):
        b.running_mean.mul_(weight).add_((1 - weight) * mean)
        b.running_var.mul_(weight).add_((1 - weight) * var)
        b.momentum = momentum
    return adapted.eval()
