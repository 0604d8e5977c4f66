import pytest

from ecg_utils.evaluation import summarize
from ecg_utils.report import END, START, render, results_markdown, targets_markdown


def _metrics():
    import numpy as np

    true = np.array(list("NNNNSSVVFQ"))
    pred = np.array(list("NNNSSNVVNQ"))
    m = {**summarize(true, pred), "params": 1234}
    return {"intra_patient": {"cnn_lstm": m, "all_N": summarize(true, np.full(10, "N"))},
            "inter_patient": {"cnn_lstm": m}}


def test_results_markdown_states_protocols_and_figures():
    text = results_markdown(_metrics())
    assert "intra-patient (random beats): accuracy" in text and "inter-patient (DS1 → DS2): accuracy" in text
    assert "| CNN–LSTM | 1,234 | 70.0 | " in text
    assert "| all-N baseline | – | 40.0 | 0.114 | – | – |" in text  # no inter-patient baseline given
    # F: one beat, missed, never predicted -> Se 0.0 and +P undefined (–)
    assert "| inter-patient (DS1 → DS2) | CNN–LSTM | 75.0 | 60.0 | 50.0 | 50.0 | 100.0 | 100.0 | 0.0 | – |" in text


def test_render_replaces_only_the_marked_part():
    readme = f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\nrest\n"
    out = render(readme, _metrics())
    assert out.startswith("# Title\n\nintro\n\n" + START) and out.endswith(END + "\n\nrest\n")
    assert "old table" not in out and render(out, _metrics()) == out
    with pytest.raises(ValueError, match="lacks the markers"):
        render("# no markers", _metrics())


def test_targets_table_says_met_or_not():
    m = _metrics()
    m["inter_patient"]["all_N"] = m["intra_patient"]["all_N"]
    text = targets_markdown(m)
    assert "| intra-patient accuracy ≥ 99.0 % | no (70.0) |" in text
    assert "| inter-patient accuracy above the all-N baseline (40.0) | yes (70.0) |" in text
    assert "| inter-patient V Se ≥ 90 % | yes (100.0) |" in text and "| inter-patient S Se ≥ 70 % | no (50.0) |" in text
    assert "| target (CNN–LSTM)" in render(f"{START}\n{END}", m)
