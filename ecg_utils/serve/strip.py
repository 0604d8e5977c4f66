"""The ECG strip of the app: a stretch of signal on ECG paper, every beat marked in its class's colour.

ECG paper: major grid every 0.2 s and 0.5 mV, minor grid every 0.04 s and 0.1 mV, pink on white (at the
usual 25 mm/s and 10 mm/mV, 5 mm and 1 mm squares).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ecg_utils.data.aami import CLASSES

COLOURS = {"N": "#2b6cb0", "S": "#dd6b20", "V": "#c53030", "F": "#6b46c1", "Q": "#718096"}
MAJOR = (0.2, 0.5)  # s, mV
MINOR = (0.04, 0.1)


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    return np.arange(np.floor(lo / step) * step, hi + step / 2, step)


def strip_figure(signal: np.ndarray, fs: float, start_s: float, beats: pd.DataFrame, lead: str = "",
                 height_px: int = 360) -> go.Figure:
    """`signal` (mV, beginning at `start_s`) on ECG paper, with `beats` (time_s, pred) that fall inside marked."""
    t = start_s + np.arange(len(signal)) / fs
    valid = signal[np.isfinite(signal)]
    lo, hi = (float(valid.min()), float(valid.max())) if len(valid) else (-1.0, 1.0)
    lo, hi = np.floor(lo / MAJOR[1]) * MAJOR[1] - MAJOR[1], np.ceil(hi / MAJOR[1]) * MAJOR[1] + MAJOR[1]
    end_s = t[-1] if len(t) else start_s
    fig = go.Figure()
    shapes = []
    for step, colour, width in ((MINOR, "#fbd5d5", 0.5), (MAJOR, "#f4a3a3", 1.0)):
        shapes += [{"type": "line", "x0": x, "x1": x, "y0": lo, "y1": hi, "line": {"color": colour, "width": width}, "layer": "below"}
                   for x in _grid(start_s, end_s, step[0])]
        shapes += [{"type": "line", "x0": start_s, "x1": end_s, "y0": y, "y1": y, "line": {"color": colour, "width": width},
                        "layer": "below"} for y in _grid(lo, hi, step[1])]
    fig.add_trace(go.Scattergl(x=t, y=signal, mode="lines", line={"color": "black", "width": 1.2}, name=lead or "ECG",
                               hoverinfo="skip"))
    inside = beats[(beats["time_s"] >= start_s) & (beats["time_s"] <= end_s)]
    for c in CLASSES:
        b = inside[inside["pred"] == c]
        if len(b):
            idx = np.clip(np.round((b["time_s"].to_numpy() - start_s) * fs).astype(int), 0, len(signal) - 1)
            fig.add_trace(go.Scatter(x=b["time_s"], y=signal[idx], mode="markers+text", name=c, text=[c] * len(b),
                                     textposition="top center", marker={"color": COLOURS[c], "size": 9},
                                     textfont={"color": COLOURS[c], "size": 13}))
    fig.update_layout(shapes=shapes, height=height_px, margin={"l": 50, "r": 10, "t": 30, "b": 40}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": 1.08}, xaxis_title="time (s)", yaxis_title="mV")
    fig.update_xaxes(range=[start_s, end_s], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[lo, hi], showgrid=False, zeroline=False, dtick=MAJOR[1] * 2)
    return fig


def next_beat(beats: pd.DataFrame, after_s: float, classes: tuple[str, ...] = ("S", "V")) -> float | None:
    """Time of the first beat of one of `classes` later than `after_s`, or None."""
    later = beats[(beats["time_s"] > after_s) & beats["pred"].isin(classes)]
    return float(later["time_s"].iloc[0]) if len(later) else None


def counts_table(summary: dict) -> pd.DataFrame:
    """Beats per class and their share, from a classify answer's summary."""
    counts = pd.Series(summary["counts"], name="beats").reindex(list(CLASSES), fill_value=0)
    total = max(int(counts.sum()), 1)
    return pd.DataFrame({"beats": counts, "%": (100 * counts / total).round(1)})
