"""DarkNet 19/53 as TLT builds it for SSD (BatchNorm, ReLU in place of leaky ReLU).

TLT's SSD builds DarkNet with ``force_relu=True``; we follow it (ReLU exports and quantises
more simply than LeakyReLU), and name the activations ``*_relu`` for what they are.

- DarkNet-19: ``conv1`` then max-pools (``maxpool_1``..``maxpool_5``) between blocks
  ``b1``..``b5`` of 3x3/1x1 convs ``b{k}_conv{j}``.
- DarkNet-53: ``conv1``, then per block k a stride-2 ``conv{k+1}`` followed by residual
  pairs ``b{k}_conv{i}_1`` (1x1) / ``b{k}_conv{i}_2`` (3x3) added in ``b{k}_add{i}``.

Each conv ``NAME`` has ``NAME_bn`` and ``NAME_relu``. Block 3 ends at stride 8, block 4 at
16, block 5 at 32. Unlike the other backbones DarkNet gives SSD two predictor maps
(blocks 3 and 4) and the expansion layers grow from block 5.

Freeze block ids (000): 0 = ``conv1``, k = block k (its stride conv included), 1..5.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import (
    LayerFactory,
    backbone_layers,
)

# DarkNet-19 blocks 1..5: (kernel, filters) of each conv
_D19_BLOCKS = (
    ((3, 64),),
    ((3, 128), (1, 64), (3, 128)),
    ((3, 256), (1, 128), (3, 256)),
    ((3, 512), (1, 256), (3, 512), (1, 256), (3, 512)),
    ((3, 1024), (1, 512), (3, 1024), (1, 512), (3, 1024)),
)
# DarkNet-53 blocks 1..5: (output filters, residual repeats)
_D53_BLOCKS = ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))


def _cbr(layers: LayerFactory, x, filters: int, kernel: int, name: str, block: int, strides=1):
    return layers.conv_bn_relu(
        x,
        filters,
        kernel,
        strides=strides,
        block=block,
        conv_name=name,
        bn_name=f"{name}_bn",
        relu_name=f"{name}_relu",
    )


def build_darknet(
    inputs,
    nlayers: int = 19,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[block 3 (stride 8), block 4 (stride 16), block 5 (stride 32)]``."""
    nlayers, layers = backbone_layers(
        "darknet", nlayers, freeze_blocks, freeze_bn, kernel_regularizer
    )
    x = _cbr(layers, inputs, 32, 3, "conv1", 0)
    outputs = []
    if nlayers == 19:
        for k, convs in enumerate(_D19_BLOCKS, start=1):
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"maxpool_{k}")(x)
            for j, (kernel, filters) in enumerate(convs, start=1):
                x = _cbr(layers, x, filters, kernel, f"b{k}_conv{j}", k)
            if k >= 3:
                outputs.append(x)
    else:
        for k, (filters, repeats) in enumerate(_D53_BLOCKS, start=1):
            x = _cbr(layers, x, filters, 3, f"conv{k + 1}", k, strides=2)
            for i in range(1, repeats + 1):
                y = _cbr(layers, x, filters // 2, 1, f"b{k}_conv{i}_1", k)
                y = _cbr(layers, y, filters, 3, f"b{k}_conv{i}_2", k)
                x = keras.layers.Add(name=f"b{k}_add{i}")([x, y])
            if k >= 3:
                outputs.append(x)
    return outputs
