"""Loss terms, one small pure function of tensors per term.

Shapes: B = batch. Logits are (B, K). Feature maps are (B, C, L) (1-D models) or
(B, C, H, W) (2-D models). Embeddings are (B, D).

Every term computes in float32 whatever the input dtype (float16 / bfloat16 included), with
autocast switched off inside it, so a loss called under AMP never reduces in half precision.
Each returns a float32 scalar. The caller owns the weights (β, λ, ...) and the teacher's
no_grad; nothing here needs the teacher tensors to require grad.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "align_feature_maps",
    "amc_loss",
    "amd_loss",
    "at_loss",
    "ce_loss",
    "dask_loss",
    "kd_loss",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "sp_loss",
]

_EPS = 1e-12  # floor for L2 norms and means
_ACOS_EPS = 1e-7  # keeps arccos's argument in (-1, 1), where its derivative is finite

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _float32(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with autocast disabled on the device of its first tensor argument."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        tensors = (a for a in (*args, *kwargs.values()) if isinstance(a, Tensor))
        device = next(tensors).device.type
        with torch.autocast(device_type=device, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


def _check_batch(s: Tensor, t: Tensor, what: str) -> None:
    if s.shape[0] != t.shape[0]:
        raise ValueError(
            f"{what}: batch sizes differ (student {s.shape[0]}, teacher {t.shape[0]}); "
            "student and teacher must see the same samples"
        )


def _check_maps(s: Tensor, t: Tensor, what: str) -> None:
    for name, x in (("student", s), ("teacher", t)):
        if x.dim() not in (3, 4):
            raise ValueError(
                f"{what}: {name} feature map must be (B, C, L) or (B, C, H, W), "
                f"got shape {tuple(x.shape)}"
            )
    _check_batch(s, t, what)


def _check_embeddings(s: Tensor, t: Tensor, what: str) -> None:
    for name, x in (("student", s), ("teacher", t)):
        if x.dim() != 2:
            raise ValueError(f"{what}: {name} embedding must be (B, D), got {tuple(x.shape)}")
    _check_batch(s, t, what)


def _graph_zero(x: Tensor) -> Tensor:
    """A float32 zero still connected to ``x``'s graph: the value of an empty sum over pairs."""
    return x.float().sum() * 0.0


def _pool1d(x: Tensor, length: int) -> Tensor:
    return x if x.shape[-1] == length else F.adaptive_avg_pool1d(x, length)


def _pool2d(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x if tuple(x.shape[-2:]) == size else F.adaptive_avg_pool2d(x, size)


def align_feature_maps(s_feat: Tensor, t_feat: Tensor) -> tuple[Tensor, Tensor]:
    """Make a student and a teacher feature map spatially comparable.

    Only the spatial axes change; channel counts are returned as they are (never truncated).
    - both 2-D: each spatial axis is adaptive-average-pooled to the smaller of the two sizes;
    - otherwise: a 2-D map is flattened row-major to (B, C, H·W), and the longer of the two
      lengths is adaptive-average-pooled (1-D) to the shorter one.
    Equal shapes come back unchanged (the same tensors).

    Raises ValueError on a batch-size mismatch or a map that is not 3-D / 4-D.
    """
    _check_maps(s_feat, t_feat, "align_feature_maps")
    if s_feat.dim() == 4 and t_feat.dim() == 4:
        size = (min(s_feat.shape[2], t_feat.shape[2]), min(s_feat.shape[3], t_feat.shape[3]))
        return _pool2d(s_feat, size), _pool2d(t_feat, size)
    s, t = s_feat.flatten(2), t_feat.flatten(2)
    length = min(s.shape[-1], t.shape[-1])
    return _pool1d(s, length), _pool1d(t, length)


def _energy_map(feat: Tensor, p: float) -> Tensor:
    """mean_c |f_c|^p in float32, shape (B, 1, *spatial)."""
    return feat.float().abs().pow(p).mean(dim=1, keepdim=True)


def _unit(x: Tensor) -> Tensor:
    """Each sample's map flattened and divided by its L2 norm, shape (B, N)."""
    return F.normalize(x.flatten(1), p=2.0, dim=1, eps=_EPS)


@_float32
def ce_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy, averaged over the batch.

    L = −(1/B) Σ_b Σ_k y_bk · log softmax(z_b)_k, where y is one-hot of the int labels (B,)
    or a given soft / mixed label distribution (B, K) (Mixup, CutMix).
    """
    if logits.dim() != 2:
        raise ValueError(f"ce_loss: logits must be (B, K), got {tuple(logits.shape)}")
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"ce_loss: soft target {tuple(target.shape)} must match logits "
                f"{tuple(logits.shape)}"
            )
        return F.cross_entropy(logits.float(), target.float())
    if target.shape != logits.shape[:1]:
        raise ValueError(
            f"ce_loss: integer target must be (B,) = ({logits.shape[0]},), got "
            f"{tuple(target.shape)}"
        )
    return F.cross_entropy(logits.float(), target)


@_float32
def kd_loss(s_logits: Tensor, t_logits: Tensor, T: float) -> Tensor:
    """Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network".

    L = T² · (1/B) Σ_b Σ_k p_t · (log p_t − log p_s),  p = softmax(z / T),
    i.e. KL(p_t ‖ p_s) summed over classes, averaged over the batch; T² keeps the gradient
    magnitude independent of T.
    """
    if T <= 0:
        raise ValueError(f"kd_loss: temperature T must be > 0, got {T}")
    if s_logits.dim() != 2 or s_logits.shape != t_logits.shape:
        raise ValueError(
            f"kd_loss: logits must both be (B, K) and equal in shape, got "
            f"{tuple(s_logits.shape)} and {tuple(t_logits.shape)}"
        )
    log_p_s = F.log_softmax(s_logits.float() / T, dim=1)
    log_p_t = F.log_softmax(t_logits.float() / T, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * T**2


@_float32
def at_loss(s_feat: Tensor, t_feat: Tensor, p: float = 2.0) -> Tensor:
    """Zagoruyko & Komodakis 2017, "Paying More Attention to Attention" (Attention Transfer).

    Q = vec(mean_c |f_c|^p) / ‖vec(mean_c |f_c|^p)‖₂ per sample;
    L = mean_{b,n} (Q_s − Q_t)², as the authors' code computes it. The spec's weight is β
    (1000 in the paper and the code): the paper writes β/2 in front of the sum, but the
    authors' code multiplies by β itself, and so does kdtui.
    Channel counts may differ (reduced away). The attention maps, not the features, go
    through align_feature_maps, so 1-D vs 2-D maps and differing lengths are accepted.
    """
    _check_maps(s_feat, t_feat, "at_loss")
    a_s, a_t = align_feature_maps(_energy_map(s_feat, p), _energy_map(t_feat, p))
    return (_unit(a_s) - _unit(a_t)).pow(2).mean()


def _gram_rows(feat: Tensor) -> Tensor:
    q = feat.float().reshape(feat.shape[0], -1)
    return F.normalize(q @ q.T, p=2.0, dim=1, eps=_EPS)


@_float32
def sp_loss(s_feat: Tensor, t_feat: Tensor) -> Tensor:
    """Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation".

    Q = f reshaped to (B, −1); G = Q·Qᵀ with each row L2-normalised;
    L = ‖G_s − G_t‖²_F / B².
    G is B×B, so any shapes with the same batch size are accepted (1-D vs 2-D, different
    channels, lengths, or embeddings); no alignment is needed.
    """
    if s_feat.dim() < 2 or t_feat.dim() < 2:
        raise ValueError("sp_loss: inputs must have a batch axis and at least one more axis")
    _check_batch(s_feat, t_feat, "sp_loss")
    b = s_feat.shape[0]
    return (_gram_rows(s_feat) - _gram_rows(t_feat)).pow(2).sum() / b**2


def _amd_maps(a: Tensor, margin: float, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    pos = scale * torch.cos(margin * torch.acos(a.clamp(-1.0 + _ACOS_EPS, 1.0 - _ACOS_EPS)))
    neg = scale * (1.0 - a)
    ang = pos - torch.logaddexp(pos, neg)
    return _unit(ang), _unit(pos), _unit(neg)


def _amd_region(a_s: Tensor, a_t: Tensor, margin: float, scale: float) -> Tensor:
    """MSE(angular) + MSE(positive) + MSE(negative) for (B, N) maps with values in [0, 1]."""
    maps = zip(_amd_maps(a_s, margin, scale), _amd_maps(a_t, margin, scale), strict=True)
    return torch.stack([F.mse_loss(x_s, x_t) for x_s, x_t in maps]).sum()


def _cuts(size: int, parts: int) -> list[int]:
    """Where ``parts`` regions of an axis of ``size`` start and end: at ⌊k·size/parts⌋, so
    an odd row, column or step goes to the later region, as the authors' code cuts at
    ``int(H / 2)`` (``tensor_split`` would give it to the earlier one)."""
    return [k * size // parts for k in range(parts + 1)]


def _regions(a: Tensor) -> list[Tensor]:
    """Four spatial quadrants of (B, 1, H, W), or four time segments of (B, 1, L), as (B, N)."""
    if a.dim() == 4:
        rows, cols = _cuts(a.shape[2], 2), _cuts(a.shape[3], 2)
        return [
            a[:, :, rows[i] : rows[i + 1], cols[j] : cols[j + 1]].flatten(1)
            for i in range(2)
            for j in range(2)
        ]
    steps = _cuts(a.shape[2], 4)
    return [a[:, :, steps[i] : steps[i + 1]].flatten(1) for i in range(4)]


@_float32
def amd_loss(
    s_feat: Tensor,
    t_feat: Tensor,
    margin: float = 1.35,
    scale: float = 64.0,
    local: bool = False,
) -> Tensor:
    """Jeon, Choi, Shukla & Turaga 2023, "Leveraging Angular Distributions for Improved
    Knowledge Distillation" (AMD), Neurocomputing 518.

    a = vec(Σ_c f_c²) / ‖vec(Σ_c f_c²)‖₂ ∈ [0, 1] per sample, read as cos θ (computed with
    the channel mean, the same map after normalisation);
    positive = s·cos(m·arccos a), negative = s·(1 − a),
    angular = positive − log(e^positive + e^negative);
    each map L2-normalised per sample; L = MSE(ang) + MSE(pos) + MSE(neg), student vs teacher
    (the authors' code also divides this sum by 3; here that factor is left to the weight).
    local=True (AMD g+l): 0.8·L(global) + 0.2·mean of L over four regions, the regions cut
    from the globally normalised map a, as in the authors' code: spatial quadrants for 2-D
    maps split at ⌊H/2⌋ and ⌊W/2⌋ (an odd row or column goes to the second half, as there),
    four time segments for 1-D split at ⌊k·L/4⌋ (and for a 1-D vs 2-D pair, which aligns
    as 1-D).
    Channel counts may differ (reduced away); the energy maps go through align_feature_maps.
    """
    _check_maps(s_feat, t_feat, "amd_loss")
    e_s, e_t = align_feature_maps(_energy_map(s_feat, 2.0), _energy_map(t_feat, 2.0))
    a_s, a_t = _unit(e_s).view_as(e_s), _unit(e_t).view_as(e_t)
    loss = _amd_region(a_s.flatten(1), a_t.flatten(1), margin, scale)
    if not local:
        return loss
    too_small = a_s.shape[2] < 4 if a_s.dim() == 3 else min(a_s.shape[2:]) < 2
    if too_small:
        raise ValueError(
            f"amd_loss(local=True): aligned map {tuple(a_s.shape[2:])} is too small to split "
            "into four regions (needs H, W ≥ 2, or L ≥ 4)"
        )
    regions = zip(_regions(a_s), _regions(a_t), strict=True)
    local_loss = torch.stack([_amd_region(r_s, r_t, margin, scale) for r_s, r_t in regions])
    return 0.8 * loss + 0.2 * local_loss.mean()


def _distances(e: Tensor) -> Tensor:
    """(B, B) Euclidean distances; the clamp keeps sqrt differentiable on the diagonal."""
    return (e.unsqueeze(1) - e.unsqueeze(0)).pow(2).sum(-1).clamp_min(_EPS).sqrt()


@_float32
def rkd_distance_loss(s_emb: Tensor, t_emb: Tensor) -> Tensor:
    """Park, Kim, Lu & Cho 2019, "Relational Knowledge Distillation" — distance-wise term.

    ψ_D(i, j) = ‖e_i − e_j‖₂ / μ, μ = mean of ‖e_i − e_j‖₂ over the B(B−1) pairs i ≠ j;
    L = mean over pairs i ≠ j of smooth-L1(ψ_D^s, ψ_D^t) (Huber, δ = 1).
    Widths D may differ. B < 2 has no pairs: the loss is 0 (still in the graph).
    """
    _check_embeddings(s_emb, t_emb, "rkd_distance_loss")
    b = s_emb.shape[0]
    if b < 2:
        return _graph_zero(s_emb)
    off_diag = ~torch.eye(b, dtype=torch.bool, device=s_emb.device)
    d_s = _distances(s_emb.float())[off_diag]
    d_t = _distances(t_emb.float())[off_diag]
    return F.smooth_l1_loss(d_s / d_s.mean().clamp_min(_EPS), d_t / d_t.mean().clamp_min(_EPS))


def _triplet_cosines(e: Tensor) -> Tensor:
    """(B, B, B): [j, i, k] = cos of the angle at vertex e_j between e_i − e_j and e_k − e_j."""
    u = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2.0, dim=2, eps=_EPS)
    return torch.bmm(u, u.transpose(1, 2))


@_float32
def rkd_angle_loss(s_emb: Tensor, t_emb: Tensor) -> Tensor:
    """Park, Kim, Lu & Cho 2019, "Relational Knowledge Distillation" — angle-wise term.

    ψ_A(i, j, k) = ⟨(e_i − e_j)/‖e_i − e_j‖, (e_k − e_j)/‖e_k − e_j‖⟩;
    L = mean over triplets of pairwise-distinct i, j, k of smooth-L1(ψ_A^s, ψ_A^t) (δ = 1).
    Widths D may differ. B < 3 has no triplets: the loss is 0 (still in the graph).
    """
    _check_embeddings(s_emb, t_emb, "rkd_angle_loss")
    b = s_emb.shape[0]
    if b < 3:
        return _graph_zero(s_emb)
    eye = torch.eye(b, dtype=torch.bool, device=s_emb.device)
    distinct = ~(eye[:, :, None] | eye[:, None, :] | eye[None, :, :])
    a_s = _triplet_cosines(s_emb.float())[distinct]
    a_t = _triplet_cosines(t_emb.float())[distinct]
    return F.smooth_l1_loss(a_s, a_t)


@_float32
def dask_loss(
    s_emb: Tensor,
    t_emb: Tensor,
    s_sem: Tensor,
    t_sem: Tensor,
    *,
    w_distance: float = 1.0,
    w_angle: float = 2.0,
    w_semantic: float = 1.0,
) -> Tensor:
    """DASK: distance- and angle-wise relations plus semantic knowledge.

    L = w_d·L_RKD-D(s_emb, t_emb) + w_a·L_RKD-A(s_emb, t_emb)
        + w_s·mean_{b,d}(ŝ_sem − t̂_sem)²,   x̂ = x / ‖x‖₂ per sample.
    The relational terms are Park et al. 2019's (see rkd_distance_loss / rkd_angle_loss; the
    default 1 : 2 weights are theirs) on the pre-logit embeddings, whose widths may differ.
    The semantic term aligns the final feature embeddings: s_sem must already have the
    teacher's width (the caller's learned linear projection when widths differ).
    No public reference implementation of DASK was available to check against; this is the
    composition above, exactly.
    """
    _check_embeddings(s_sem, t_sem, "dask_loss (semantic)")
    if s_sem.shape != t_sem.shape:
        raise ValueError(
            f"dask_loss: s_sem {tuple(s_sem.shape)} and t_sem {tuple(t_sem.shape)} differ; "
            "project the student embedding to the teacher's width first"
        )
    semantic = F.mse_loss(_unit(s_sem.float()), _unit(t_sem.float()))
    return (
        w_distance * rkd_distance_loss(s_emb, t_emb)
        + w_angle * rkd_angle_loss(s_emb, t_emb)
        + w_semantic * semantic
    )


@_float32
def amc_loss(emb: Tensor, labels: Tensor, margin: float = 0.5) -> Tensor:
    """Choi, Som & Turaga 2020, "AMC-Loss: Angular Margin Contrastive Loss" (student-side).

    z = e / ‖e‖₂; pairs (z_i, z_{i+⌊B/2⌋}) for i < ⌊B/2⌋ (an odd last sample is dropped);
    d = arccos⟨z₁, z₂⟩ (the geodesic distance on the sphere; argument clamped);
    L = mean over pairs of d² if same class, else max(0, margin − d)².
    B < 2 has no pair: the loss is 0 (still in the graph). labels: hard int labels (B,).
    The authors weight this term 0.1 and ramp that weight up over training; the caller's
    weight here is constant from the first epoch.
    """
    if emb.dim() != 2:
        raise ValueError(f"amc_loss: emb must be (B, D), got {tuple(emb.shape)}")
    if labels.is_floating_point() or labels.shape != emb.shape[:1]:
        raise ValueError(
            f"amc_loss: labels must be integer class ids of shape ({emb.shape[0]},), got "
            f"{labels.dtype} {tuple(labels.shape)}"
        )
    n = emb.shape[0] // 2
    if n == 0:
        return _graph_zero(emb)
    z = _unit(emb.float())
    cos = (z[:n] * z[n : 2 * n]).sum(dim=1).clamp(-1.0 + _ACOS_EPS, 1.0 - _ACOS_EPS)
    d = torch.acos(cos)
    same = labels[:n] == labels[n : 2 * n]
    return torch.where(same, d.pow(2), (margin - d).clamp_min(0.0).pow(2)).mean()
