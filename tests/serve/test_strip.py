"""The app's ECG strip: beats marked on ECG paper, the next S/V beat, the class counts."""

import numpy as np
import pandas as pd

from ecg_utils.serve.strip import counts_table, next_beat, strip_figure


def test_strip_marks_beats_on_ecg_paper():
    beats = pd.DataFrame({"time_s": [0.5, 1.3, 2.1, 12.0], "pred": ["N", "V", "S", "N"]})
    fig = strip_figure(np.sin(np.arange(3600) / 30), 360, 0.0, beats, "MLII")
    marked = {t.name: list(t.x) for t in fig.data if t.mode == "markers+text"}
    assert marked == {"N": [0.5], "S": [2.1], "V": [1.3]}  # the beat at 12 s is off the strip
    for colour, (dt, dv) in (("#fbd5d5", (0.04, 0.1)), ("#f4a3a3", (0.2, 0.5))):  # minor and major grid
        lines = [s for s in fig.layout.shapes if s.line.color == colour]
        xs = sorted(s.x0 for s in lines if s.x0 == s.x1)
        ys = sorted(s.y0 for s in lines if s.y0 == s.y1)
        assert np.allclose(np.diff(xs), dt) and np.allclose(np.diff(ys), dv) and xs[-1] - xs[0] >= 9.9
    assert next_beat(beats, 0.6) == 1.3 and next_beat(beats, 2.1) is None
    table = counts_table({"counts": {"N": 3, "S": 1, "V": 0, "F": 0, "Q": 0}})
    assert table["beats"].tolist() == [3, 1, 0, 0, 0] and table["%"].tolist() == [75.0, 25.0, 0.0, 0.0, 0.0]
