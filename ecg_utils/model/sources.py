"""Where training and evaluation read their beats: one interface, `BeatSource`, that a corpus of any size can
implement, and its two forms here.

Training needs, for every beat, its class (to draw each epoch's chunks and weight the loss), its annotated rhythm
(an optional auxiliary target) and the row where its record begins (a sequence never reaches into another record);
the model inputs it needs only for the beats of the step at hand. `SequenceData` holds a dataset's inputs in
memory, the default (MIT-BIH: about 150 MB). `RecordSource` reads the per-record form (`signal.record_files`) as
needed, so memory holds the index and the step, and under torchrun each process reads only the records it was dealt
(`training.record_shards`).

Rows are numbered over all records, grouped by record and in beat order within each, as the dataset writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ecg_utils.data.aami import to_index
from ecg_utils.data.rhythm_groups import rhythm_index
from ecg_utils.signal.context import record_inputs, record_starts
from ecg_utils.signal.dataset import BeatDataset
from ecg_utils.signal.record_files import RecordFiles


class BeatSource(Protocol):
    """What `training.train` and `training.predict_proba` read."""

    label: np.ndarray  # (n,) AAMI letter of every beat
    record: np.ndarray  # (n,) its record
    y: torch.Tensor  # (n,) class indices
    rhythm: torch.Tensor  # (n,) rhythm group indices (`rhythm_groups`), -1 where unknown: an auxiliary target
    start: np.ndarray  # (n,) row of the first beat of each row's record
    config: dict  # the preprocessing configuration the beats were cut with

    def __len__(self) -> int: ...

    def inputs(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (len(rows), 2, window), rr (len(rows), 6)) of `rows` (sorted, unique)."""
        ...


@dataclass(frozen=True)
class SequenceData:
    """Model inputs of every beat of a dataset, in memory."""

    x: torch.Tensor  # (n, 2, window): beat and beat - template (`context`)
    rr: torch.Tensor  # (n, 6), columns RR_FEATURES
    y: torch.Tensor
    start: np.ndarray
    label: np.ndarray
    record: np.ndarray
    config: dict
    rhythm: torch.Tensor  # (n,) rhythm group indices, -1 where unknown

    @classmethod
    def from_dataset(cls, ds: BeatDataset) -> SequenceData:
        x = record_inputs(ds.signal, ds.record, int(ds.config["template_beats"]))
        return cls(torch.from_numpy(x), torch.from_numpy(ds.rr), torch.from_numpy(to_index(ds.label)),
                   record_starts(ds.record), ds.label, ds.record, ds.config,
                   torch.from_numpy(rhythm_index(ds.rhythm)))

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(rows)
        return self.x[index], self.rr[index]


class RecordSource:
    """The per-record form of a dataset as a `BeatSource`: the labels in memory, the inputs read when asked for."""

    def __init__(self, root: str | Path) -> None:
        self.files = RecordFiles.open(root)
        self.config = self.files.config
        self.label = self.files.labels()
        self.record = np.repeat(np.array(self.files.records), self.files.beats)
        self.y = torch.from_numpy(to_index(self.label))
        self.rhythm = torch.from_numpy(rhythm_index(self.files.rhythms()))
        self.start = record_starts(self.record)
        self._first = np.cumsum([0, *self.files.beats])  # row of each record's first beat, and the end

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        which = np.searchsorted(self._first, rows, side="right") - 1
        xs, rrs = [], []
        for r in np.unique(which):  # rows are sorted: each record's rows are one run
            arrays = self.files.arrays(self.files.records[r])
            local = rows[which == r] - self._first[r]
            xs.append(np.asarray(arrays["inputs"][local]))
            rrs.append(np.asarray(arrays["rr"][local]))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(rrs))


def as_source(beats: BeatDataset | BeatSource) -> BeatSource:
    """A `BeatDataset` becomes `SequenceData` (its inputs computed once, in memory); a source stays as it is."""
    return SequenceData.from_dataset(beats) if isinstance(beats, BeatDataset) else beats
