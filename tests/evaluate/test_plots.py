"""Figures: each helper draws what it says on the data it is given."""

import numpy as np

from ecg_utils.evaluate.plots import plot_latency, plot_stream, save_fig


def test_plot_stream_labels_the_beats_in_view(tmp_path):
    x = np.sin(np.arange(3600) / 20.0)
    sample, pred, truth = np.array([100, 500, 900, 3000]), np.array(list("NVSN")), np.array(["N", "N", "", "N"])
    fig = plot_stream(x, 360, sample, pred, 0.0, 5.0, "strip", truth)
    texts = [t.get_text() for t in fig.axes[0].texts]
    # 3000 lies beyond the 5 s shown; the unmatched detection shows a dash for its reference class.
    assert texts == ["N", "N", "V", "N", "S", "–"]
    assert save_fig(fig, "strip", tmp_path).is_file()
    assert [t.get_text() for t in plot_stream(x, 360, sample, pred, 0.0, 5.0, "strip").axes[0].texts] == list("NVS")


def test_plot_latency_counts_every_beat():
    fig = plot_latency(np.array([1.5, 1.6, 1.6, 2.0]))
    assert sum(p.get_height() for p in fig.axes[0].patches) == 4
