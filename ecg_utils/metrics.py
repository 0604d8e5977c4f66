"""Classification figures computed the same way everywhere (training, selection, reports)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the classes present in `y_true`.

    A class absent from the reference (no Q beats among the inter-patient validation records)
    has no defined recall; counting it as F1 = 0 would only add a constant penalty.
    """
    labels = np.unique(y_true)
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
