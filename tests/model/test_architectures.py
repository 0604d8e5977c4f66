import pytest
import torch

from ecg_utils.model.architectures import MODELS, build_model

NAMES = sorted(MODELS)


def _beats(n: int, window: int = 252) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 2, window), torch.rand(n, 4) + 0.5


def _classify(model, x: torch.Tensor, rr: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of beats x, rr whose predecessors' encodings are `before` (batch, context - 1, dim; zeros if None)."""
    enc = model.encode(x, rr)
    before = torch.zeros(len(x), model.context - 1, model.dim) if before is None else before
    return model.classify(torch.cat([before, enc[:, None]], dim=1))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shapes(name, batch):
    model = build_model(name).eval()
    x, rr = _beats(batch)
    enc = model.encode(x, rr)
    logits = _classify(model, x, rr, torch.randn(batch, model.context - 1, model.dim))
    assert logits.shape == (batch, 5) and enc.shape == (batch, model.dim) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_other_window_lengths_work(name):
    # The encoder pools over time: a model is not tied to 252 samples.
    model = build_model(name).eval()
    x, rr = _beats(3, 300)
    assert _classify(model, x, rr).shape == (3, 5)


def test_the_sequence_of_beats_matters():
    torch.manual_seed(0)
    model = build_model("cnn_lstm", context=4).eval()
    x, rr = _beats(6)
    with torch.inference_mode():
        enc = model.encode(x, rr)
        seq = torch.stack([enc[i - 3:i + 1] for i in range(3, 6)])
        # Other predecessors, other logits; the per-beat CNN has none.
        assert not torch.allclose(_classify(model, x[3:], rr[3:]), model.classify(seq))
        cnn = build_model("cnn").eval()
        assert cnn.context == 1 and _classify(cnn, x, rr).shape == (6, 5)


def test_template_switch_reads_the_first_channel_only():
    torch.manual_seed(0)
    model = build_model("cnn_lstm", template=False).eval()
    x, rr = _beats(4)
    other = x.clone()
    other[:, 1] = torch.randn(4, 252)
    with torch.inference_mode():
        assert torch.equal(model.encode(x, rr), model.encode(other, rr))
        with_template = build_model("cnn_lstm").eval()
        assert not torch.equal(with_template.encode(x, rr), with_template.encode(other, rr))


def test_ensemble_averages_its_members_in_probability():
    torch.manual_seed(0)
    ens = build_model("ensemble", model="cnn_lstm", model_params={"context": 3}, members=2).eval()
    x, rr = _beats(5)
    with torch.inference_mode():
        enc = ens.encode(x, rr)
        seq = torch.stack([enc[i - 2:i + 1] for i in range(2, 5)])
        d = ens.member_dim
        mean = sum(torch.softmax(m.classify(seq[..., i * d:(i + 1) * d]), 1) for i, m in enumerate(ens.members)) / 2
        assert enc.shape == (5, 2 * d) and ens.context == 3
        assert torch.allclose(torch.softmax(ens.classify(seq), 1), mean, atol=1e-6)


def test_parameter_counts():
    counts = {name: build_model(name).n_params for name in NAMES}
    assert counts["cnn"] < counts["gru"] < counts["cnn_lstm"]
    model = build_model("cnn_lstm")
    assert model.n_params == sum(p.numel() for p in model.parameters())


def test_rr_features_reach_the_output():
    torch.manual_seed(0)
    model = build_model("cnn").eval()
    x = torch.randn(4, 2, 252)
    assert not torch.equal(_classify(model, x, torch.full((4, 4), 0.8)), _classify(model, x, torch.full((4, 4), 1.2)))


def test_only_a_rhythm_model_reads_the_rhythm_pair():
    torch.manual_seed(0)
    x, rr = torch.randn(4, 2, 252), torch.full((4, 6), 0.8)
    other = rr.clone()
    other[:, 4:] = 1.5  # another underlying cycle and irregularity, the same beat intervals
    plain, rhythm = build_model("cnn").eval(), build_model("cnn", rhythm=True).eval()
    assert torch.equal(_classify(plain, x, rr), _classify(plain, x, other))
    assert torch.equal(_classify(plain, x, rr), _classify(plain, x, rr[:, :4]))
    assert not torch.equal(_classify(rhythm, x, rr), _classify(rhythm, x, other))
    assert rhythm.rr.n_out == plain.rr.n_out + 4  # sinus RR, irregularity, previous and next over sinus RR


def test_bad_names_and_hyperparameters():
    with pytest.raises(ValueError, match=r"unknown model 'transformer'; choose one of \['cnn', 'cnn_lstm', 'gru'\]"):
        build_model("transformer")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['hidden'\] for model 'cnn'"):
        build_model("cnn", hidden=32)
    with pytest.raises(ValueError, match=r"\['chanels'\]"):
        build_model("cnn_lstm", chanels=(8, 16))
    with pytest.raises(ValueError, match="per-beat CNN reads one beat"):
        build_model("cnn", context=4)
    with pytest.raises(ValueError, match="unknown ensemble parameter"):
        build_model("ensemble", model="cnn", members=2, seed=1)
