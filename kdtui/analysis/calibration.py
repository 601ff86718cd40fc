"""Calibration of a classifier from its logits: the engine's per-epoch ECE and NLL and the
reliability diagram of ``kdtui analyze`` come from these functions, so the number a figure
shows is the number the run reported.

NumPy and scipy only (no torch): the engine hands over its logits as a float32 array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Equal-width confidence bins of the ECE (Guo et al. 2017 use 15).
N_BINS = 15


def _confidence(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top softmax probability (float64) and whether the top class is right, per sample."""
    from scipy.special import softmax

    logits = np.asarray(logits, dtype=np.float64)
    conf = softmax(logits, axis=1).max(axis=1)
    correct = logits.argmax(axis=1) == np.asarray(labels)
    return conf, correct


def reliability(logits: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Per confidence bin (lo, hi]: how many samples, their accuracy and mean confidence
    (None for an empty bin), and the ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|."""
    conf, correct = _confidence(logits, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds edges[b] < conf <= edges[b + 1]
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    hits = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins)
    mass = np.bincount(which, weights=conf, minlength=n_bins)
    filled = counts > 0
    acc = np.divide(hits, counts, out=np.zeros(n_bins), where=filled)
    mean_conf = np.divide(mass, counts, out=np.zeros(n_bins), where=filled)
    n = max(len(conf), 1)
    ece = float(np.sum(counts / n * np.abs(acc - mean_conf)))
    return {
        "edges": edges.tolist(),
        "count": counts.tolist(),
        "accuracy": [float(a) if f else None for a, f in zip(acc, filled, strict=True)],
        "confidence": [float(c) if f else None for c, f in zip(mean_conf, filled, strict=True)],
        "ece": ece,
    }


def expected_calibration_error(
    logits: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS
) -> float:
    """15-bin ECE (a fraction) of a whole split, from its logits."""
    return reliability(logits, labels, n_bins)["ece"]


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the true class, in nats."""
    from scipy.special import log_softmax

    logp = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return float(-logp[np.arange(len(logp)), np.asarray(labels)].mean())
