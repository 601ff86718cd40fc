"""Wide ResNet: published parameter counts, output shapes, and that it can learn at all."""

import pytest
import torch
from torch import nn

from kdtui.engine.models import ModelOutput, WideResNet


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Zagoruyko & Komodakis 2016, CIFAR-10 (3 input channels, 10 classes), in millions.
@pytest.mark.parametrize(
    ("depth", "width", "millions"),
    [(16, 1, 0.175), (16, 2, 0.69), (40, 4, 8.9), (16, 8, 11.0), (28, 10, 36.5)],
)
def test_parameter_counts_match_the_paper(depth: int, width: int, millions: float) -> None:
    model = WideResNet(depth, width, num_classes=10, in_channels=3)
    assert _n_params(model) / 1e6 == pytest.approx(millions, rel=0.02)


@pytest.mark.parametrize(
    ("dim", "shape", "spatial"),
    [
        (1, (4, 3, 500), [(500,), (250,), (125,)]),
        (2, (4, 3, 64, 64), [(64, 64), (32, 32), (16, 16)]),
    ],
)
def test_output_shapes(dim: int, shape: tuple[int, ...], spatial: list[tuple[int, ...]]) -> None:
    model = WideResNet(16, 2, num_classes=7, in_channels=3, dim=dim)
    assert model.feature_channels == (32, 64, 128)
    out = model(torch.randn(*shape))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (4, 7)
    assert [tuple(f.shape) for f in out.feats] == [
        (4, c, *s) for c, s in zip(model.feature_channels, spatial, strict=True)
    ]
    assert out.emb.shape == (4, 128)


@pytest.mark.parametrize("depth", [15, 4, 0])
def test_depth_must_be_6n_plus_4(depth: int) -> None:
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNet(depth, 1, num_classes=10, in_channels=3)


def test_rejects_unknown_dim() -> None:
    with pytest.raises(ValueError, match="dim"):
        WideResNet(16, 1, num_classes=10, in_channels=3, dim=3)


@pytest.mark.parametrize(("dim", "shape"), [(1, (8, 3, 64)), (2, (8, 3, 16, 16))])
def test_overfits_a_tiny_batch(dim: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(*shape), torch.arange(8) % 4
    model = WideResNet(10, 1, num_classes=4, in_channels=3, dim=dim)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_checkpoint_of_other_inputs_says_which_weight_differs() -> None:
    from kdtui.engine.trainer import _misfit

    saved = WideResNet(10, 1, num_classes=4, in_channels=3, dim=1).state_dict()
    with pytest.raises(RuntimeError) as info:
        WideResNet(10, 1, num_classes=4, in_channels=2, dim=1).load_state_dict(saved)
    assert _misfit(info.value).startswith("stem.weight is [16, 3, 3] in the checkpoint, [16, 2, 3]")
    with pytest.raises(RuntimeError) as info:
        WideResNet(16, 1, num_classes=4, in_channels=3, dim=1).load_state_dict(saved)
    assert _misfit(info.value).startswith("Missing key(s) in state_dict:")  # not the model's name
