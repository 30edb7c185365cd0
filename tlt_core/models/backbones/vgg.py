"""VGG 16/19 with BatchNorm and strided convolutions instead of max-pooling (TLT's SSD VGG).

Blocks 1..5 with 64, 128, 256, 512, 512 filters; the first convolution of blocks 2..5 has
stride 2, so block 4 ends at stride 8 and block 5 at stride 16.

Layer names: ``block_{b}{letter}_conv_1``, ``block_{b}{letter}_bn_1``,
``block_{b}{letter}_relu`` (e.g. ``block_4c_relu``, the stride-8 map of VGG-16).

Freeze block ids (000): 1..5 = ``block_1``..``block_5``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tlt_core.models.backbones.common import (
    backbone_layers,
    subblock_letter,
)

_REPEATS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


def build_vgg(
    inputs,
    nlayers: int = 16,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[block_4 output (stride 8), block_5 output (stride 16)]``."""
    nlayers, layers = backbone_layers("vgg", nlayers, freeze_blocks, freeze_bn, kernel_regularizer)
    x = inputs
    outputs = []
    for b, (repeat, width) in enumerate(zip(_REPEATS[nlayers], _WIDTHS, strict=True), start=1):
        for r in range(repeat):
            prefix = f"block_{b}{subblock_letter(r)}_"
            x = layers.conv_bn_relu(
                x,
                width,
                3,
                strides=2 if (r == 0 and b > 1) else 1,
                block=b,
                conv_name=f"{prefix}conv_1",
                bn_name=f"{prefix}bn_1",
                relu_name=f"{prefix}relu",
            )
        if b in (4, 5):
            outputs.append(x)
    return outputs
