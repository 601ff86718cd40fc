"""kdtui.engine.losses: every term against a written-out computation of its formula.

The references below are float64 NumPy loops, deliberately written differently from the
implementation (per sample / per pair / per triplet), so they check values, not just shapes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from kdtui.engine.losses import (
    align_feature_maps,
    amc_loss,
    amd_loss,
    at_loss,
    ce_loss,
    dask_loss,
    kd_loss,
    rkd_angle_loss,
    rkd_distance_loss,
    sp_loss,
)


def randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def np64(x: Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def close(actual: Tensor, expected: float, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    assert actual.dtype == torch.float32 and actual.dim() == 0
    assert actual.item() == pytest.approx(expected, rel=rtol, abs=atol)


# ---------------------------------------------------------------- written-out references


def huber(x: float) -> float:
    return 0.5 * x * x if abs(x) < 1.0 else abs(x) - 0.5


def log_softmax_row(z: np.ndarray) -> np.ndarray:
    m = max(z)
    return z - (m + math.log(sum(math.exp(v - m) for v in z)))


def ref_ce(z: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for b in range(z.shape[0]):
        log_q = log_softmax_row(z[b])
        if y.ndim == 1:
            total -= log_q[int(y[b])]
        else:
            total -= sum(y[b, k] * log_q[k] for k in range(z.shape[1]))
    return total / z.shape[0]


def ref_kd(s: np.ndarray, t: np.ndarray, T: float) -> float:
    total = 0.0
    for b in range(s.shape[0]):
        log_ps, log_pt = log_softmax_row(s[b] / T), log_softmax_row(t[b] / T)
        for k in range(s.shape[1]):
            total += math.exp(log_pt[k]) * (log_pt[k] - log_ps[k])
    return total / s.shape[0] * T * T


def energy(f: np.ndarray, p: float) -> np.ndarray:
    """Per sample: mean over channels of |f|^p, keeping the spatial layout."""
    out = np.zeros((f.shape[0],) + f.shape[2:])
    for c in range(f.shape[1]):
        out += np.abs(f[:, c]) ** p
    return out / f.shape[1]


def ref_at(s: np.ndarray, t: np.ndarray, p: float = 2.0) -> float:
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        qs, qt = energy(s, p)[b].ravel(), energy(t, p)[b].ravel()
        qs, qt = qs / np.linalg.norm(qs), qt / np.linalg.norm(qt)
        for n in range(qs.size):
            total += (qs[n] - qt[n]) ** 2
            count += 1
    return total / count


def ref_sp(s: np.ndarray, t: np.ndarray) -> float:
    B = s.shape[0]

    def gram(f: np.ndarray) -> np.ndarray:
        q = [f[i].ravel() for i in range(B)]
        g = np.array([[float(np.dot(q[i], q[j])) for j in range(B)] for i in range(B)])
        return np.stack([g[i] / math.sqrt(sum(v * v for v in g[i])) for i in range(B)])

    gs, gt = gram(s), gram(t)
    return sum((gs[i, j] - gt[i, j]) ** 2 for i in range(B) for j in range(B)) / B**2


def amd_maps(a: np.ndarray, m: float, s: float) -> list[np.ndarray]:
    pos = s * np.cos(m * np.arccos(np.clip(a, -1 + 1e-7, 1 - 1e-7)))
    neg = s * (1.0 - a)
    ang = pos - np.log(np.exp(pos) + np.exp(neg))
    return [x / np.linalg.norm(x) for x in (ang, pos, neg)]


def ref_amd_regions(rs: list[np.ndarray], rt: list[np.ndarray], m: float, s: float) -> float:
    """Sum over the three maps of the MSE across all samples (each r[b] one sample's region)."""
    total = 0.0
    for k in range(3):
        sq = sum(
            float(((amd_maps(x, m, s)[k] - amd_maps(y, m, s)[k]) ** 2).sum())
            for x, y in zip(rs, rt, strict=True)
        )
        total += sq / sum(x.size for x in rs)
    return total


def ref_amd(
    sf: np.ndarray, tf: np.ndarray, m: float = 1.35, s: float = 64.0, local: bool = False
) -> float:
    """For maps of equal spatial shape; per sample, a = Σ_c f² / ‖Σ_c f²‖."""
    a_s = [e / np.linalg.norm(e) for e in energy(sf, 2.0)]
    a_t = [e / np.linalg.norm(e) for e in energy(tf, 2.0)]
    glob = ref_amd_regions([x.ravel() for x in a_s], [x.ravel() for x in a_t], m, s)
    if not local:
        return glob

    def cuts(x: np.ndarray) -> list[np.ndarray]:
        if x.ndim == 2:
            h, w = x.shape[0] // 2, x.shape[1] // 2
            return [x[:h, :w].ravel(), x[:h, w:].ravel(), x[h:, :w].ravel(), x[h:, w:].ravel()]
        cut = [k * x.shape[0] // 4 for k in range(5)]
        return [x[cut[i] : cut[i + 1]] for i in range(4)]

    quads = [
        ref_amd_regions([cuts(x)[r] for x in a_s], [cuts(x)[r] for x in a_t], m, s)
        for r in range(4)
    ]
    return 0.8 * glob + 0.2 * sum(quads) / 4


def ref_rkd_distance(s: np.ndarray, t: np.ndarray) -> float:
    B = s.shape[0]
    pairs = [(i, j) for i in range(B) for j in range(B) if i != j]

    def psi(e: np.ndarray) -> list[float]:
        d = [math.sqrt(sum((e[i, k] - e[j, k]) ** 2 for k in range(e.shape[1]))) for i, j in pairs]
        mu = sum(d) / len(d)
        return [v / mu for v in d]

    return sum(huber(a - b) for a, b in zip(psi(s), psi(t), strict=True)) / len(pairs)


def ref_rkd_angle(s: np.ndarray, t: np.ndarray) -> float:
    B = s.shape[0]
    total, count = 0.0, 0
    for i, j, k in itertools.permutations(range(B), 3):
        cos = []
        for e in (s, t):
            u, v = e[i] - e[j], e[k] - e[j]
            cos.append(float(np.dot(u, v)) / (np.linalg.norm(u) * np.linalg.norm(v)))
        total += huber(cos[0] - cos[1])
        count += 1
    return total / count


def ref_semantic(s: np.ndarray, t: np.ndarray) -> float:
    total = 0.0
    for b in range(s.shape[0]):
        u, v = s[b] / np.linalg.norm(s[b]), t[b] / np.linalg.norm(t[b])
        total += sum((u[k] - v[k]) ** 2 for k in range(s.shape[1]))
    return total / s.size


def ref_amc(e: np.ndarray, y: np.ndarray, margin: float = 0.5) -> float:
    n = e.shape[0] // 2
    total = 0.0
    for i in range(n):
        z1, z2 = e[i] / np.linalg.norm(e[i]), e[i + n] / np.linalg.norm(e[i + n])
        d = math.acos(max(-1.0, min(1.0, float(np.dot(z1, z2)))))
        total += d * d if y[i] == y[i + n] else max(0.0, margin - d) ** 2
    return total / n


# ------------------------------------------------------------------- (a) values vs formula


def test_ce_int_and_soft_labels_match_formula() -> None:
    z, y = randn(6, 5, seed=1) * 3, torch.tensor([0, 4, 2, 2, 1, 3])
    close(ce_loss(z, y), ref_ce(np64(z), y.numpy()))
    soft = torch.softmax(randn(6, 5, seed=2), dim=1)
    close(ce_loss(z, soft), ref_ce(np64(z), np64(soft)))
    # Mixup: CE of a mixed target is the same mix of the two CEs.
    y2, lam = torch.tensor([1, 1, 0, 3, 4, 2]), 0.3
    mixed = lam * nn.functional.one_hot(y, 5).float() + (1 - lam) * nn.functional.one_hot(y2, 5)
    close(
        ce_loss(z, mixed),
        lam * ref_ce(np64(z), y.numpy()) + (1 - lam) * ref_ce(np64(z), y2.numpy()),
    )


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_matches_hand_written_kl(T: float) -> None:
    s, t = randn(5, 7, seed=3) * 4, randn(5, 7, seed=4) * 4
    close(kd_loss(s, t, T), ref_kd(np64(s), np64(t), T))


def test_kd_temperature_squared_scaling() -> None:
    s, t = randn(4, 6, seed=5), randn(4, 6, seed=6)
    # The T² factor with logits divided by T: kd(s, t, T) = T² · kd(s/T, t/T, 1).
    close(kd_loss(s, t, 4.0), 16.0 * kd_loss(s / 4.0, t / 4.0, 1.0).item())
    # What T² is for (Hinton §2.1): for large T the gradient tends to (z̃_s − z̃_t) / (K·B),
    # z̃ = logits minus their mean, independent of T.
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    expected = centred / (6 * 4)
    for T in (50.0, 100.0):
        x = s.clone().requires_grad_()
        kd_loss(x, t, T).backward()
        assert torch.allclose(x.grad, expected, rtol=0.05, atol=2e-3)


def test_at_matches_formula_1d_and_2d_and_p() -> None:
    s, t = randn(3, 4, 5, 6, seed=7), randn(3, 2, 5, 6, seed=8)
    close(at_loss(s, t), ref_at(np64(s), np64(t)))
    close(at_loss(s, t, p=1.0), ref_at(np64(s), np64(t), p=1.0))
    s1, t1 = randn(3, 4, 20, seed=9), randn(3, 8, 20, seed=10)
    close(at_loss(s1, t1), ref_at(np64(s1), np64(t1)))


def test_sp_matches_per_sample_loop() -> None:
    s, t = randn(5, 3, 16, seed=11), randn(5, 6, 4, 4, seed=12)
    close(sp_loss(s, t), ref_sp(np64(s), np64(t)))


@pytest.mark.parametrize("local", [False, True])
def test_amd_matches_formula_2d(local: bool) -> None:
    s, t = randn(3, 4, 8, 8, seed=13), randn(3, 6, 8, 8, seed=14)
    close(amd_loss(s, t, local=local), ref_amd(np64(s), np64(t), local=local), rtol=1e-4)
    close(
        amd_loss(s, t, margin=1.2, scale=16.0, local=local),
        ref_amd(np64(s), np64(t), 1.2, 16.0, local=local),
        rtol=1e-4,
    )


@pytest.mark.parametrize("local", [False, True])
def test_amd_matches_formula_1d(local: bool) -> None:
    s, t = randn(3, 4, 32, seed=15), randn(3, 5, 32, seed=16)
    close(amd_loss(s, t, local=local), ref_amd(np64(s), np64(t), local=local), rtol=1e-4)


@pytest.mark.parametrize(
    ("s_shape", "t_shape"),
    [((3, 4, 5, 5), (3, 6, 5, 5)), ((3, 4, 5, 7), (3, 2, 5, 7)), ((3, 4, 7), (3, 5, 7))],
)
def test_amd_local_on_odd_maps_gives_the_extra_row_column_or_step_to_the_later_region(
    s_shape: tuple[int, ...], t_shape: tuple[int, ...]
) -> None:
    """The authors cut at int(H/2), int(W/2): on a 5×5 map the first quadrant is 2×2 and the
    last 3×3 (tensor_split gave 3×3 first); a 1-D map of 7 steps cuts at 1, 3, 5."""
    s, t = randn(*s_shape, seed=31), randn(*t_shape, seed=32) * 2
    close(amd_loss(s, t, local=True), ref_amd(np64(s), np64(t), local=True), rtol=1e-4)


def test_amd_local_region_sizes_on_odd_maps() -> None:
    from kdtui.engine.losses import _regions

    quads = _regions(torch.zeros(1, 1, 5, 5))
    assert [q.shape[1] for q in quads] == [4, 6, 6, 9]
    assert [r.shape[1] for r in _regions(torch.zeros(1, 1, 5))] == [1, 1, 1, 2]


def test_rkd_distance_matches_pair_loops() -> None:
    s, t = randn(6, 5, seed=17), randn(6, 9, seed=18) * 3
    close(rkd_distance_loss(s, t), ref_rkd_distance(np64(s), np64(t)))


def test_rkd_angle_matches_triplet_loops() -> None:
    s, t = randn(5, 4, seed=19), randn(5, 7, seed=20)
    close(rkd_angle_loss(s, t), ref_rkd_angle(np64(s), np64(t)))


def test_dask_is_weighted_rkd_plus_normalised_semantic_mse() -> None:
    s, t = randn(5, 4, seed=21), randn(5, 6, seed=22)
    zs, zt = randn(5, 6, seed=23), randn(5, 6, seed=24)
    S, Tt, ZS, ZT = np64(s), np64(t), np64(zs), np64(zt)
    expected = ref_rkd_distance(S, Tt) + 2 * ref_rkd_angle(S, Tt) + ref_semantic(ZS, ZT)
    close(dask_loss(s, t, zs, zt), expected)
    weighted = dask_loss(s, t, zs, zt, w_distance=0.5, w_angle=0.0, w_semantic=3.0)
    close(weighted, 0.5 * ref_rkd_distance(S, Tt) + 3 * ref_semantic(ZS, ZT))


def test_amc_matches_pair_loop_and_drops_odd_sample() -> None:
    e, y = randn(7, 3, seed=25), torch.tensor([0, 1, 2, 0, 1, 0, 2])
    close(amc_loss(e, y), ref_amc(np64(e), y.numpy()))
    close(amc_loss(e, y, margin=2.0), ref_amc(np64(e), y.numpy(), 2.0))
    e2 = e.clone()
    e2[6] = 100.0
    assert amc_loss(e2, y).item() == amc_loss(e, y).item()


def test_align_flattens_row_major_and_pools_the_longer() -> None:
    s, t = randn(2, 3, 128, seed=26), randn(2, 5, 8, 8, seed=27)
    a_s, a_t = align_feature_maps(s, t)
    assert a_s.shape == (2, 3, 64) and a_t.shape == (2, 5, 64)  # channels untouched
    for h, w in [(0, 0), (0, 7), (3, 5), (7, 7)]:
        assert torch.equal(a_t[:, :, h * 8 + w], t[:, :, h, w])
    assert torch.allclose(a_s, (s[:, :, 0::2] + s[:, :, 1::2]) / 2, atol=1e-6)
    # 2-D vs 2-D stays 2-D, each axis pooled to the smaller size.
    big, small = randn(2, 3, 8, 8, seed=28), randn(2, 4, 4, 4, seed=29)
    p_big, p_small = align_feature_maps(big, small)
    assert p_small is small
    blocks = big.reshape(2, 3, 4, 2, 4, 2).mean(dim=(3, 5))
    assert torch.allclose(p_big, blocks, atol=1e-6)
    # Equal shapes are returned as they are.
    x = randn(2, 3, 10, seed=30)
    assert all(r is x for r in align_feature_maps(x, x))


def test_align_rejects_batch_mismatch_and_bad_ranks() -> None:
    with pytest.raises(ValueError, match="batch sizes differ"):
        align_feature_maps(randn(2, 3, 8), randn(3, 3, 8))
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        align_feature_maps(randn(2, 3), randn(2, 3, 8))
    for fn in (at_loss, amd_loss, sp_loss):
        with pytest.raises(ValueError, match="batch sizes differ"):
            fn(randn(4, 3, 16), randn(2, 3, 4, 4))
    for fn in (rkd_distance_loss, rkd_angle_loss):
        with pytest.raises(ValueError, match="batch sizes differ"):
            fn(randn(4, 3), randn(5, 3))


def test_input_errors_are_explicit() -> None:
    with pytest.raises(ValueError, match="T must be > 0"):
        kd_loss(randn(2, 3), randn(2, 3), 0.0)
    with pytest.raises(ValueError, match="project the student"):
        dask_loss(randn(4, 3), randn(4, 5), randn(4, 3), randn(4, 5))
    with pytest.raises(ValueError, match="integer class ids"):
        amc_loss(randn(4, 3), torch.rand(4))
    with pytest.raises(ValueError, match="too small"):
        amd_loss(randn(2, 3, 3), randn(2, 3, 3), local=True)
    with pytest.raises(ValueError, match="soft target"):
        ce_loss(randn(2, 3), torch.rand(2, 4))


# ------------------------------------------------------------------------ (b) gradients


class Student(nn.Module):
    """A 1-D conv net: feature map (B, 4, 64), embedding (B, 4), logits (B, 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = torch.relu(self.conv(x))
        e = f.mean(-1)
        return f, e, self.head(e)


class Teacher(nn.Module):
    """A 2-D conv net: feature map (B, 6, 8, 8), embedding (B, 6), logits (B, 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, 5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = torch.relu(self.conv(x))
        e = f.mean((2, 3))
        return f, e, self.head(e)


LABELS = torch.tensor([0, 1, 2, 3, 0, 1, 4, 3])
TERMS: dict[str, Callable[..., Tensor]] = {
    "ce": lambda s, t, proj: ce_loss(s[2], LABELS),
    "kd": lambda s, t, proj: kd_loss(s[2], t[2], 4.0),
    "at": lambda s, t, proj: at_loss(s[0], t[0]),
    "sp": lambda s, t, proj: sp_loss(s[0], t[0]),
    "amd": lambda s, t, proj: amd_loss(s[0], t[0]),
    "amd_local": lambda s, t, proj: amd_loss(s[0], t[0], local=True),
    "rkd_distance": lambda s, t, proj: rkd_distance_loss(s[1], t[1]),
    "rkd_angle": lambda s, t, proj: rkd_angle_loss(s[1], t[1]),
    "dask": lambda s, t, proj: dask_loss(s[1], t[1], proj(s[1]), t[1]),
    "amc": lambda s, t, proj: amc_loss(s[1], LABELS),
}


@pytest.mark.parametrize("term", sorted(TERMS))
def test_gradient_reaches_student_and_never_the_frozen_teacher(term: str) -> None:
    torch.manual_seed(0)
    student, teacher, proj = Student(), Teacher().requires_grad_(False), nn.Linear(4, 6)
    x = randn(8, 3, 64, seed=31).requires_grad_()
    img = randn(8, 3, 8, 8, seed=32)
    t_out = teacher(img)
    assert not any(o.requires_grad for o in t_out)
    loss = TERMS[term](student(x), t_out, proj)
    loss.backward()
    assert torch.isfinite(loss)
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in student.named_parameters():
        if term not in ("ce", "kd") and name.startswith("head"):
            continue  # feature terms do not reach the classifier
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in teacher.parameters())
    assert img.grad is None
    if term == "dask":
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- (c) shape alignment


MAP_TERMS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "at": at_loss,
    "amd": amd_loss,
    "amd_local": lambda s, t: amd_loss(s, t, local=True),
    "sp": sp_loss,
}


@pytest.mark.parametrize("term", sorted(MAP_TERMS))
@pytest.mark.parametrize(
    ("s_shape", "t_shape"),
    [
        ((4, 3, 64), (4, 7, 8, 8)),  # 1-D student vs 2-D teacher, different channels
        ((4, 3, 100), (4, 5, 8, 8)),  # 1-D student longer than the flattened teacher
        ((4, 3, 40), (4, 3, 64)),  # two 1-D maps of different lengths
        ((4, 3, 8, 8), (4, 6, 4, 4)),  # two 2-D maps of different sizes
    ],
)
def test_map_terms_accept_mismatched_shapes(
    term: str, s_shape: tuple[int, ...], t_shape: tuple[int, ...]
) -> None:
    s = randn(*s_shape, seed=33).requires_grad_()
    loss = MAP_TERMS[term](s, randn(*t_shape, seed=34))
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


@pytest.mark.parametrize("term", sorted(MAP_TERMS))
def test_1d_student_equal_to_flattened_or_upsampled_teacher_gives_zero(term: str) -> None:
    t = randn(3, 4, 8, 8, seed=35)
    flat = t.flatten(2)  # row-major (B, C, 64)
    assert MAP_TERMS[term](flat, t).item() == pytest.approx(0.0, abs=1e-7)
    stretched = flat.repeat_interleave(2, dim=-1)  # (B, C, 128): pooled back to 64 for AT/AMD;
    assert MAP_TERMS[term](stretched, t).item() == pytest.approx(0.0, abs=1e-6)  # SP: Gram × 2


def test_amd_local_on_aligned_1d_uses_time_segments_of_the_flattened_teacher() -> None:
    s, t = randn(3, 4, 64, seed=36), randn(3, 6, 8, 8, seed=37)
    expected = ref_amd(np64(s), np64(t.flatten(2)), local=True)
    close(amd_loss(s, t, local=True), expected, rtol=1e-4)


# ------------------------------------------------------------------ (d) zero when equal


def test_identical_inputs_give_zero() -> None:
    logits, f1, f2 = randn(4, 5, seed=38), randn(4, 3, 16, seed=39), randn(4, 3, 6, 6, seed=40)
    e, z = randn(4, 6, seed=41), randn(4, 8, seed=42)
    assert kd_loss(logits, logits, 4.0).item() == pytest.approx(0.0, abs=1e-7)
    for f in (f1, f2):
        assert at_loss(f, f).item() == 0.0
        assert sp_loss(f, f).item() == 0.0
        assert amd_loss(f, f).item() == 0.0
        assert amd_loss(f, f, local=True).item() == 0.0
    assert rkd_distance_loss(e, e).item() == 0.0
    assert rkd_angle_loss(e, e).item() == 0.0
    assert dask_loss(e, e, z, z).item() == 0.0


def test_invariances_that_the_formulas_promise() -> None:
    f, e = randn(4, 3, 16, seed=43), randn(5, 6, seed=44)
    # AT / AMD maps are L2-normalised: a global rescale of the student changes nothing.
    assert at_loss(3.0 * f, f).item() == pytest.approx(0.0, abs=1e-7)
    assert amd_loss(3.0 * f, f).item() == pytest.approx(0.0, abs=1e-7)
    # RKD distances are normalised by their mean; angles ignore scale and translation.
    assert rkd_distance_loss(5.0 * e + 2.0, e).item() == pytest.approx(0.0, abs=1e-7)
    assert rkd_angle_loss(0.1 * e - 3.0, e).item() == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------- (e) AMC


def _pair(angle: float) -> Tensor:
    return torch.tensor([[1.0, 0.0], [math.cos(angle), math.sin(angle)]])


def _angle_after_step(angle: float, same: bool) -> tuple[float, float]:
    e = _pair(angle).requires_grad_()
    labels = torch.tensor([0, 0 if same else 1])
    loss = amc_loss(e, labels)
    loss.backward()
    with torch.no_grad():
        e2 = e - 0.05 * e.grad
        z = e2 / e2.norm(dim=1, keepdim=True)
        return loss.item(), math.acos(float((z[0] * z[1]).sum()))


def test_amc_pulls_same_class_pairs_together() -> None:
    loss, after = _angle_after_step(1.0, same=True)
    assert loss == pytest.approx(1.0, rel=1e-5)  # d² with d = 1 rad
    assert after < 1.0


def test_amc_pushes_different_class_pairs_within_the_margin() -> None:
    loss, after = _angle_after_step(0.3, same=False)
    assert loss == pytest.approx(0.2**2, rel=1e-4)  # (margin − d)² = (0.5 − 0.3)²
    assert after > 0.3


def test_amc_ignores_different_class_pairs_beyond_the_margin() -> None:
    e = _pair(0.8).requires_grad_()
    loss = amc_loss(e, torch.tensor([0, 1]))
    loss.backward()
    assert loss.item() == 0.0 and e.grad.abs().sum() == 0


# ------------------------------------------------------------------------------- edges


def test_batch_of_one() -> None:
    logits, f1, f2, e = randn(1, 5, seed=45), randn(1, 3, 16), randn(1, 2, 4, 4), randn(1, 4)
    assert torch.isfinite(ce_loss(logits, torch.tensor([2])))
    assert torch.isfinite(kd_loss(logits, randn(1, 5, seed=46), 4.0))
    assert torch.isfinite(at_loss(f1, f2))
    assert torch.isfinite(amd_loss(f1, f2, local=True))
    assert sp_loss(f1, f2).item() == 0.0  # a 1×1 normalised Gram matrix is ±1 on both sides
    # Relational terms have no pair / triplet: zero, and backward still works.
    s = e.clone().requires_grad_()
    for loss in (
        rkd_distance_loss(s, e),
        rkd_angle_loss(randn(2, 4).requires_grad_(), randn(2, 4)),
    ):
        assert loss.item() == 0.0
        loss.backward()
    assert amc_loss(s, torch.tensor([0])).item() == 0.0
    assert torch.isfinite(dask_loss(s, e, s, e))


def test_degenerate_embeddings_stay_finite() -> None:
    s = torch.zeros(4, 3, requires_grad=True)  # all points coincide
    loss = rkd_distance_loss(s, randn(4, 3)) + rkd_angle_loss(s, randn(4, 3))
    loss += amc_loss(s, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    f = torch.zeros(2, 3, 8, requires_grad=True)  # a dead feature map
    loss = at_loss(f, randn(2, 3, 8)) + amd_loss(f, randn(2, 3, 8), local=True)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()


ALL_TERMS: dict[str, Callable[[Callable[[Tensor], Tensor]], Tensor]] = {
    "ce": lambda c: ce_loss(c(randn(4, 5)), torch.tensor([0, 1, 2, 3])),
    "ce_soft": lambda c: ce_loss(c(randn(4, 5)), c(torch.softmax(randn(4, 5, seed=1), 1))),
    "kd": lambda c: kd_loss(c(randn(4, 5)), c(randn(4, 5, seed=1)), 4.0),
    "at": lambda c: at_loss(c(randn(4, 3, 64)), c(randn(4, 5, 8, 8, seed=1))),
    "sp": lambda c: sp_loss(c(randn(4, 3, 64)), c(randn(4, 5, 8, 8, seed=1))),
    "amd": lambda c: amd_loss(c(randn(4, 3, 64)), c(randn(4, 5, 8, 8, seed=1)), local=True),
    "rkd_d": lambda c: rkd_distance_loss(c(randn(6, 4)), c(randn(6, 8, seed=1))),
    "rkd_a": lambda c: rkd_angle_loss(c(randn(6, 4)), c(randn(6, 8, seed=1))),
    "dask": lambda c: dask_loss(
        c(randn(6, 4)), c(randn(6, 8, seed=1)), c(randn(6, 8)), c(randn(6, 8, seed=1))
    ),
    "amc": lambda c: amc_loss(c(randn(6, 4)), torch.tensor([0, 1, 1, 0, 1, 0])),
}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("term", sorted(ALL_TERMS))
def test_half_precision_inputs_reduce_in_float32(term: str, dtype: torch.dtype) -> None:
    half = ALL_TERMS[term](lambda x: x.to(dtype))
    same_values = ALL_TERMS[term](lambda x: x.to(dtype).float())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(same_values.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("term", sorted(ALL_TERMS))
def test_autocast_is_switched_off_inside_the_terms(term: str) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_amp = ALL_TERMS[term](lambda x: x)
    assert under_amp.dtype == torch.float32
    assert under_amp.item() == pytest.approx(ALL_TERMS[term](lambda x: x).item(), rel=1e-6)
