"""kdtui.engine.augment: one permutation and one λ for every view; the crop + flip recipe."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from kdtui.engine.augment import crop_flip, cutmix, mix_batch, mix_targets, mixup
from kdtui.spec import CutMixSpec, MixupSpec

B = 8


def tagged_views() -> dict[str, Tensor]:
    """Sample i is the constant i in the 1-D view and 100 + i in the 2-D view, so any mixed
    value says which two samples it came from and in which proportion."""
    ids = torch.arange(B, dtype=torch.float32)
    return {
        "signal": ids.view(B, 1, 1).expand(B, 3, 40).clone(),
        "gaf": (100 + ids).view(B, 1, 1, 1).expand(B, 3, 12, 12).clone(),
    }


def read_mix(target: Tensor) -> tuple[float, Tensor]:
    """λ and the permutation back from the mixed one-hot target of labels 0..B-1."""
    partners = []
    for i, row in enumerate(target):
        others = [k for k in row.nonzero().flatten().tolist() if k != i]
        partners.append(others[0] if others else i)
    perm = torch.tensor(partners)
    lam = next(float(target[i, i]) for i in range(B) if perm[i] != i)
    return lam, perm


def test_mixup_applies_one_permutation_and_lambda_to_every_view():
    labels = torch.arange(B)
    gen = torch.Generator().manual_seed(3)
    views, target, hard = mix_batch(tagged_views(), labels, B, MixupSpec(alpha=1.0), "signal", gen)
    lam, perm = read_mix(target)
    assert 0 < lam < 1 and (perm != torch.arange(B)).any()
    for i in range(B):
        assert views["signal"][i].unique().tolist() == pytest.approx(
            [lam * i + (1 - lam) * int(perm[i])]
        )
        mixed_2d = lam * (100 + i) + (1 - lam) * (100 + int(perm[i]))
        assert views["gaf"][i].unique().tolist() == pytest.approx([mixed_2d], rel=1e-6)
    assert torch.equal(hard, labels if lam >= 0.5 else labels[perm])
    assert torch.allclose(target.sum(1), torch.ones(B))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cutmix_pastes_the_same_partner_into_every_view(seed):
    labels = torch.arange(B)
    gen = torch.Generator().manual_seed(seed)
    views, target, hard = mix_batch(tagged_views(), labels, B, CutMixSpec(alpha=1.0), "signal", gen)
    sig, gaf = views["signal"], views["gaf"]
    lam, perm = read_mix(target)
    for i in range(B):
        own_1d = (sig[i, 0] == i).float()
        own_2d = (gaf[i, 0] == 100 + i).float()
        partner_1d = sig[i, 0][own_1d == 0].unique()
        partner_2d = gaf[i, 0][own_2d == 0].unique() - 100
        if perm[i] == i:
            continue
        # the same partner in both views, pasted as one time segment and as one box
        assert partner_1d.tolist() == partner_2d.tolist() == [perm[i]]
        assert own_1d.diff().abs().sum() <= 2
        rows, cols = (own_2d == 0).nonzero(as_tuple=True)
        assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == len(rows)
        assert own_1d.mean().item() == pytest.approx(lam)  # labels: the student view's share
        assert own_2d.mean().item() == pytest.approx(lam, abs=0.1)  # the same λ, in pixels
    assert torch.equal(hard, labels if lam >= 0.5 else labels[perm])


def test_cutmix_region_sizes_follow_lambda():
    x = torch.zeros(2, 1, 100)
    out, kept = cutmix(x, torch.tensor([1, 0]), 0.7, (0.0, 0.999))
    assert kept == pytest.approx(0.7) and torch.equal(out, x)
    img = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 10, 10).clone()
    out, kept = cutmix(img, torch.tensor([1, 0]), 0.64, (0.0, 0.0))
    assert kept == pytest.approx(1 - 36 / 100)  # a 6×6 box (√0.36 of each side), top left
    assert (out[0, 0, :6, :6] == 1).all() and (out[0, 0, 6:, :] == 0).all()
    out, kept = cutmix(img, torch.tensor([1, 0]), 0.64, (0.999, 0.999))
    assert (out[0, 0, 4:, 4:] == 1).all()  # bottom right, wholly inside


def test_mixing_is_reproducible_from_the_generator_state():
    gen = torch.Generator().manual_seed(11)
    state = gen.get_state()
    first = mix_batch(tagged_views(), torch.arange(B), B, CutMixSpec(), "signal", gen)
    gen.set_state(state)
    again = mix_batch(tagged_views(), torch.arange(B), B, CutMixSpec(), "signal", gen)
    for a, b in zip(first[1:], again[1:], strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(first[0][k], again[0][k]) for k in first[0])


def test_no_mixing_without_a_spec_or_below_prob():
    views, labels = tagged_views(), torch.arange(B)
    gen = torch.Generator().manual_seed(0)
    for spec in (None, MixupSpec(prob=0.0)):
        out, target, hard = mix_batch(views, labels, B, spec, "signal", gen)
        assert out is views and target is labels and hard is labels


def test_mix_targets_and_mixup_formulas():
    labels, perm = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    t = mix_targets(labels, perm, 0.25, 4)
    assert torch.allclose(t, 0.25 * F.one_hot(labels, 4) + 0.75 * F.one_hot(labels[perm], 4))
    x = torch.randn(3, 2, 5)
    assert torch.allclose(mixup(x, perm, 0.25), 0.25 * x + 0.75 * x[perm])


def test_crop_flip_is_a_padded_crop_or_its_mirror_per_sample():
    b, c, h, w, pad = 32, 3, 6, 5, 2
    x = (torch.arange(b * c * h * w) % 251 + 1).to(torch.uint8).view(b, c, h, w)
    out = crop_flip(x, pad, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x, (pad, pad, pad, pad))
    seen = set()
    for i in range(b):
        matches = [
            (dy, dx, flip)
            for dy, dx, flip in itertools.product(range(2 * pad + 1), range(2 * pad + 1), (0, 1))
            if torch.equal(
                out[i],
                padded[i, :, dy : dy + h, dx : dx + w].flip(2)
                if flip
                else padded[i, :, dy : dy + h, dx : dx + w],
            )
        ]
        assert matches, f"sample {i} is not a crop of its padded image"
        seen.add(matches[0][2])
    assert seen == {0, 1}  # both mirrored and plain crops occur
