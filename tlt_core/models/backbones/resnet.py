"""ResNet 10/18/34/50/101 as TLT builds it for SSD: no max-pool, all-projection shortcuts.

Strides: ``conv1`` 2, ``block_1`` 2, ``block_2`` 2, ``block_3`` 2, ``block_4`` 1, so the
backbone ends at stride 16. Every sub-block has a 1x1 projection shortcut
(``all_projections`` in TLT) so that the pruner can prune every convolution.

Layer names: ``conv1``, ``bn_conv1``, ``conv1_relu``; sub-block ``block_{b}{letter}_``
prefix + ``conv_{i}``, ``bn_{i}``, ``relu_{i}`` (inner), ``conv_shortcut``,
``bn_shortcut``, ``add``, ``relu`` (output).

Freeze block ids (000): 0 = ``conv1``/``bn_conv1``, 1..3 = ``block_1``..``block_3``.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import (
    LayerFactory,
    backbone_layers,
    subblock_letter,
)

# nlayers -> sub-block repeats of blocks 1..4
_REPEATS = {
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
}
_WIDTHS = (64, 128, 256, 512)
_STRIDES = (2, 2, 2, 1)


def _subblock(layers: LayerFactory, x, prefix: str, kernels_filters, stride: int, block: int):
    shortcut = x
    last = len(kernels_filters) - 1
    for i, (kernel, filters) in enumerate(kernels_filters):
        x = layers.conv(
            x,
            filters,
            kernel,
            strides=stride if i == 0 else 1,
            block=block,
            name=f"{prefix}conv_{i + 1}",
        )
        x = layers.bn(x, block=block, name=f"{prefix}bn_{i + 1}")
        if i != last:
            x = keras.layers.ReLU(name=f"{prefix}relu_{i + 1}")(x)
    out_filters = kernels_filters[-1][1]
    shortcut = layers.conv(
        shortcut, out_filters, 1, strides=stride, block=block, name=f"{prefix}conv_shortcut"
    )
    shortcut = layers.bn(shortcut, block=block, name=f"{prefix}bn_shortcut")
    x = keras.layers.Add(name=f"{prefix}add")([x, shortcut])
    return keras.layers.ReLU(name=f"{prefix}relu")(x)


def build_resnet(
    inputs,
    nlayers: int = 18,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[block_2 output (stride 8), block_4 output (stride 16)]``."""
    nlayers, layers = backbone_layers(
        "resnet", nlayers, freeze_blocks, freeze_bn, kernel_regularizer
    )
    x = layers.conv(inputs, 64, 7, strides=2, block=0, name="conv1")
    x = layers.bn(x, block=0, name="bn_conv1")
    x = keras.layers.ReLU(name="conv1_relu")(x)

    bottleneck = nlayers >= 50
    outputs = []
    for b, (repeat, width, stride) in enumerate(
        zip(_REPEATS[nlayers], _WIDTHS, _STRIDES, strict=True), start=1
    ):
        if bottleneck:
            kernels_filters = [(1, width), (3, width), (1, 4 * width)]
        else:
            kernels_filters = [(3, width), (3, width)]
        for r in range(repeat):
            x = _subblock(
                layers,
                x,
                f"block_{b}{subblock_letter(r)}_",
                kernels_filters,
                stride if r == 0 else 1,
                b,
            )
        if b in (2, 4):
            outputs.append(x)
    return outputs
