"""Evaluation metrics: top-1 accuracy, NLL and expected calibration error.

The ECE is ``kdtui.analysis.calibration``'s (NumPy, on the float32 logits), so the number an
epoch reports is the number ``kdtui analyze`` recomputes from the logits the run kept.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from kdtui.analysis.calibration import N_BINS
from kdtui.analysis.calibration import expected_calibration_error as _ece


def expected_calibration_error(logits: Tensor, labels: Tensor, n_bins: int = N_BINS) -> float:
    """ECE (Guo et al. 2017) of a whole split from its logits: Σ_b |B_b|/N · |acc(B_b) −
    conf(B_b)| over equal-width confidence bins (lo, hi]; confidence = the top softmax
    probability."""
    return _ece(logits.detach().float().cpu().numpy(), labels.cpu().numpy(), n_bins)


def classification_metrics(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Accuracy in percent, mean NLL, and 15-bin ECE (a fraction) of a whole split."""
    logits = logits.float()
    return {
        "acc": float(logits.argmax(1).eq(labels).float().mean() * 100),
        "nll": float(F.cross_entropy(logits, labels)),
        "ece": expected_calibration_error(logits, labels),
    }
