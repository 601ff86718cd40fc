"""Wide ResNet shape maths, without torch: one source for the engine that builds the networks
(``kdtui.engine.models``) and for the spec checks that must know their feature maps before
any run starts (which groups exist, how small a group's map gets).

WRN-d-k (Zagoruyko & Komodakis 2016): depth d = 6n + 4, a 16-channel stem convolution, then
three groups of n pre-activation basic blocks with widths 16k, 32k, 64k whose first
convolutions have strides 1, 2, 2.
"""

from __future__ import annotations

import math

#: Channels of the stem convolution, before the first group.
STEM_WIDTH = 16
#: Channels of the three groups at width k = 1 (each times k).
GROUP_WIDTHS = (16, 32, 64)
#: Stride of each group's first convolution.
GROUP_STRIDES = (1, 2, 2)
#: Feature groups a WRN returns for the feature losses.
N_GROUPS = len(GROUP_WIDTHS)


def is_wrn_depth(depth: int) -> bool:
    """6n + 4 with n >= 1: 10, 16, 22, 28, 40, ..."""
    return depth >= 10 and (depth - 4) % 6 == 0


def blocks_per_group(depth: int) -> int:
    """n of depth = 6n + 4: three groups of n blocks of two 3×3 convolutions each."""
    if not is_wrn_depth(depth):
        raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    return (depth - 4) // 6


def group_widths(width: int) -> tuple[int, int, int]:
    """Channels of each group's output for widening factor ``width`` (k)."""
    if width < 1:
        raise ValueError(f"WRN width must be >= 1, got {width}")
    a, b, c = (w * width for w in GROUP_WIDTHS)
    return a, b, c


def group_side(size: int, group: int) -> int:
    """One side of a group's output map for an input side (or series length) ``size``: a
    3×3 convolution with padding 1 and stride s gives ⌈side / s⌉."""
    for stride in GROUP_STRIDES[: group + 1]:
        size = math.ceil(size / stride)
    return size


def group_shape(size: int | None, group: int, dim: int) -> tuple[int, ...] | None:
    """Spatial shape of a group's output, (L,) for 1-D and (H, W) for 2-D models of square
    inputs; None when the input size is not known before the data is read."""
    if size is None:
        return None
    side = group_side(size, group)
    return (side,) if dim == 1 else (side, side)
