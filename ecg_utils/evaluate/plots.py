"""Figures shared by the notebooks, and one place that saves them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ecg_utils.atomic import atomic_open
from ecg_utils.data.aami import CLASS_NAMES, CLASSES
from ecg_utils.paths import project_path

CLASS_COLORS = dict(zip(CLASSES, sns.color_palette("colorblind", len(CLASSES))))


def save_fig(fig: plt.Figure, name: str, folder: str | Path) -> Path:
    """Save `fig` as `<folder>/<name>.png` (atomically) under a stable name notebooks and README share."""
    path = project_path(folder) / f"{name}.png"
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    return path


def plot_strip(raw: np.ndarray, filtered: np.ndarray, fs: float, ann_sample: np.ndarray, ann_symbol: np.ndarray,
               start_s: float, duration_s: float, title: str) -> plt.Figure:
    """Raw and filtered signal over the same seconds, with the reference annotations on top."""
    lo, hi = int(start_s * fs), int((start_s + duration_s) * fs)
    t = np.arange(lo, hi) / fs
    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    for ax, x, name in ((axes[0], raw, "raw (mV)"), (axes[1], filtered, "filtered")):
        ax.plot(t, x[lo:hi], lw=0.8, color="0.2")
        ax.set_ylabel(name)
    in_view = (ann_sample >= lo) & (ann_sample < hi)
    for s, sym in zip(ann_sample[in_view], ann_symbol[in_view]):
        for ax, x in ((axes[0], raw), (axes[1], filtered)):
            ax.annotate(sym, (s / fs, x[s]), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=9,
                        color="tab:red")
    axes[1].set_xlabel("time (s)")
    axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_class_examples(signal: np.ndarray, label: np.ndarray, fs: float, before: int, per_class: int = 20,
                        seed: int = 0) -> plt.Figure:
    """Overlay up to `per_class` random beats of each class, the R peak at t = 0."""
    rng = np.random.default_rng(seed)
    t = (np.arange(signal.shape[1]) - before) / fs
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(15, 3), sharey=True)
    for ax, c in zip(axes, CLASSES):
        idx = np.flatnonzero(label == c)
        for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []:
            ax.plot(t, signal[i], color=CLASS_COLORS[c], alpha=0.35, lw=0.8)
        ax.set_title(f"{c}: {textwrap.shorten(CLASS_NAMES[c], 30, placeholder=' ...')}\n({len(idx):,} beats)", fontsize=9)
        ax.axvline(0, color="0.6", lw=0.5, ls="--")
        ax.set_xlabel("s from R peak")
    axes[0].set_ylabel("normalised amplitude")
    fig.tight_layout()
    return fig


def plot_class_distribution(counts: pd.DataFrame) -> plt.Figure:
    """Beats per class (log scale) for each part of each protocol; `counts` is long-form
    with columns protocol, part, class, beats."""
    g = sns.catplot(data=counts, x="class", y="beats", hue="part", col="protocol", kind="bar", order=list(CLASSES),
                    height=3.2, aspect=1.4)
    g.set(yscale="log")
    g.set_titles("{col_name}")
    return g.figure


def plot_history(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    """Training curves, one row per run: loss (train, validation) and accuracy / macro F1."""
    fig, axes = plt.subplots(len(histories), 2, figsize=(11, 2.6 * len(histories)), squeeze=False)
    for (name, h), (ax_loss, ax_acc) in zip(histories.items(), axes):
        ax_loss.plot(h.epoch, h.train_loss, label="train")
        ax_loss.plot(h.epoch, h.val_loss, label="validation")
        ax_loss.set_ylabel(f"{name}\nweighted loss", fontsize=9)
        ax_acc.plot(h.epoch, h.train_acc, label="train accuracy")
        ax_acc.plot(h.epoch, h.val_acc, label="validation accuracy")
        ax_acc.plot(h.epoch, h.val_macro_f1, label="validation macro F1", ls="--")
        best = h.val_macro_f1.idxmax()
        ax_acc.axvline(h.epoch[best], color="0.6", lw=0.8, ls=":")
        ax_acc.set_ylim(0, 1.01)
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].legend(fontsize=8, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def plot_confusions(matrices: dict[str, np.ndarray]) -> plt.Figure:
    """Confusion matrices as heatmaps, one row per model: counts, and row-normalised (= recall)."""
    fig, axes = plt.subplots(len(matrices), 2, figsize=(10, 4 * len(matrices)), squeeze=False)
    for (name, cm), (ax_n, ax_r) in zip(matrices.items(), axes):
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax_n, xticklabels=CLASSES,
                    yticklabels=CLASSES, annot_kws={"fontsize": 8})
        sns.heatmap(norm, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax_r,
                    xticklabels=CLASSES, yticklabels=CLASSES, annot_kws={"fontsize": 8})
        ax_n.set_title(f"{name}: counts", fontsize=10)
        ax_r.set_title(f"{name}: share of each reference class", fontsize=10)
        for ax in (ax_n, ax_r):
            ax.set_xlabel("predicted")
            ax.set_ylabel("reference")
    fig.tight_layout()
    return fig


def plot_beat_gallery(signal: np.ndarray, titles: list[str], fs: float, before: int, cols: int = 6) -> plt.Figure:
    """Small multiples of single beats (e.g. misclassified ones), R peak at t = 0."""
    rows = max(1, -(-len(signal) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.9 * rows), sharex=True, squeeze=False)
    t = (np.arange(signal.shape[1]) - before) / fs if len(signal) else np.array([])
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, x, title in zip(axes.flat, signal, titles):
        ax.set_axis_on()
        ax.plot(t, x, lw=0.8, color="0.2")
        ax.axvline(0, color="0.7", lw=0.5, ls="--")
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_stream(x: np.ndarray, fs: float, sample: np.ndarray, pred: np.ndarray, start_s: float, duration_s: float,
                title: str, truth: np.ndarray | None = None) -> plt.Figure:
    """A monitor-style strip: the signal with each beat's predicted class over its R peak and, if given, the
    reference class along the bottom (grey; '' for a detection that matches no reference beat)."""
    lo, hi = int(start_s * fs), int((start_s + duration_s) * fs)
    fig, ax = plt.subplots(figsize=(12, 2.8))
    ax.plot(np.arange(lo, hi) / fs, x[lo:hi], lw=0.8, color="0.2")
    bottom, top = float(x[lo:hi].min()), float(x[lo:hi].max())
    span = max(top - bottom, 1e-6)
    if truth is not None:  # room below the trace for the reference row
        ax.set_ylim(bottom - 0.35 * span, top + 0.2 * span)
    for i, (s, c) in enumerate(zip(sample, pred)):
        if lo <= s < hi:
            ax.annotate(c, (s / fs, x[s]), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=10,
                        color=CLASS_COLORS[c], fontweight="bold")
            if truth is not None:
                ax.text(s / fs, bottom - 0.2 * span, truth[i] or "–", ha="center", va="center", fontsize=9,
                        color="0.45")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mV")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_latency(latency_s: np.ndarray) -> plt.Figure:
    """Histogram of the time from each R peak to its classification."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(latency_s, bins=40, color="tab:blue")
    ax.set_xlabel("latency after the R peak (s)")
    ax.set_ylabel("beats")
    fig.tight_layout()
    return fig


def plot_detection_snr(by_snr: pd.DataFrame) -> plt.Figure:
    """Se and +P of each detector against the noise stress test's SNR (`robustness.detection_by_snr`)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    snr = by_snr.index.to_numpy(dtype=float)
    x = np.where(np.isinf(snr), np.nanmax(snr[np.isfinite(snr)], initial=0) + 6, snr)
    for ax, figure, name in zip(axes, ("se", "ppv"), ("Se (%)", "+P (%)")):
        for detector in by_snr[figure].columns:
            ax.plot(x, by_snr[figure][detector], marker="o", label=detector)
        ax.set_xticks(x, ["clean" if np.isinf(s) else f"{s:g}" for s in snr])
        ax.set_xlabel("SNR (dB, as the record is named)")
        ax.set_title(name)
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_false_calls(figures: pd.DataFrame, path: str = "offline") -> plt.Figure:
    """False V calls per hour in the noisy stretches against SNR, for each noise, with and without the gate."""
    rows = figures[(figures.path == path) & (figures.noise != "none")]
    noises = list(dict.fromkeys(rows.noise))
    fig, axes = plt.subplots(1, len(noises), figsize=(4 * len(noises), 3.2), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], noises):
        for gate, style in (("off", "--"), ("on", "-")):
            g = rows[(rows.noise == kind) & (rows.gate == gate)].sort_values("snr_db")
            ax.plot(g.snr_db, g.false_V_per_h_noisy, style, marker="o", label=f"gate {gate}")
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("SNR (dB)")
        ax.invert_xaxis()
    axes[0][0].set_ylabel("false V calls per hour (noisy stretches)")
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def plot_cv_curves(histories: dict[str, list[pd.DataFrame]]) -> plt.Figure:
    """Validation macro F1 by epoch on the cross-validation folds: the mean over the folds of each configuration
    (line) and the fold-to-fold range (band), to choose the number of epochs without DS2."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for name, runs in histories.items():
        f1 = pd.concat([h.set_index("epoch").val_macro_f1 for h in runs], axis=1)
        ax.plot(f1.index, f1.mean(axis=1), label=name)
        ax.fill_between(f1.index, f1.min(axis=1), f1.max(axis=1), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation macro F1\n(held-out DS1 patients)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_adaptation(view: dict[str, np.ndarray], true: np.ndarray, title: str) -> plt.Figure:
    """One record's beats in the model's encoding space (the first two principal components of the encodings before
    and after, fitted together), as trained and adapted to the record: colour the class called, marker the reference
    class, so a group of beats that changes class shows as a patch that changes colour."""
    from sklearn.decomposition import PCA

    n = len(view["enc_before"])
    xy = PCA(2, random_state=0).fit_transform(np.concatenate([view["enc_before"], view["enc_after"]]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharex=True, sharey=True)
    palette = dict(zip(CLASSES, sns.color_palette("tab10", len(CLASSES))))
    markers = dict(zip(CLASSES, ["o", "^", "s", "D", "x"]))
    for ax, part, pred in ((axes[0], xy[:n], view["pred_before"]), (axes[1], xy[n:], view["pred_after"])):
        called = np.asarray(CLASSES)[pred]
        for c in CLASSES:
            for t in CLASSES:
                sel = (called == c) & (true == t)
                if sel.any():
                    ax.scatter(part[sel, 0], part[sel, 1], s=10, color=palette[c], marker=markers[t], alpha=0.6,
                               label=f"{t} called {c} ({sel.sum()})")
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
        ax.set_xlabel("encoding PC 1")
    axes[0].set_ylabel("encoding PC 2")
    axes[0].set_title("as trained")
    axes[1].set_title("adapted to the record (no label read)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
