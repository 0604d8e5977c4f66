"""The inference form as graph version 2 exported it: the recurrence always unrolled, the members' recurrent weights
stacked as `WideModel._stack_recurrence` keeps them. The upgrade tests build such a model and file from a trained one,
as an earlier ecg_utils did."""

from __future__ import annotations

import numpy as np
import torch

from ecg_utils.model.wide import WideModel


def version2_arrays(wide: WideModel) -> dict[str, np.ndarray]:
    """The weights a version 2 file holds, by name."""
    return {name: b.numpy().copy() for name, b in wide.named_buffers()}


class Version2(WideModel):
    """`WideModel(model)` computed and exported as version 2 did: no native recurrent operator."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)
        self.rnns = None

    def _recur(self, seq: torch.Tensor) -> torch.Tensor:
        return self._unrolled(seq)
