"""The model bench times the models as notebook 02 trains them."""

from ecg_utils.bench.models import published_params


def test_published_params_are_the_published_configurations_of_notebook_02(tmp_path):
    params = tmp_path / "02.yaml"
    params.write_text("CONFIGS:\n  a: {model: cnn_lstm, model_params: {channels: [4, 8]}}\n  b: {model: gru}\n"
                      "  c: {model: cnn, model_params: {template: false}}\nPUBLISHED: [a, b]\n")
    assert published_params(params) == {"cnn_lstm": {"channels": [4, 8]}, "gru": {}}
