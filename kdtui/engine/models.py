"""Wide ResNets (Zagoruyko & Komodakis 2016), 1-D for signals and 2-D for images.

One implementation parameterised by ``dim`` so that a 1-D student and a 2-D teacher of the same
depth/width have exactly the same structure: cross-modal KD compares them group by group.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from kdtui.spec.arch import GROUP_STRIDES, STEM_WIDTH, blocks_per_group, group_widths

#: The only difference between the 1-D and the 2-D network: which conv and batch-norm classes.
_LAYERS: dict[int, tuple[type[nn.Module], type[nn.Module]]] = {
    1: (nn.Conv1d, nn.BatchNorm1d),
    2: (nn.Conv2d, nn.BatchNorm2d),
}


class ModelOutput(NamedTuple):
    """Everything the losses may need from one forward pass.

    ``feats`` are the outputs of the three groups (attention transfer, similarity-preserving
    losses); ``emb`` is the pooled pre-logit embedding (angular/contrastive losses).
    """

    logits: Tensor
    feats: list[Tensor]
    emb: Tensor


class _Block(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3-[dropout]-BN-ReLU-conv3, plus a shortcut.

    The shortcut is a 1x1 conv when the shape changes; it then takes the pre-activated input,
    as in the reference implementation.
    """

    def __init__(self, dim: int, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        conv, bn = _LAYERS[dim]
        self.bn1 = bn(c_in)
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = bn(c_out)
        self.conv2 = conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        # element-wise dropout after the first conv, as in the authors' original (Lua) code
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = (
            conv(c_in, c_out, 1, stride=stride, bias=False)
            if stride != 1 or c_in != c_out
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        o = torch.relu(self.bn1(x))
        y = self.drop(self.conv1(o))
        y = self.conv2(torch.relu(self.bn2(y)))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """WRN-depth-width for ``dim``-dimensional inputs (1: (B, C, L) signals, 2: (B, C, H, W)).

    depth = 6n + 4: n blocks in each of three groups (widths 16k, 32k, 64k, strides 1, 2, 2)
    after a 16-channel stem conv, then BN-ReLU, global average pooling and a linear classifier.
    """

    def __init__(
        self,
        depth: int,
        width: int,
        num_classes: int,
        in_channels: int,
        dim: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n = blocks_per_group(depth)  # the shape maths is shared with the spec's checks
        self.feature_channels: tuple[int, int, int] = group_widths(width)
        if dim not in _LAYERS:
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        conv, bn = _LAYERS[dim]

        self.stem = conv(in_channels, STEM_WIDTH, 3, stride=1, padding=1, bias=False)
        groups = []
        c_in = STEM_WIDTH
        for c_out, stride in zip(self.feature_channels, GROUP_STRIDES, strict=True):
            blocks = [
                _Block(dim, c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, dropout)
                for i in range(n)
            ]
            groups.append(nn.Sequential(*blocks))
            c_in = c_out
        self.groups = nn.ModuleList(groups)
        self.bn = bn(c_in)
        self.fc = nn.Linear(c_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """The reference initialisation; the published accuracies depend on it."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> ModelOutput:
        h = self.stem(x)
        feats = []
        for group in self.groups:
            h = group(h)
            feats.append(h)
        h = torch.relu(self.bn(h))
        emb = h.flatten(2).mean(dim=2)
        return ModelOutput(self.fc(emb), feats, emb)
