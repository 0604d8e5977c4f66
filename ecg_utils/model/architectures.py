"""The beat classifiers: a CNN–LSTM over the sequence of heartbeats, its GRU twin, and a per-beat CNN baseline.

A CNN encodes every beat (its window beside the patient's running template, `context`, and its RR
features) into a vector; an LSTM (or GRU) reads the vectors of the current beat and the `context - 1`
beats before it, in record order; a fully connected head classifies the current beat from the LSTM's
last output and the beat's own vector. The plain CNN is the same encoder and head without the sequence.
Causal: nothing later than the next R peak (which the next-RR feature uses), so a stream keeps the last
encodings as its state and classifies each beat once.

Interface: `encode(x, rr)` with inputs `x` (n, 2, window) and raw RR features `rr` (n, 4 or more columns of
`preprocess.RR_FEATURES`: previous, next, local-average and running-average RR in seconds, then, for a model
with `rhythm`, the underlying cycle and the irregularity; extra columns are ignored) gives encodings (n, dim); `classify(seq)` takes
(batch, context, dim) encodings, oldest first, the current beat last, zeros before a record's first
beat, and gives logits (batch, 5) in the class order N, S, V, F, Q. This is the form that trains;
`wide.WideModel` is the same function in the form that classifies (members fused, each beat encoded
once), and the ONNX export runs that. No packed sequences and no data-dependent control flow.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import torch
from torch import nn

from ecg_utils.data.aami import CLASSES
from ecg_utils.signal.context import CHANNELS
from ecg_utils.signal.preprocess import rr_names

# The ratios beside the raw intervals, as (numerator, denominator) columns of RR_FEATURES: previous/local,
# next/local, previous/running RR (the patient's rhythm), next/previous; with the rhythm pair also previous and next
# over the underlying cycle. A model uses those whose columns it reads.
RR_RATIOS = ((0, 2), (1, 2), (0, 3), (1, 0), (0, 4), (1, 4))


class ConvBlock(nn.Module):
    """Conv → BN → ReLU → max-pool: beat morphology at one time scale.

    With `residual`, a second conv and an identity (or 1x1) shortcut make the block a residual
    unit; it costs about twice the time and is off by default.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, pool: int, stride: int = 1, residual: bool = False) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv = nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False),
                                  nn.BatchNorm1d(c_out), nn.ReLU(inplace=True))
        self.residual = (nn.Sequential(nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False), nn.BatchNorm1d(c_out))
                         if residual else None)
        self.pool = nn.MaxPool1d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.residual is not None:
            x = torch.relu(x + self.residual(x))
        return self.pool(x)


class ConvEncoder(nn.Module):
    """Stacked ConvBlocks that turn a beat window into a short sequence of feature vectors.

    The first block has stride 2: after the 40 Hz low-pass, 180 Hz still resolves the QRS and it
    halves the cost of everything after it. With three blocks a 252-sample beat becomes 15 steps.
    """

    def __init__(self, c_in: int, channels: tuple[int, ...], kernel: int, pool: int, residual: bool) -> None:
        super().__init__()
        widths = (c_in, *channels)
        self.blocks = nn.Sequential(*[ConvBlock(a, b, kernel, pool, stride=2 if i == 0 else 1, residual=residual)
                                      for i, (a, b) in enumerate(itertools.pairwise(widths))])
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (batch, channels, steps)


class RRFeatures(nn.Module):
    """Raw RR intervals plus the ratios that make rhythm comparable across patients, on a log
    scale and standardised by batch norm.

    A premature beat is short relative to *this* patient's rhythm: previous/local and
    previous/record-average RR say so whatever the patient's heart rate, which is what separates
    most S beats from N beats in the inter-patient protocol. On a log scale a regular beat sits
    at 0 and a beat 20 % early at -0.22; batch norm then puts these few features on the same
    footing as the hundreds of morphology features beside them. With `rhythm` the prematurity is also
    measured against the underlying cycle, and the irregularity (a ratio already) joins as its logarithm.
    """

    def __init__(self, rhythm: bool = False) -> None:
        super().__init__()
        self.n_in = len(rr_names(rhythm))
        self.ratios = tuple((a, b) for a, b in RR_RATIOS if max(a, b) < self.n_in)
        self.n_out = self.n_in + len(self.ratios)
        self.norm = nn.BatchNorm1d(self.n_out)

    def forward(self, rr: torch.Tensor) -> torch.Tensor:
        rr = rr[:, :self.n_in].clamp(min=1e-2)  # seconds and ratios; guards the logarithm against bad input
        ratios = torch.stack([rr[:, a] / rr[:, b] for a, b in self.ratios], 1)
        return self.norm(torch.log(torch.cat([rr, ratios], dim=1)))


class SequenceClassifier(nn.Module):
    """Beat encoder → optional LSTM/GRU over the last `context` beats → FC head (see the module docstring)."""

    def __init__(self, rnn: str | None, context: int = 16, template: bool = True,
                 channels: tuple[int, ...] = (16, 32, 32), kernel: int = 7, pool: int = 2, residual: bool = False,
                 dim: int = 32, hidden: int = 32, head: int = 32, dropout: float = 0.2, rhythm: bool = False) -> None:
        super().__init__()
        if rnn is None and context != 1:
            raise ValueError(f"context={context}: the per-beat CNN reads one beat; use context=1")
        if context < 1:
            raise ValueError(f"context={context}: need at least 1 beat")
        self.context, self.dim, self.template = context, dim, template
        self.encoder = ConvEncoder(len(CHANNELS) if template else 1, tuple(channels), kernel, pool, residual)
        self.rhythm = rhythm
        self.rr = RRFeatures(rhythm)
        self.dropout = nn.Dropout(dropout)  # on the morphology features only: the few RR features stay whole
        self.project = nn.Sequential(nn.Linear(self.encoder.out_channels * 2 + self.rr.n_out, dim),
                                     nn.ReLU(inplace=True))
        if rnn is None:
            self.rnn = None
            feat = dim
        else:
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn](dim, hidden, batch_first=True)
            feat = hidden + dim  # the sequence's last output and the current beat's own encoding
        self.features_dim = feat
        self.head = nn.Sequential(nn.Linear(feat, head), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(head, len(CLASSES)))

    def encode(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """(n, dim) encodings of beats x (n, 2, window) with RR features rr (n, 4 or more)."""
        h = self.encoder(x if self.template else x[:, :1])
        morph = self.dropout(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))
        return self.project(torch.cat([morph, self.rr(rr)], dim=1))

    def features(self, seq: torch.Tensor) -> torch.Tensor:
        """What the head reads (batch, features_dim): the sequence's last output beside the current beat's own
        encoding (that alone without a sequence). A training-only auxiliary head reads it too."""
        current = seq[:, -1]
        if self.rnn is None:
            return current
        out, _ = self.rnn(seq)
        return torch.cat([out[:, -1], current], dim=1)

    def classify(self, seq: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 5) from encodings (batch, context, dim), the current beat last."""
        return self.head(self.features(seq))

    @property
    def n_params(self) -> int:
        """Trainable parameters, reported beside every result."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class Ensemble(nn.Module):
    """Members of one architecture (e.g. the cross-validation fold models) averaged in probability.

    Its encoding is the members' encodings side by side and its logits are the log of the mean
    probability, so it has the members' interface and exports, streams and classifies like one model.
    """

    def __init__(self, model: str, model_params: dict[str, Any], members: int) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members={members}: an ensemble needs at least one model")
        self.members = nn.ModuleList(build_model(model, **model_params) for _ in range(members))
        first = self.members[0]
        self.context, self.member_dim, self.rhythm = first.context, first.dim, first.rhythm
        self.dim = self.member_dim * members

    def encode(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.encode(x, rr) for m in self.members], dim=1)

    def classify(self, seq: torch.Tensor) -> torch.Tensor:
        d = self.member_dim
        proba = torch.stack([torch.softmax(m.classify(seq[..., i * d:(i + 1) * d]), dim=1)
                             for i, m in enumerate(self.members)]).mean(dim=0)
        return torch.log(proba.clamp(min=1e-12))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _cnn_lstm(**hp: Any) -> SequenceClassifier:
    return SequenceClassifier("lstm", **hp)


def _gru(**hp: Any) -> SequenceClassifier:
    return SequenceClassifier("gru", **hp)


def _cnn(**hp: Any) -> SequenceClassifier:
    return SequenceClassifier(None, **{"context": 1, **hp})


MODELS = {"cnn_lstm": _cnn_lstm, "gru": _gru, "cnn": _cnn}
_RNN_ONLY = {"hidden"}


def n_params(model: nn.Module) -> int:
    """Trainable parameters of any model, reported beside every result."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name: str, **hyperparameters: Any) -> SequenceClassifier | Ensemble:
    """Build a model by name ('cnn_lstm', 'gru', 'cnn', or 'ensemble' of one of them); unknown names or
    hyperparameters raise."""
    if name == "ensemble":
        unknown = sorted(set(hyperparameters) - {"model", "model_params", "members"})
        if unknown:
            raise ValueError(f"unknown ensemble parameter(s) {unknown}; valid: members, model, model_params")
        return Ensemble(**hyperparameters)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} (or 'ensemble')")
    params = inspect.signature(MODELS[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):  # this package's SequenceClassifier
        valid = set(inspect.signature(SequenceClassifier.__init__).parameters) - {"self", "rnn"}
        valid -= _RNN_ONLY if name == "cnn" else set()
    else:  # a registered model class or function: its own parameters
        valid = set(params) - {"self"}
    unknown = sorted(set(hyperparameters) - valid)
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for model {name!r}; valid: {sorted(valid)}")
    return MODELS[name](**hyperparameters)
