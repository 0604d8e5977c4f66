"""The AAMI EC57 beat classes and the one mapping from MIT-BIH annotation symbols to them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Class order used everywhere: label indices, logits, confusion matrices, reports.
CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
#: Columns of the class probabilities in every prediction table.
PROBA_COLUMNS: list[str] = [f"p_{c}" for c in CLASSES]
CLASS_NAMES: dict[str, str] = {
    "N": "normal and bundle branch block",
    "S": "supraventricular ectopic",
    "V": "ventricular ectopic",
    "F": "fusion of ventricular and normal",
    "Q": "paced, fusion of paced and normal, unclassifiable",
}

#: MIT-BIH beat symbols grouped into AAMI EC57 classes. Every other annotation symbol
#: (rhythm '+', noise '~', artefacts '|', 'x' non-conducted P, comments '"', flutter '[ ] !', ...)
#: is not a beat and never enters the dataset.
AAMI_GROUPS: dict[str, tuple[str, ...]] = {
    "N": ("N", "L", "R", "e", "j"),
    "S": ("A", "a", "J", "S"),
    "V": ("V", "E"),
    "F": ("F",),
    "Q": ("/", "f", "Q"),
}
SYMBOL_TO_CLASS: dict[str, str] = {s: c for c, symbols in AAMI_GROUPS.items() for s in symbols}
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}


def is_beat(symbol: str) -> bool:
    """True for annotation symbols that mark a heartbeat."""
    return symbol in SYMBOL_TO_CLASS


def beat_mask(symbols: Iterable[str]) -> np.ndarray:
    """Boolean mask of the annotations that are beats, for filtering annotation arrays."""
    return np.isin(np.asarray(list(symbols), dtype=str), list(SYMBOL_TO_CLASS))


def to_aami(symbols: Iterable[str]) -> np.ndarray:
    """Map beat symbols to AAMI class letters; a non-beat symbol is a caller bug and raises."""
    symbols = list(symbols)
    unknown = sorted({s for s in symbols if s not in SYMBOL_TO_CLASS})
    if unknown:
        raise ValueError(f"not beat symbols: {unknown}; filter annotations with is_beat() first")
    return np.array([SYMBOL_TO_CLASS[s] for s in symbols], dtype="<U1")


def to_index(labels: Iterable[str]) -> np.ndarray:
    """AAMI class letters to integer targets in CLASSES order."""
    return np.array([CLASS_INDEX[c] for c in labels], dtype=np.int64)
