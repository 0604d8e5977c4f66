"""The inference form of a trained model: every member of an ensemble in one set of wide operators, every beat
encoded once.

Training keeps the readable form (`architectures`): one module per member, `encode` then `classify` over each
beat's window of `context` encodings. Run that way, an ensemble of M members costs M times one model in
operator calls, and a batch of beats is encoded twice (once for the windows, once more for the step).
`WideModel` computes the same probabilities from a chunk of consecutive beats of one record and the encodings of the beats before it:

- the members' convolutions become one convolution (the first, whose input they share) and grouped ones
  after it, with batch norm folded into their weights; linear layers become one batched matrix product
  over a member axis;
- each beat is encoded once; beat i of the chunk reads rows i .. i + context - 1 of the encoded sequence.
  A stream's chunk of a beat or two runs each member's recurrence as one native LSTM (or GRU) operator,
  where a dozen small operators per step were most of what one beat cost; a long chunk runs it unrolled,
  the input projection computed once per beat, so the recurrence over all n windows is `context` steps
  of one (members, n, hidden) product each (`NATIVE_UP_TO`).

It is a function of the trained weights only, exact up to float rounding (tested against the readable
form), and it is what the ONNX export runs: `(x, rr, history) -> (proba, encoding)`. Nothing here assumes
today's sizes: channels, kernel, pooling, residual blocks, LSTM, GRU or no recurrence, context length and
member count come from the model it is built from.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecg_utils.model.architectures import ConvBlock, Ensemble, SequenceClassifier

#: Chunks of up to this many beats run each member's recurrence as one native operator (ONNX Runtime: one LSTM or
#: GRU node per member: the published ensemble runs 93 operators on that path, 230 on the unrolled one), which is
#: what a stream's call of a beat or two costs; larger ones unrolled, which computes each row's input projection
#: once instead of once per window, what a long chunk costs. On the reference machine the two cost about the same
#: at 8 beats.
NATIVE_UP_TO = 8


def _fold(block: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of Conv1d (no bias) → BatchNorm1d in eval mode, as one convolution."""
    conv, bn = block[0], block[1]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return conv.weight * scale[:, None, None], bn.bias - bn.running_mean * scale


def _gate_order(rnn: str, hs: int) -> torch.Tensor:
    """Rows of an LSTM's gate weights from PyTorch's (i, f, g, o) to (i, f, o, g), so that one sigmoid covers three;
    the same permutation takes them back. A GRU's (r, z, n) stay as they are."""
    if rnn == "gru":
        return torch.arange(3 * hs)
    return torch.cat([torch.arange(0, 2 * hs), torch.arange(3 * hs, 4 * hs), torch.arange(2 * hs, 3 * hs)])


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(tensors).detach().clone()


def _norm_arrays(norms: list[nn.BatchNorm1d], cat: bool) -> dict[str, np.ndarray]:
    """γ, β, μ, σ² of the members' batch norms: their channels one after another (`cat`) or stacked by member."""
    join = torch.cat if cat else torch.stack
    return {key: join([getattr(b, attr) for b in norms]).detach().numpy().copy()
            for key, attr in (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"), ("var", "running_var"))}


class WideModel(nn.Module):
    """A SequenceClassifier or an Ensemble of them, its members side by side (see the module docstring).

    `forward(x, rr, history)`: x (n, channels, window) and rr (n, RR columns the model reads) of n consecutive beats, `history`
    (context - 1, dim) the encodings of the beats before the first of them (zeros before a record's first
    beat; absent for a per-beat model). Gives the probabilities (n, 5), averaged over the members, and
    the beats' encodings (n, dim), the members' side by side as `Ensemble.encode` gives them.
    """

    def __init__(self, model: SequenceClassifier | Ensemble) -> None:
        super().__init__()
        members = list(model.members) if isinstance(model, Ensemble) else [model]
        first = members[0]
        self.m, self.context, self.template, self.rhythm = len(members), first.context, first.template, first.rhythm
        self.member_dim, self.dim = first.dim, first.dim * len(members)
        self.channels = first.encoder.out_channels
        blocks: list[list[ConvBlock]] = [list(mm.encoder.blocks) for mm in members]
        self.conv_specs: list[tuple[int, int, int, bool]] = []  # stride, padding, pool, residual
        # What folding leaves out of the weights, for adapting the batch norms without PyTorch (`batchnorm`): each
        # folded batch norm's γ, β, μ, σ² (members' channels one after another), in the order the graph runs them.
        self.norms: dict[str, Any] = {"convs": []}
        for i, layer in enumerate(zip(*blocks)):
            ref = layer[0]
            for part, seq in (("conv", [b.conv for b in layer]), ("res", [b.residual for b in layer])):
                if seq[0] is not None:  # members' output channels one after another
                    folded = [_fold(s) for s in seq]
                    self.register_buffer(f"{part}{i}_w", _stack([f[0] for f in folded]).flatten(0, 1))
                    self.register_buffer(f"{part}{i}_b", _stack([f[1] for f in folded]).flatten(0, 1))
                    self.norms["convs"].append({"w": f"{part}{i}_w", "b": f"{part}{i}_b", "eps": seq[0][1].eps,
                                                **_norm_arrays([s[1] for s in seq], cat=True)})
            conv = ref.conv[0]
            self.conv_specs.append((conv.stride[0], conv.padding[0], ref.pool.kernel_size, ref.residual is not None))
        # The RR features are the log intervals and log ratios of them, linear in the log intervals; with batch
        # norm and the projection after them, the RR part of every member's projection is one (4, dim) matrix
        # on log(rr) and a bias.
        n_rr, rr_ratios = first.rr.n_in, first.rr.ratios
        self.n_rr = n_rr
        ratios = torch.zeros(n_rr, len(rr_ratios))  # log(a / b) = log a - log b
        for j, (a, b) in enumerate(rr_ratios):
            ratios[a, j], ratios[b, j] = 1.0, -1.0
        to_feats = torch.cat([torch.eye(n_rr), ratios], dim=1)  # log(rr) (n, n_rr) @ to_feats: the features
        morph_w, rr_w, bias = [], [], []
        for mm in members:
            norm, lin = mm.rr.norm, mm.project[0]
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            shift = norm.bias - norm.running_mean * scale
            w_morph, w_rr = lin.weight[:, :2 * self.channels], lin.weight[:, 2 * self.channels:]
            morph_w.append(w_morph.T)
            rr_w.append((to_feats * scale) @ w_rr.T)
            bias.append((lin.bias + w_rr @ shift)[None])
        self.norms["rr"] = {"project_rr": "project_rr", "project_b": "project_b", "eps": first.rr.norm.eps,
                            "to_feats": to_feats.numpy().copy(), "w_rr": _stack(
                                [mm.project[0].weight[:, 2 * self.channels:] for mm in members]).numpy(),
                            **_norm_arrays([mm.rr.norm for mm in members], cat=False)}
        self.register_buffer("project_w", _stack(morph_w))  # (members, 2 * channels, dim)
        self.register_buffer("project_rr", torch.cat(rr_w, dim=1).detach().clone())  # (n_rr, members * dim)
        self.register_buffer("project_b", _stack(bias))
        self.rnn = None if first.rnn is None else ("lstm" if isinstance(first.rnn, nn.LSTM) else "gru")
        # Each member's recurrent layer as trained: exported as one native LSTM or GRU operator per member, which
        # runs its whole window in one call (unrolled, a window cost a dozen small operators per step).
        self.rnns = None if first.rnn is None else nn.ModuleList(copy.deepcopy(mm.rnn) for mm in members)
        for rnn in self.rnns or []:
            rnn.batch_first = False  # windows come step-major, as the operators take them
        self._stack_recurrence()
        self.register_buffer("head1_w", _stack([mm.head[0].weight.T for mm in members]))
        self.register_buffer("head1_b", _stack([mm.head[0].bias[None] for mm in members]))
        self.register_buffer("head2_w", _stack([mm.head[3].weight.T for mm in members]))
        self.register_buffer("head2_b", _stack([mm.head[3].bias[None] for mm in members]))

    @classmethod
    def from_version2(cls, arrays: dict[str, np.ndarray], conv_specs: list[tuple[int, int, int, bool]], context: int,
                      rhythm: bool) -> WideModel:
        """The model an export of graph version 2 holds, from its weights (`arrays`, by name) and convolution specs,
        so that an export can move to the native recurrent operators with its weights exactly as they were.

        Version 2 kept each member's recurrent weights transposed, and an LSTM's gates reordered (i, f, o, g) with
        its two biases summed; the sum is the input bias here and the hidden bias is zero, the same function.
        """
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        for name, a in arrays.items():
            if not name.startswith(("w_ih", "b_ih", "w_hh", "b_hh")):
                model.register_buffer(name, torch.from_numpy(np.array(a, np.float32)))
        model.m, two_c, model.member_dim = model.project_w.shape
        model.dim, model.channels, model.n_rr = model.m * model.member_dim, two_c // 2, model.project_rr.shape[0]
        model.context, model.rhythm, model.template = context, rhythm, model.conv0_w.shape[1] == 2
        model.conv_specs = conv_specs  # (the batch norms' parameters travel in the export's metadata, as they are)
        model.rnn, model.rnns = None, None
        if "w_hh" in arrays:
            w_ih, w_hh, b_ih = (torch.from_numpy(np.array(arrays[k], np.float32)) for k in ("w_ih", "w_hh", "b_ih"))
            hs = w_hh.shape[1]
            model.rnn = "gru" if "b_hh" in arrays else "lstm"
            rnns = []
            for j in range(model.m):
                rnn = (nn.GRU if model.rnn == "gru" else nn.LSTM)(model.member_dim, hs)
                back = _gate_order(model.rnn, hs)  # (i, f, o, g) back to (i, f, g, o)
                b_hh = (torch.from_numpy(np.array(arrays["b_hh"][j, 0], np.float32)) if model.rnn == "gru"
                        else torch.zeros(4 * hs))
                with torch.no_grad():
                    rnn.weight_ih_l0.copy_(w_ih[j].T[back])
                    rnn.weight_hh_l0.copy_(w_hh[j].T[back])
                    rnn.bias_ih_l0.copy_(b_ih[j, 0][back])
                    rnn.bias_hh_l0.copy_(b_hh)
                rnns.append(rnn)
            model.rnns = nn.ModuleList(rnns)
            model._stack_recurrence()
        return model.eval()

    def _stack_recurrence(self) -> None:
        """The members' recurrent weights stacked for the unrolled recurrence (`_unrolled`): transposed, an LSTM's
        gates reordered (i, f, o, g) so that one sigmoid covers three, and its two biases summed (constant)."""
        if self.rnns is None:
            return
        hs = self.rnns[0].hidden_size
        order = _gate_order(self.rnn, hs)
        self.register_buffer("w_ih", _stack([r.weight_ih_l0[order].T for r in self.rnns]))
        self.register_buffer("w_hh", _stack([r.weight_hh_l0[order].T for r in self.rnns]))
        if self.rnn == "lstm":
            self.register_buffer("b_ih", _stack([(r.bias_ih_l0 + r.bias_hh_l0)[order][None] for r in self.rnns]))
        else:  # a GRU's reset gate multiplies the candidate's hidden part, bias included: kept apart
            self.register_buffer("b_ih", _stack([r.bias_ih_l0[None] for r in self.rnns]))
            self.register_buffer("b_hh", _stack([r.bias_hh_l0[None] for r in self.rnns]))

    def encode(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Encodings (members, n, member_dim) of n beats."""
        n = x.shape[0]
        h = x if self.template else x[:, :1]
        for i, (stride, pad, pool, residual) in enumerate(self.conv_specs):
            groups = 1 if i == 0 else self.m  # every member reads the same beat; then each its own channels
            h = torch.relu(F.conv1d(h, getattr(self, f"conv{i}_w"), getattr(self, f"conv{i}_b"), stride=stride,
                                    padding=pad, groups=groups))
            if residual:
                h = torch.relu(h + F.conv1d(h, getattr(self, f"res{i}_w"), getattr(self, f"res{i}_b"), padding=pad,
                                            groups=self.m))
            h = F.max_pool1d(h, pool)
        c = self.channels
        morph = torch.cat([h.mean(dim=2).reshape(n, self.m, c), h.amax(dim=2).reshape(n, self.m, c)], dim=2)
        rhythm = torch.matmul(torch.log(rr[:, :self.n_rr].clamp(min=1e-2)), self.project_rr).reshape(n, self.m, self.member_dim)
        return torch.relu(torch.matmul(morph.transpose(0, 1), self.project_w) + rhythm.transpose(0, 1) + self.project_b)

    def _recur(self, seq: torch.Tensor) -> torch.Tensor:
        """Last hidden state (members, n, hidden) of the n windows of `context` rows of seq (n + context - 1,
        members * member_dim), the encodings of the chunk's beats and of the context - 1 before them; h = 0 at each
        window's start. Both ways give the same numbers; the graph holds both and picks by n (an ONNX `If`)."""
        n = seq.shape[0] - (self.context - 1)
        return torch.cond(n <= NATIVE_UP_TO, self._native, self._unrolled, (seq,))

    def _native(self, seq: torch.Tensor) -> torch.Tensor:
        """Each member's recurrent layer over all windows at once: one native operator per member."""
        n = seq.shape[0] - (self.context - 1)
        # window t of every beat, rows t .. t + n - 1, gathered at once: (context, n, members * member_dim)
        windows = seq[torch.arange(self.context)[:, None] + torch.arange(n)[None]]
        states = [rnn(w)[1] for rnn, w in zip(self.rnns, windows.split(self.member_dim, dim=2))]
        return torch.cat([s[0] if self.rnn == "lstm" else s for s in states])

    def _unrolled(self, seq: torch.Tensor) -> torch.Tensor:
        """The recurrence step by step, the input projection computed once per row: beat i of the chunk reads rows
        i .. i + context - 1 of it, so each step is one (members, n, hidden) product."""
        hs, k = self.w_hh.shape[1], self.context - 1
        gi = torch.matmul(seq.reshape(seq.shape[0], self.m, self.member_dim).transpose(0, 1), self.w_ih) + self.b_ih
        h = c = None
        for t in range(self.context):
            rows = gi[:, t:t - k] if t < k else gi[:, k:]  # rows t .. t + n - 1, with constant bounds
            if self.rnn == "lstm":
                g = rows if h is None else rows + torch.matmul(h, self.w_hh)
                gates, u = g.split([3 * hs, hs], dim=2)
                i, f, o = torch.sigmoid(gates).split(hs, dim=2)
                u = torch.tanh(u)
                c = i * u if c is None else f * c + i * u
                h = o * torch.tanh(c)
            else:  # GRU: the candidate reads the reset gate times the hidden part of its projection
                hh = self.b_hh if h is None else torch.matmul(h, self.w_hh) + self.b_hh
                xr, xz, xn = rows.split(hs, dim=2)
                hr, hz, hn = hh.split(hs, dim=2)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                cand = torch.tanh(xn + r * hn)
                h = (1 - z) * cand if h is None else (1 - z) * cand + z * h
        return h

    def forward(self, x: torch.Tensor, rr: torch.Tensor,
                history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        enc = self.encode(x, rr)  # (members, n, member_dim)
        if self.rnn is None:
            feat = enc
        else:
            seq = torch.cat([history, enc.transpose(0, 1).reshape(n, self.dim)])
            feat = torch.cat([self._recur(seq), enc], dim=2)
        hidden = torch.relu(torch.matmul(feat, self.head1_w) + self.head1_b)
        proba = torch.softmax(torch.matmul(hidden, self.head2_w) + self.head2_b, dim=2).mean(dim=0)
        return proba, enc.transpose(0, 1).reshape(n, self.dim)


class ReadableForm(nn.Module):
    """Any other model with the beat-sequence hook (`encode(x, rr)`, `classify(seq)`, `context`, `dim`, `rhythm`) in
    the inference form's interface, computed as it trains: encode the chunk, cut each beat's window from `history`
    and the chunk's encodings, classify. A new architecture (docs/new-model.md) exports, predicts and streams
    through this until it earns a fused form of its own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.context, self.dim, self.rhythm = model.context, model.dim, model.rhythm

    def forward(self, x: torch.Tensor, rr: torch.Tensor,
                history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.model.encode(x, rr)
        seq = enc if history is None else torch.cat([history, enc])
        windows = seq.unfold(0, self.context, 1).transpose(1, 2)  # (n, context, dim), the current beat last
        return torch.softmax(self.model.classify(windows), dim=1), enc


def inference_form(model: nn.Module) -> nn.Module:
    """The fused `WideModel` for this package's architectures, `ReadableForm` for any other registered model."""
    members = list(model.members) if isinstance(model, Ensemble) else [model]
    if all(isinstance(m, SequenceClassifier) for m in members):
        return WideModel(model)
    return ReadableForm(model)


def reference(model: SequenceClassifier | Ensemble, x: torch.Tensor, rr: torch.Tensor,
              history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What `WideModel(model)` must give, computed the way the model trains: encode the chunk, cut each beat's
    window of `context` encodings (zeros before a record's first beat: `history` None), classify each window.
    For the parity checks of the export and the tests."""
    with torch.inference_mode():
        enc = model.encode(x, rr)
        history = enc.new_zeros(model.context - 1, model.dim) if history is None else history  # a record's start
        seq = torch.cat([history, enc])
        windows = torch.stack([seq[i:i + model.context] for i in range(len(x))])
        return torch.softmax(model.classify(windows), dim=1), enc
