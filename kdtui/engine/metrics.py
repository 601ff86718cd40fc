"""Evaluation metrics: top-1 accuracy, NLL and expected calibration error."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): Σ_b |B_b|/N · |acc(B_b) − conf(B_b)| over equal-width
    confidence bins (lo, hi]; confidence = the top softmax probability."""
    conf, pred = probs.max(dim=1)
    correct = pred.eq(labels).float()
    edges = torch.linspace(0, 1, n_bins + 1, device=probs.device)
    ece = torch.zeros((), device=probs.device)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs()
    return float(ece)


def classification_metrics(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Accuracy in percent, mean NLL, and 15-bin ECE (a fraction) of a whole split."""
    logits = logits.float()
    return {
        "acc": float(logits.argmax(1).eq(labels).float().mean() * 100),
        "nll": float(F.cross_entropy(logits, labels)),
        "ece": expected_calibration_error(logits.softmax(1), labels),
    }
