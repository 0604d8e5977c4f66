"""The inference form equals the model as trained, for every architecture, ensemble and chunking."""

import numpy as np
import pytest
import torch

from ecg_utils.model.architectures import build_model
from ecg_utils.model.wide import WideModel, reference

CASES = [
    ("cnn_lstm", {}),
    ("gru", {}),
    ("cnn", {}),
    ("cnn_lstm", {"residual": True, "channels": (8, 12), "context": 5, "dim": 12, "hidden": 10}),
    ("ensemble", {"model": "cnn_lstm", "model_params": {}, "members": 3}),
    ("ensemble", {"model": "gru", "model_params": {"residual": True, "context": 6}, "members": 2}),
    ("ensemble", {"model": "cnn", "model_params": {"template": False}, "members": 2}),
    ("cnn_lstm", {"rhythm": True}),
    ("ensemble", {"model": "gru", "model_params": {"rhythm": True}, "members": 2}),
]


def _trained_looking(name: str, params: dict) -> torch.nn.Module:
    """A model whose batch norms hold statistics and affine terms far from their initial values, as training leaves them."""
    torch.manual_seed(0)
    model = build_model(name, **params)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.3, 3)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize(("name", "params"), CASES)
@pytest.mark.parametrize("n", [1, 2, 40])
def test_wide_model_gives_the_trained_model_s_probabilities(name, params, n):
    model = _trained_looking(name, params)
    wide = WideModel(model).eval()
    x, rr = torch.randn(n, 2, 252), torch.rand(n, 6) + 0.4
    history = torch.randn(model.context - 1, model.dim) if model.context > 1 else None
    want_p, want_e = reference(model, x, rr, history)
    with torch.inference_mode():
        got_p, got_e = wide(x, rr, history)
    assert got_p.shape == (n, 5) and got_e.shape == (n, model.dim)
    assert (got_p - want_p).abs().max() < 1e-6 and (got_e - want_e).abs().max() < 1e-5
    assert torch.allclose(got_p.sum(1), torch.ones(n))


@pytest.mark.parametrize(("name", "params"), [CASES[0], CASES[4]])
def test_chunks_of_any_size_give_the_record_s_probabilities(name, params):
    """A record fed in chunks, each chunk's history the last encodings before it, is the record fed whole."""
    model = _trained_looking(name, params)
    wide = WideModel(model).eval()
    x, rr = torch.randn(50, 2, 252), torch.rand(50, 6) + 0.4
    history = torch.zeros(model.context - 1, model.dim)
    with torch.inference_mode():
        whole, _ = wide(x, rr, history)
        parts, seq = [], history
        for a, b in [(0, 1), (1, 4), (4, 30), (30, 31), (31, 50)]:
            p, e = wide(x[a:b], rr[a:b], seq[-(model.context - 1):])
            parts.append(p)
            seq = torch.cat([seq, e])
    assert (torch.cat(parts) - whole).abs().max() < 1e-6
    # the predecessors matter: another history, other probabilities for the first beats
    with torch.inference_mode():
        other, _ = wide(x, rr, torch.randn_like(history))
    assert (other[:3] - whole[:3]).abs().max() > 1e-4


def test_every_member_counts():
    """Two members of an ensemble: changing the second one's weights changes the answer."""
    model = _trained_looking("ensemble", {"model": "cnn_lstm", "model_params": {}, "members": 2})
    x, rr = torch.randn(8, 2, 252), torch.rand(8, 4) + 0.4
    history = torch.zeros(model.context - 1, model.dim)
    with torch.inference_mode():
        before = WideModel(model)(x, rr, history)[0]
        model.members[1].head[3].bias.add_(torch.tensor([3.0, 0, 0, 0, 0]))
        after = WideModel(model)(x, rr, history)[0]
    assert np.abs((after - before).numpy()).max() > 1e-2


@pytest.mark.parametrize(("name", "params"), [c for c in CASES if c[0] != "cnn" and c[1].get("model") != "cnn"])
def test_the_weights_of_a_version2_export_rebuild_the_same_model(name, params):
    """Graph version 2 stored the recurrent weights stacked and reordered: rebuilt from them (as `export.upgrade_onnx`
    does), the model gives the trained model's probabilities, and the unrolled recurrence of version 2 agrees."""
    from tests.model.version2 import Version2, version2_arrays

    model = _trained_looking(name, params)
    wide = WideModel(model).eval()
    specs = list(wide.conv_specs)
    rebuilt = WideModel.from_version2(version2_arrays(wide), specs, model.context, model.rhythm)
    x, rr = torch.randn(7, 2, 252), torch.rand(7, 6) + 0.4
    history = torch.randn(model.context - 1, model.dim)
    want = reference(model, x, rr, history)[0]
    with torch.inference_mode():
        got, unrolled = rebuilt(x, rr, history)[0], Version2(model).eval()(x, rr, history)[0]
    assert rebuilt.rnn == wide.rnn and (got - want).abs().max() < 1e-6 and (unrolled - want).abs().max() < 1e-6


@pytest.mark.parametrize(("name", "params"), [CASES[0], CASES[5]])
@pytest.mark.parametrize("n", [1, 9, 40])
def test_both_recurrences_give_the_same_states(name, params, n):
    """The graph picks the native operator or the unrolled steps by chunk length; each gives the other's numbers."""
    wide = WideModel(_trained_looking(name, params)).eval()
    seq = torch.randn(n + wide.context - 1, wide.dim)
    with torch.inference_mode():
        native, unrolled = wide._native(seq), wide._unrolled(seq)
    assert native.shape == (wide.m, n, wide.rnns[0].hidden_size) and (native - unrolled).abs().max() < 1e-6
