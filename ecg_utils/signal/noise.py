"""Noise added to a clean ECG at a chosen signal-to-noise ratio, the way the noise stress test does it.

AAMI EC57's noise stress test (PhysioNet's `nst`, which made the MIT-BIH Noise Stress Test
Database) defines the SNR from two robust amplitudes:

- A, the signal: the peak-to-peak amplitude within ±50 ms of the first 300 normal beats, as a
  5 % trimmed mean (WFDB's `sigamp -a`);
- σ, the noise: the RMS about the mean of consecutive 1-second windows, the first 300 of them, as a
  5 % trimmed mean (`sigamp`);

SNR = 20 log10(A / (2√2 σ)), i.e. the power of a sine of peak-to-peak A over the noise power. The
noise record is scaled to give the asked SNR and added after the first 5 minutes in alternating
2-minute stretches (noisy, clean, noisy, ...), the noise record repeating if it is shorter.
`measured_snr` measures a mixed record the same way, from the noise actually added.
"""

from __future__ import annotations

import math

import numpy as np

from ecg_utils.errors import DataError

QRS_HALF_S = 0.050  # the signal amplitude window: ±50 ms around each normal beat
N_MAX = 300  # measurements averaged, as sigamp
NOISE_START_S = 300.0  # the first 5 minutes stay clean
STRETCH_S = 120.0  # then noisy and clean stretches alternate, 2 minutes each


def trimmed_mean(values: np.ndarray) -> float:
    """Mean after dropping the largest and the smallest 5 % (sigamp's trimmed mean)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    cut = len(v) // 20
    v = v[cut: len(v) - cut]
    if not len(v):
        raise DataError("no amplitude measurements: the signal is shorter than one measurement window")
    return float(v.mean())


def qrs_amplitude(x: np.ndarray, normal_beats: np.ndarray, fs: float, n_max: int = N_MAX) -> float:
    """A: trimmed mean peak-to-peak amplitude within ±50 ms of the first `n_max` normal beats."""
    half = round(QRS_HALF_S * fs)
    beats = [int(p) for p in normal_beats if p - half >= 0 and p + half <= len(x)][:n_max]
    if not beats:
        raise DataError("no normal beats to measure the QRS amplitude on; give the record's normal (N) beats")
    return trimmed_mean(np.array([np.ptp(x[p - half: p + half]) for p in beats]))


def rms_amplitude(x: np.ndarray, fs: float, n_max: int = N_MAX) -> float:
    """σ: trimmed mean RMS (about each window's mean) of the first `n_max` consecutive 1-second windows."""
    w = max(1, round(fs))
    k = min(n_max, len(x) // w)
    if k == 0:
        raise DataError(f"noise of {len(x)} samples: shorter than one second")
    seg = np.asarray(x[: k * w], dtype=np.float64).reshape(k, w)
    return trimmed_mean(np.sqrt(((seg - seg.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)))


def snr_db(signal_amplitude: float, noise_rms: float) -> float:
    return 20 * math.log10(signal_amplitude / (2 * math.sqrt(2) * noise_rms))


def noisy_stretches(n: int, fs: float, start_s: float = NOISE_START_S, stretch_s: float = STRETCH_S) -> np.ndarray:
    """Mask of the samples that get noise: from `start_s` on, alternating stretches, noisy first."""
    t = np.arange(n) / fs
    return (t >= start_s) & (((t - start_s) // stretch_s) % 2 == 0)


def mix(x: np.ndarray, normal_beats: np.ndarray, noise: np.ndarray, fs: float, snr: float,
        start_s: float = NOISE_START_S, stretch_s: float = STRETCH_S) -> tuple[np.ndarray, np.ndarray]:
    """`x` with `noise` (same rate) scaled to `snr` dB added in the noisy stretches; returns (mixed, mask).

    The noise starts at its own beginning and repeats if the record is longer; its mean is removed
    so the clean stretches and the noisy ones share a baseline.
    """
    x = np.asarray(x, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if not np.isfinite(snr):
        raise DataError(f"SNR {snr!r} dB: give a finite number of dB")
    if not np.isfinite(x).all() or not np.isfinite(noise).all():
        raise DataError("NaN or infinite samples in the signal or the noise: bridge or drop them before mixing")
    gain = 10 ** (-snr / 20) * qrs_amplitude(x, normal_beats, fs) / (2 * math.sqrt(2) * rms_amplitude(noise, fs))
    mask = noisy_stretches(len(x), fs, start_s, stretch_s)
    added = np.resize(noise - noise.mean(), len(x)) * gain
    return x + np.where(mask, added, 0.0), mask


def measured_snr(clean: np.ndarray, mixed: np.ndarray, normal_beats: np.ndarray, fs: float,
                 mask: np.ndarray | None = None) -> float:
    """The SNR of a mixed record, measured as EC57 defines it from the clean record and the noise added
    (in the noisy stretches `mask`, by default the standard ones)."""
    clean, mixed = np.asarray(clean, dtype=np.float64), np.asarray(mixed, dtype=np.float64)
    if mask is None:
        mask = noisy_stretches(len(clean), fs)
    return snr_db(qrs_amplitude(clean, normal_beats, fs), rms_amplitude((mixed - clean)[mask], fs))
