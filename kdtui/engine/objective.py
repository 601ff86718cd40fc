"""The training objective: the spec's weighted sum of loss terms for one batch.

The terms themselves are pure functions in ``losses.py``; this module only decides which
ones apply, with which weights and on which tensors:

    L = ce·CE + Σ_term w_term · Σ_teachers w_teacher · term(student, teacher) + w_amc·AMC

Feature terms (AT, SP, AMD) sum over the spec's group pairs (student group g with teacher
group g); AT and AMD align maps of different shapes (1-D student vs 2-D teacher) inside the
term through ``align_feature_maps``, SP needs no alignment (its Gram matrices are B×B). DASK's
semantic term compares the student embedding through a learned linear projection to each
teacher's width: the projections are parameters of :class:`Objective`, trained with the
student and saved in ``last.pt``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from kdtui.engine import losses
from kdtui.engine.models import ModelOutput
from kdtui.spec import LossSpec

#: A teacher-side term: (student output, teacher output, teacher index) -> loss.
PairTerm = Callable[[ModelOutput, ModelOutput, int], Tensor]


class Objective(nn.Module):
    """Total loss for one batch; its only parameters are DASK's student → teacher
    projections (one per teacher whose embedding width differs from the student's)."""

    def __init__(
        self,
        spec: LossSpec,
        teacher_weights: Sequence[float],
        student_width: int,
        teacher_widths: Sequence[int],
    ) -> None:
        super().__init__()
        if len(teacher_weights) != len(teacher_widths):
            raise ValueError("one weight and one embedding width per teacher")
        self.spec = spec
        self.teacher_weights = list(teacher_weights)
        self.projections = nn.ModuleList(
            nn.Linear(student_width, width, bias=False)
            if spec.dask is not None and width != student_width
            else nn.Identity()
            for width in teacher_widths
        )
        self.pair_terms = _pair_terms(spec, self.projections)

    def forward(
        self,
        student: ModelOutput,
        teachers: Sequence[ModelOutput],
        target: Tensor,
        labels: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its weighted parts, detached (kept as tensors so that logging them
        costs no device sync per batch). ``target`` is the CE target: labels (B,) or a mixed
        label distribution (B, K); ``labels`` are hard labels (B,) for AMC."""
        if len(teachers) != len(self.teacher_weights):
            raise ValueError(
                f"{len(teachers)} teacher outputs for {len(self.teacher_weights)} teacher weights"
            )
        spec = self.spec
        parts: dict[str, Tensor] = {}
        if spec.ce:
            parts["ce"] = spec.ce * losses.ce_loss(student.logits, target)
        for name, (weight, term) in self.pair_terms.items():
            if weight:
                parts[name] = weight * self._over_teachers(student, teachers, term)
        if spec.amc is not None and spec.amc.weight:
            parts["amc"] = spec.amc.weight * losses.amc_loss(student.emb, labels, spec.amc.margin)
        total = sum(parts.values(), _zero(student))
        return total, {k: v.detach() for k, v in parts.items()}

    def _over_teachers(
        self, student: ModelOutput, teachers: Sequence[ModelOutput], term: PairTerm
    ) -> Tensor:
        """Σ_j w_j · term(student, teacher_j); a teacher of weight 0 is not computed."""
        total = _zero(student)
        for j, (teacher, weight) in enumerate(zip(teachers, self.teacher_weights, strict=True)):
            if weight:
                total = total + weight * term(student, teacher, j)
        return total


def _zero(out: ModelOutput) -> Tensor:
    return torch.zeros((), device=out.logits.device)


def _grouped(groups: Sequence[int], term: Callable[[Tensor, Tensor], Tensor]) -> PairTerm:
    """A feature term summed over group pairs: Σ_g term(student group g, teacher group g)."""
    return lambda s, t, _: torch.stack([term(s.feats[g], t.feats[g]) for g in groups]).sum()


def _pair_terms(spec: LossSpec, projections: nn.ModuleList) -> dict[str, tuple[float, PairTerm]]:
    """The enabled teacher-side terms, each with its weight, in the spec's order."""
    terms: dict[str, tuple[float, PairTerm]] = {}
    if (kd := spec.kd) is not None:
        terms["kd"] = (kd.weight, lambda s, t, _: losses.kd_loss(s.logits, t.logits, kd.T))
    if (at := spec.at) is not None:
        terms["at"] = (at.weight, _grouped(at.groups, functools.partial(losses.at_loss, p=at.p)))
    if (sp := spec.sp) is not None:
        terms["sp"] = (sp.weight, _grouped(sp.groups, losses.sp_loss))
    if (amd := spec.amd) is not None:
        amd_term = functools.partial(
            losses.amd_loss, margin=amd.margin, scale=amd.scale, local=amd.local
        )
        terms["amd"] = (amd.weight, _grouped(amd.groups, amd_term))
    if (dask := spec.dask) is not None:
        terms["dask"] = (
            dask.weight,
            lambda s, t, j: losses.dask_loss(
                s.emb,
                t.emb,
                projections[j](s.emb),
                t.emb,
                w_distance=dask.w_distance,
                w_angle=dask.w_angle,
                w_semantic=dask.w_semantic,
            ),
        )
    return terms
