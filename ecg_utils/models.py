"""The beat classifiers: a hybrid CNN–LSTM, its GRU twin, and a plain CNN baseline.

All three share one interface: `forward(x, rr)` with beat windows `x` (batch, 1, window) and raw
RR features `rr` (batch, 4: previous, next, local-average and record-average RR in seconds),
returning logits (batch, 5) in the class order N, S, V, F, Q. No packed sequences and no
data-dependent control flow, so the models export to ONNX as they are.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import torch
from torch import nn

from .aami import CLASSES
from .preprocess import RR_FEATURES

N_RR = len(RR_FEATURES)


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
    halves the cost of everything after it. With the defaults a 252-sample beat becomes 15 steps.
    """

    def __init__(self, channels: tuple[int, ...], kernel: int, pool: int, residual: bool) -> None:
        super().__init__()
        widths = (1, *channels)
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
    footing as the hundreds of morphology features beside them.
    """

    n_out = N_RR + 4

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(self.n_out)

    def forward(self, rr: torch.Tensor) -> torch.Tensor:
        rr = rr.clamp(min=1e-2)  # intervals in seconds; guards the logarithm against bad input
        pre, post, local, mean = rr.unbind(dim=1)
        ratios = torch.stack([pre / local, post / local, pre / mean, post / pre], 1)
        return self.norm(torch.log(torch.cat([rr, ratios], dim=1)))


class BeatClassifier(nn.Module):
    """Shared frame: encoder → optional recurrent layers → [features, RR features] → FC head."""

    def __init__(self, rnn: str | None, channels: tuple[int, ...] = (16, 32, 64), kernel: int = 7, pool: int = 2,
                 residual: bool = False, hidden: int = 64, layers: int = 1, bidirectional: bool = True,
                 use_rr: bool = True, head: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = ConvEncoder(tuple(channels), kernel, pool, residual)
        if rnn is None:
            self.rnn = None
            feat = self.encoder.out_channels * 2  # global average and max pooling
        else:
            cls = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn]
            self.rnn = cls(self.encoder.out_channels, hidden, num_layers=layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
            feat = hidden * (2 if bidirectional else 1) * 2  # last step and mean over steps
        self.rr = RRFeatures() if use_rr else None
        self.dropout = nn.Dropout(dropout)  # on the morphology features only: the few RR features stay whole
        feat += RRFeatures.n_out if use_rr else 0
        self.head = nn.Sequential(nn.Linear(feat, head), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(head, len(CLASSES)))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        if self.rnn is None:
            feats = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        else:
            seq, _ = self.rnn(h.transpose(1, 2))  # (batch, steps, hidden * directions)
            feats = torch.cat([seq[:, -1], seq.mean(dim=1)], dim=1)
        feats = self.dropout(feats)
        if self.rr is not None:
            feats = torch.cat([feats, self.rr(rr)], dim=1)
        return self.head(feats)

    @property
    def n_params(self) -> int:
        """Trainable parameters, reported beside every result."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _cnn_lstm(**hp: Any) -> BeatClassifier:
    return BeatClassifier("lstm", **hp)


def _gru(**hp: Any) -> BeatClassifier:
    return BeatClassifier("gru", **hp)


def _cnn(**hp: Any) -> BeatClassifier:
    return BeatClassifier(None, **hp)


MODELS = {"cnn_lstm": _cnn_lstm, "gru": _gru, "cnn": _cnn}
_RNN_ONLY = {"hidden", "layers", "bidirectional"}


def build_model(name: str, **hyperparameters: Any) -> BeatClassifier:
    """Build a model by name ('cnn_lstm', 'gru', 'cnn'); unknown names or hyperparameters raise."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    valid = set(inspect.signature(BeatClassifier.__init__).parameters) - {"self", "rnn"}
    if name == "cnn":
        valid -= _RNN_ONLY
    unknown = sorted(set(hyperparameters) - valid)
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for model {name!r}; valid: {sorted(valid)}")
    return MODELS[name](**hyperparameters)
