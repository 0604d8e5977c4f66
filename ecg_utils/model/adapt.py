"""Label-free adaptation to one patient, from the record's own beats: batch-norm statistics re-estimated (AdaBN),
or the beats grouped into families whose classes are made consistent.

A model trained on DS1 normalises every layer with its training patients' statistics. AdaBN (Li et al., Pattern
Recognition 2018) replaces them, in whole or in part, with the statistics of the test record's own beats, so a
patient whose RR ratios or QRS shapes sit away from the training patients' is measured against themselves.
Families work as a Holter analyst's software does: the record's beats are clustered by what the model sees of them
(their encodings: shape beside the patient's template, and RR), and each beat's probabilities are drawn towards
its family's mean, so that one odd beat of a family is not called alone. The inputs and the model's own outputs
are all either reads: there is no argument through which a label could enter.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ecg_utils.model.batchnorm import LAYERS, MAX_BEATS, measured_rows


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


def adapt_batchnorm(model: Any, x: torch.Tensor, rr: torch.Tensor, weight: float, layers: str = "rr",
                    max_beats: int = MAX_BEATS) -> Any:
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
    rows = torch.from_numpy(measured_rows(len(x), max_beats))
    with torch.no_grad():
        adapted.encode(x[rows], rr[rows])
    for b, (mean, var, momentum) in zip(norms, trained):
        b.running_mean.mul_(weight).add_((1 - weight) * mean)
        b.running_var.mul_(weight).add_((1 - weight) * var)
        b.momentum = momentum
    return adapted.eval()


def families(encodings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Each beat's family (0 to k - 1): k-means over one record's beat encodings (n, dim); a record of fewer than
    k beats gives each beat its own family. Mini-batch k-means keeps a 24-hour record's cost linear."""
    from sklearn.cluster import MiniBatchKMeans

    if k < 1:
        raise ValueError(f"families={k}: need at least 1")
    if len(encodings) <= k:
        return np.arange(len(encodings))
    return MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit_predict(encodings)


def smooth_in_families(proba: np.ndarray, family: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x each beat's class probabilities + weight x the mean of its family's."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight={weight}: the family's share must lie in [0, 1]")
    sums = np.zeros((family.max() + 1, proba.shape[1]))
    np.add.at(sums, family, proba)
    means = sums / np.bincount(family)[:, None]
    return ((1 - weight) * proba + weight * means[family]).astype(proba.dtype)
