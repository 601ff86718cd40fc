"""Batch augmentation on the device: Mixup, CutMix, and the standard image crop + flip.

Small functions of tensors. Every random draw comes from the trainer's seeded CPU generator,
whose state is saved in ``last.pt`` with each epoch, so a resumed run draws exactly what an
uninterrupted one would.

A batch is a dict of views (view id -> (B, C, L) signals or (B, C, H, W) images) with one
label per sample. Mixing applies one permutation and one λ to every view, so the teachers
see the very mix the student sees; the views are mixed as they are (a GAF image of a mixed
signal is not recomputed: the GAF of a sum is not the sum of GAFs, and the teachers were
trained on GAFs of real signals, either way).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kdtui.spec import CutMixSpec, MixupSpec


def crop_flip(x: Tensor, pad: int, gen: torch.Generator) -> Tensor:
    """The standard CIFAR augmentation (He et al. 2016; Zagoruyko & Komodakis 2016), per
    sample: zero-pad by ``pad`` on each side, take a random crop of the original size, and
    mirror it horizontally with probability 0.5. On uint8 images the padding is black, as
    with torchvision's RandomCrop before Normalize. (B, C, H, W) in, same shape out."""
    b, _, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen).to(x.device)
    flip = (torch.rand(b, 1, generator=gen) < 0.5).to(x.device)
    rows = dy + torch.arange(h, device=x.device)  # (B, H) rows of the padded image
    cols = dx + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip, cols.flip(1), cols)  # a mirrored crop reads its columns backwards
    padded = F.pad(x, (pad, pad, pad, pad))
    batch = torch.arange(b, device=x.device)[:, None, None]
    # advanced indices on axes 0, 2, 3 around a slice: the result is (B, H, W, C)
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def mixup(x: Tensor, perm: Tensor, lam: float) -> Tensor:
    """Zhang, Cisse, Dauphin & Lopez-Paz 2018, "mixup": λ·x + (1 − λ)·x[perm]."""
    return lam * x + (1.0 - lam) * x[perm]


def cutmix(
    x: Tensor, perm: Tensor, lam: float, corner: tuple[float, float]
) -> tuple[Tensor, float]:
    """Yun et al. 2019, "CutMix": x with one region replaced by the same region of x[perm].

    The region covers a share 1 − λ of the sample: a box of sides round(√(1−λ)·H) ×
    round(√(1−λ)·W) for (B, C, H, W) images, a time segment of round((1−λ)·L) steps for
    (B, C, L) signals. ``corner`` (two numbers in [0, 1)) places it, relative to the free
    room, so it always lies wholly inside (the paper samples a centre and clips the box,
    which makes the pasted share smaller than 1 − λ near the border) and sits at the same
    relative place in every view. Returns the mixed batch and the share of x kept, exactly
    (λ after rounding), for the labels.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"cutmix: expected (B, C, L) or (B, C, H, W), got {tuple(x.shape)}")
    sizes = x.shape[2:]
    share = (1.0 - lam) ** (1.0 / len(sizes))  # the region's share of each axis
    region = []
    for size, where in zip(sizes, corner[-len(sizes) :], strict=True):
        length = round(share * size)
        start = int(where * (size - length + 1))  # where < 1: the region ends inside
        region.append(slice(start, start + length))
    out = x.clone()
    out[(..., *region)] = x[perm][(..., *region)]
    pasted = math.prod(s.stop - s.start for s in region) / math.prod(sizes)
    return out, 1.0 - pasted


def mix_targets(labels: Tensor, perm: Tensor, lam: float, num_classes: int) -> Tensor:
    """The mixed label distribution (B, K): λ·onehot(y) + (1 − λ)·onehot(y[perm])."""
    onehot = F.one_hot(labels, num_classes).float()
    return lam * onehot + (1.0 - lam) * onehot[perm]


def mix_batch(
    views: dict[str, Tensor],
    labels: Tensor,
    num_classes: int,
    spec: MixupSpec | CutMixSpec | None,
    student_view: str,
    gen: torch.Generator,
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Mix a batch as ``spec`` says: with probability ``prob``, draw λ ~ Beta(α, α) and a
    permutation, and apply both to every view.

    Returns (views, CE target, hard labels). The CE target is the mixed label distribution,
    with λ as realised in the student's view (CutMix rounds the region to whole pixels or
    steps). The hard labels, for AMC, are each sample's majority source: its own label when
    λ ≥ 0.5, its partner's otherwise. Unmixed batches return the labels for both.
    """
    if spec is None or torch.rand(1, generator=gen).item() >= spec.prob:
        return views, labels, labels
    # numpy's Beta sampler, seeded from the run's generator (torch has none that takes one)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(spec.alpha, spec.alpha))
    perm = torch.randperm(len(labels), generator=gen).to(labels.device)
    if isinstance(spec, MixupSpec):
        mixed = {k: mixup(v, perm, lam) for k, v in views.items()}
        kept = lam
    else:
        corner = (torch.rand(1, generator=gen).item(), torch.rand(1, generator=gen).item())
        cut = {k: cutmix(v, perm, lam, corner) for k, v in views.items()}
        mixed = {k: v for k, (v, _) in cut.items()}
        kept = cut[student_view][1]
    hard = labels if kept >= 0.5 else labels[perm]
    return mixed, mix_targets(labels, perm, kept, num_classes), hard
