import pytest
import torch

from ecg_utils.models import MODELS, build_model

NAMES = sorted(MODELS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shape(name, batch):
    model = build_model(name).eval()
    logits = model(torch.randn(batch, 1, 252), torch.rand(batch, 4) + 0.5)
    assert logits.shape == (batch, 5) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_other_window_lengths_work(name):
    # The encoder pools over time and the recurrent part reads any length: a model is not tied to 252.
    model = build_model(name).eval()
    assert model(torch.randn(3, 1, 300), torch.rand(3, 4) + 0.5).shape == (3, 5)


def test_parameter_counts():
    counts = {name: build_model(name).n_params for name in NAMES}
    assert counts["cnn"] < counts["gru"] < counts["cnn_lstm"]
    model = build_model("cnn_lstm")
    assert model.n_params == sum(p.numel() for p in model.parameters())


def test_rr_switch():
    torch.manual_seed(0)
    model = build_model("cnn_lstm", use_rr=False).eval()
    x = torch.randn(4, 1, 252)
    assert torch.equal(model(x, torch.rand(4, 4)), model(x, torch.rand(4, 4)))
    with_rr = build_model("cnn_lstm").eval()
    assert not torch.equal(with_rr(x, torch.full((4, 4), 0.8)), with_rr(x, torch.full((4, 4), 1.2)))


def test_residual_and_unidirectional_variants():
    model = build_model("gru", residual=True, bidirectional=False, layers=2, hidden=16).eval()
    assert model(torch.randn(2, 1, 252), torch.rand(2, 4)).shape == (2, 5)


def test_bad_names_and_hyperparameters():
    with pytest.raises(ValueError, match=r"unknown model 'transformer'; choose one of \['cnn', 'cnn_lstm', 'gru'\]"):
        build_model("transformer")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['hidden'\] for model 'cnn'"):
        build_model("cnn", hidden=32)
    with pytest.raises(ValueError, match=r"\['chanels'\]"):
        build_model("cnn_lstm", chanels=(8, 16))
