"""Train/validation/test splits for the two evaluation protocols.

- Intra-patient: a stratified random split of beats. Beats of one patient sit on both sides,
  so a model can memorise patients; this is where the usual 95-99 % accuracies come from.
- Inter-patient (AAMI EC57 practice, de Chazal et al. 2004): train on DS1, test on DS2, no
  patient on both sides. DS1 is dealt into patient-wise cross-validation folds (whole records, every
  fold with S and V beats): each fold validates the model trained on the others, and the fold models
  together are the published ensemble. DS2 is never used for training or for any choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ecg_utils.data.aami import CLASSES

#: de Chazal et al. (2004) record sets; the four paced records are excluded from both.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)  # fmt: skip
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)  # fmt: skip
PACED: tuple[str, ...] = ("102", "104", "107", "217")
PROTOCOLS = ("intra_patient", "inter_patient")


@dataclass(frozen=True)
class Split:
    """Row indices into a BeatDataset for each part, and the records behind each part."""

    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    records: dict[str, list[str]]
    params: dict[str, Any]

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self, label: np.ndarray) -> dict[str, dict[str, int]]:
        """Beats per class in each part, to show and to store beside a trained model."""
        return {part: {c: int((label[idx] == c).sum()) for c in CLASSES} for part, idx in self.parts().items()}

    def to_dict(self, label: np.ndarray) -> dict[str, Any]:
        return {"protocol": self.protocol, "params": self.params, "records": self.records,
                "counts": self.summary(label)}


def _require_nonempty(parts: dict[str, np.ndarray], protocol: str, hint: str) -> None:
    empty = [name for name, idx in parts.items() if len(idx) == 0]
    if empty:
        raise ValueError(f"{protocol} split has empty part(s) {empty}; {hint}")


def intra_patient_split(label: np.ndarray, record: np.ndarray, val_size: float = 0.1,
                        test_size: float = 0.2, seed: int = 0) -> Split:
    """Stratified random beat split (seeded): class shares are the same in every part."""
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValueError(f"need 0 < val_size, test_size and val_size + test_size < 1; got {val_size}, {test_size}")
    idx = np.arange(len(label))
    # Classes with too few beats to stratify (a handful of Q beats in a small subset) fall back to
    # unstratified sampling rather than failing the whole split.
    stratify = label if np.unique(label, return_counts=True)[1].min() >= 3 else None
    rest, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    strat_rest = label[rest] if stratify is not None else None
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), random_state=seed, stratify=strat_rest)
    parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    _require_nonempty(parts, "intra_patient", "the dataset is too small for these fractions")
    recs = sorted(set(record.tolist()))
    return Split("intra_patient", **parts, records={"train": recs, "val": recs, "test": recs},
                 params={"val_size": val_size, "test_size": test_size, "seed": seed})


def patient_folds(label: np.ndarray, record: np.ndarray, candidates: list[str], folds: int,
                  classes: tuple[str, ...] = ("S", "V", "N")) -> list[list[str]]:
    """Deal whole records into `folds` folds so that each holds a fair share of the S, V and N beats.

    Records go in order of their largest share of any of `classes`, each to the fold where the sum of
    squared class shares stays lowest (ties: fewer records, then the lower index): a greedy balance
    that puts the few records carrying most S beats in different folds. Deterministic. (F beats cannot
    be balanced: one DS1 record holds 90 % of them.) A fold without S or V beats would make its
    validation blind to the classes that matter: that raises.
    """
    if not 2 <= folds <= len(candidates):
        raise ValueError(f"folds={folds}: need 2 <= folds <= {len(candidates)} (the records to deal)")
    counts = np.array([[np.sum((record == r) & (label == c)) for c in classes] for r in candidates], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=0), 1)
    load = np.zeros((folds, len(classes)))
    members: list[list[str]] = [[] for _ in range(folds)]
    for i in sorted(range(len(candidates)), key=lambda i: (-shares[i].max(), candidates[i])):
        f = min(range(folds), key=lambda f: (((load[f] + shares[i]) ** 2).sum() - (load[f] ** 2).sum(),
                                             len(members[f]), f))
        load[f] += shares[i]
        members[f].append(candidates[i])
    for f, recs in enumerate(members):
        missing = [c for c in ("S", "V") if c in classes and not counts[[candidates.index(r) for r in recs],
                                                                         classes.index(c)].sum()]
        if missing:
            raise ValueError(f"fold {f} ({recs}) has no {'/'.join(missing)} beats; use fewer folds")
    return [sorted(m) for m in members]


def inter_patient_split(label: np.ndarray, record: np.ndarray, folds: int = 5, fold: int = 0) -> Split:
    """Patient-wise cross-validation on DS1, tested on DS2: fold `fold` of `folds` (whole DS1 records,
    `patient_folds`) validates, the other DS1 records train, DS2 tests.

    Only records present in the dataset take part, so a subset dataset works the same way. Every choice
    (architecture, inputs, epochs) is judged on the validation folds; DS2 is scored once.
    """
    present = set(record.tolist())
    ds1 = [r for r in DS1 if r in present]
    ds2 = [r for r in DS2 if r in present]
    if not 0 <= fold < folds:
        raise ValueError(f"fold={fold}: need 0 <= fold < folds={folds}")
    val_records = patient_folds(label, record, ds1, folds)[fold]
    train_records = [r for r in ds1 if r not in val_records]
    parts = {name: np.flatnonzero(np.isin(record, recs))
             for name, recs in (("train", train_records), ("val", val_records), ("test", ds2))}
    _require_nonempty(parts, "inter_patient", "the dataset needs DS1 records for training and validation "
                      "and DS2 records for testing")
    return Split("inter_patient", **parts, records={"train": train_records, "val": val_records, "test": ds2},
                 params={"folds": folds, "fold": fold})


def split_counts(splits: dict[str, Split], label: np.ndarray) -> pd.DataFrame:
    """Long-form beats per protocol, part and class (columns protocol, part, class, beats)."""
    rows = [{"protocol": name, "part": part, "class": c, "beats": n}
            for name, split in splits.items() for part, row in split.summary(label).items() for c, n in row.items()]
    return pd.DataFrame(rows)


def make_split(protocol: str, label: np.ndarray, record: np.ndarray, **params: Any) -> Split:
    """Dispatch on the protocol name used in parameters files and run folders."""
    if protocol == "intra_patient":
        return intra_patient_split(label, record, **params)
    if protocol == "inter_patient":
        return inter_patient_split(label, record, **params)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
