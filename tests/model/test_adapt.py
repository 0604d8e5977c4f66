"""Label-free adaptation to one record: batch-norm statistics re-estimated on its own beats (AdaBN), and beat families."""

import numpy as np
import pytest
import torch

from ecg_utils.model.adapt import adapt_batchnorm, batchnorms, families, smooth_in_families
from ecg_utils.model.architectures import build_model
from ecg_utils.model.batchnorm import MAX_BEATS, measured_rows

TINY = {"channels": (4, 8), "dim": 8, "head": 8}


def _trained_like(model, seed=0):
    """A model whose batch norms hold statistics other than the fresh 0 / 1, as a trained one does."""
    g = torch.Generator().manual_seed(seed)
    for b in batchnorms(model, "all"):
        b.running_mean.copy_(torch.randn(b.running_mean.shape, generator=g))
        b.running_var.copy_(torch.rand(b.running_var.shape, generator=g) + 0.5)
    return model.eval()


def _record(n=300, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 64, generator=g) * 2 + 1, torch.rand(n, 4, generator=g) + 0.5


def _buffers(layers):
    return [(b.running_mean.clone(), b.running_var.clone()) for b in layers]


def test_the_record_statistics_replace_the_rr_norm_and_nothing_else():
    model = _trained_like(build_model("cnn_lstm", **TINY))
    x, rr = _record()
    seen = []
    model.rr.norm.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        model.encode(x, rr)
    features = seen[0]  # what the RR batch norm reads: log RR and its ratios
    before_conv = _buffers(batchnorms(model, "conv"))
    adapted = adapt_batchnorm(model, x, rr, weight=1.0, layers="rr")
    assert torch.allclose(adapted.rr.norm.running_mean, features.mean(0), atol=1e-5)
    assert torch.allclose(adapted.rr.norm.running_var, features.var(0, unbiased=True), atol=1e-5)
    for (m0, v0), (m1, v1) in zip(before_conv, _buffers(batchnorms(adapted, "conv"))):
        assert torch.equal(m0, m1) and torch.equal(v0, v1)
    assert not adapted.training and all(not b.training and b.momentum == 0.1 for b in batchnorms(adapted, "all"))


def test_the_weight_blends_and_the_model_itself_is_untouched():
    model = _trained_like(build_model("cnn_lstm", **TINY))
    x, rr = _record()
    trained = _buffers(batchnorms(model, "all"))
    full = _buffers(batchnorms(adapt_batchnorm(model, x, rr, 1.0, "all"), "all"))
    half = _buffers(batchnorms(adapt_batchnorm(model, x, rr, 0.5, "all"), "all"))
    assert _buffers(batchnorms(model, "all"))[0][0].equal(trained[0][0])  # adapting copies
    for (mt, vt), (mf, vf), (mh, vh) in zip(trained, full, half):
        assert torch.allclose(mh, 0.5 * mt + 0.5 * mf, atol=1e-6) and torch.allclose(vh, 0.5 * vt + 0.5 * vf, atol=1e-6)
    assert not torch.allclose(full[0][0], trained[0][0])
    none = adapt_batchnorm(model, x, rr, 0.0, "all")
    with torch.no_grad():
        assert torch.equal(none.encode(x, rr), model.encode(x, rr))


def test_the_order_of_the_beats_does_not_matter_and_every_member_adapts():
    model = _trained_like(build_model("ensemble", model="cnn", model_params=TINY, members=2))
    x, rr = _record()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    a = adapt_batchnorm(model, x, rr, 1.0, "all")
    b = adapt_batchnorm(model, x[order], rr[order], 1.0, "all")
    for (ma, va), (mb, vb) in zip(_buffers(batchnorms(a, "all")), _buffers(batchnorms(b, "all"))):
        assert torch.allclose(ma, mb, atol=1e-5) and torch.allclose(va, vb, rtol=1e-4, atol=1e-5)
    assert len(batchnorms(a, "rr")) == 2 and len(batchnorms(a, "conv")) == 2 * 2


def test_a_long_record_is_measured_on_a_bounded_even_sample():
    rows = measured_rows(100_000)
    assert len(rows) == MAX_BEATS and rows[0] == 0 and rows[-1] == 99_999 and np.all(np.diff(rows) > 0)
    assert np.array_equal(measured_rows(50), np.arange(50))


@pytest.mark.parametrize("kwargs, message", [({"weight": 1.5}, "weight=1.5"), ({"layers": "lstm"}, "layers='lstm'")])
def test_bad_arguments_are_named(kwargs, message):
    model = build_model("cnn", **TINY)
    x, rr = _record(10)
    with pytest.raises(ValueError, match=message):
        adapt_batchnorm(model, x, rr, **{"weight": 1.0, "layers": "all", **kwargs})
    with pytest.raises(ValueError, match="at least 2 beats"):
        adapt_batchnorm(model, x[:1], rr[:1], 1.0)


def test_families_group_beats_of_one_shape_and_draw_each_beat_to_its_family():
    rng = np.random.default_rng(0)
    enc = np.concatenate([rng.normal(0, 0.1, (60, 8)), rng.normal(5, 0.1, (20, 8))])
    family = families(enc, 2)
    assert len(set(family[:60])) == 1 and len(set(family[60:])) == 1 and family[0] != family[60]
    assert np.array_equal(families(enc[:3], 8), [0, 1, 2])  # fewer beats than families: each its own
    # Family A: 59 beats called N and one called S; the odd beat is drawn to its family, family B is left alone.
    proba = np.zeros((80, 5), np.float32)
    proba[:60, 0], proba[5] = 1.0, [0.2, 0.8, 0, 0, 0]
    proba[60:, 2] = 1.0
    smoothed = smooth_in_families(proba, family, 1.0)
    assert smoothed.dtype == np.float32 and smoothed.argmax(1)[5] == 0 and np.array_equal(smoothed[60:], proba[60:])
    np.testing.assert_allclose(smoothed[:60].sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(smooth_in_families(proba, family, 0.0), proba)
    half = smooth_in_families(proba, family, 0.5)
    np.testing.assert_allclose(half[5], 0.5 * proba[5] + 0.5 * smoothed[5], rtol=1e-6)
    with pytest.raises(ValueError, match="weight=2"):
        smooth_in_families(proba, family, 2)
    with pytest.raises(ValueError, match="families=0"):
        families(enc, 0)
