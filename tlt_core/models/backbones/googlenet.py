"""GoogLeNet (Inception v1) with BatchNorm, as TLT builds it for SSD (stride 16, no head).

Stem: ``conv1`` (7x7/2) ``pool1``, ``conv2_reduce``, ``conv2``, ``pool2``; inception 3a, 3b
(stride 8), ``pool3``, inception 4a..4e, 5a, 5b (stride 16). Each inception block
``inception_{id}_`` has branches ``1x1``; ``3x3_reduce`` -> ``3x3``; ``5x5_reduce`` ->
``5x5``; ``pool`` -> ``pool_proj``; each conv with ``_bn`` and ``_relu``; concatenated in
``inception_{id}_output``.

Freeze block ids (000): 0 = the stem convolutions, 1..7 = inception 3a, 3b, 4a..4e
(5a and 5b are not freezable, as in 000).
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import (
    LayerFactory,
    backbone_layers,
)

# (block id, freeze id, (1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj))
_INCEPTIONS_8 = (
    ("3a", 1, (64, 96, 128, 16, 32, 32)),
    ("3b", 2, (128, 128, 192, 32, 96, 64)),
)
_INCEPTIONS_16 = (
    ("4a", 3, (192, 96, 208, 16, 48, 64)),
    ("4b", 4, (160, 112, 224, 24, 64, 64)),
    ("4c", 5, (128, 128, 256, 24, 64, 64)),
    ("4d", 6, (112, 144, 288, 32, 64, 64)),
    ("4e", 7, (256, 160, 320, 32, 128, 128)),
    ("5a", None, (256, 160, 320, 32, 128, 128)),
    ("5b", None, (384, 192, 384, 48, 128, 128)),
)


def _cbr(layers: LayerFactory, x, filters: int, kernel: int, name: str, block, strides=1):
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


def _inception(layers: LayerFactory, x, block_id: str, block, widths):
    prefix = f"inception_{block_id}_"
    b1 = _cbr(layers, x, widths[0], 1, f"{prefix}1x1", block)
    b2 = _cbr(layers, x, widths[1], 1, f"{prefix}3x3_reduce", block)
    b2 = _cbr(layers, b2, widths[2], 3, f"{prefix}3x3", block)
    b3 = _cbr(layers, x, widths[3], 1, f"{prefix}5x5_reduce", block)
    b3 = _cbr(layers, b3, widths[4], 5, f"{prefix}5x5", block)
    b4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}pool")(x)
    b4 = _cbr(layers, b4, widths[5], 1, f"{prefix}pool_proj", block)
    return keras.layers.Concatenate(name=f"{prefix}output")([b1, b2, b3, b4])


def build_googlenet(
    inputs,
    nlayers: int | None = None,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[inception_3b_output (stride 8), inception_5b_output (stride 16)]``."""
    # no depth option (000): nlayers must be unset
    _, layers = backbone_layers("googlenet", nlayers, freeze_blocks, freeze_bn, kernel_regularizer)
    x = layers.conv(inputs, 64, 7, strides=2, block=0, name="conv1")
    x = layers.bn(x, block=0, name="bn_conv1")
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool1")(x)
    x = layers.conv(x, 64, 1, block=0, name="conv2_reduce")
    x = layers.bn(x, block=0, name="bn_conv2_reduce")
    x = keras.layers.ReLU(name="conv2_reduce_relu")(x)
    x = layers.conv(x, 192, 3, block=0, name="conv2")
    x = layers.bn(x, block=0, name="bn_conv2")
    x = keras.layers.ReLU(name="conv2_relu")(x)
    x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool2")(x)
    for block_id, block, widths in _INCEPTIONS_8:
        x = _inception(layers, x, block_id, block, widths)
    stride8 = x
    x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool3")(x)
    for block_id, block, widths in _INCEPTIONS_16:
        x = _inception(layers, x, block_id, block, widths)
    return [stride8, x]
