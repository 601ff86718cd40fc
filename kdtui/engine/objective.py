"""The training objective: the spec's weighted sum of loss terms for one batch.

The terms themselves are pure functions in ``losses.py``; this module only decides which
ones apply, with which weights, and sums teacher-side terms over teachers (each scaled by
that teacher's weight).
"""

from __future__ import annotations

from torch import Tensor

from kdtui.engine import losses
from kdtui.engine.models import ModelOutput
from kdtui.spec import LossSpec


def objective(
    spec: LossSpec,
    student: ModelOutput,
    teachers: list[ModelOutput],
    teacher_weights: list[float],
    target: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and its parts, detached (kept as tensors so that logging them costs no
    device sync per batch). ``target`` is labels (B,) or a mixed label distribution (B, K)."""
    parts: dict[str, Tensor] = {}
    if spec.ce:
        parts["ce"] = spec.ce * losses.ce_loss(student.logits, target)
    if spec.kd is not None and spec.kd.weight:
        parts["kd"] = spec.kd.weight * sum(
            w * losses.kd_loss(student.logits, t.logits, spec.kd.T)
            for t, w in zip(teachers, teacher_weights, strict=True)
        )
    total = sum(parts.values())
    return total, {k: v.detach() for k, v in parts.items()}
