"""SqueezeNet 1.0 (no BatchNorm, biased convolutions) cut at stride 16, as TLT's SSD uses it.

``conv1`` (96, 7x7/2), ``pool1``, fire 2-4, ``pool4``, fire 5-8 (stride 8), ``pool8``,
fire 9 (stride 16). Fire module k: ``fire{k}_squeeze1x1`` -> (``fire{k}_expand1x1`` |
``fire{k}_expand3x3``), each with ``_relu``, concatenated in ``fire{k}``.

Freeze block ids: 000 lists none for SqueezeNet (TLT ignored ``freeze_blocks`` for it); we
use the numbering of TLT's template: 0 = ``conv1``, k = fire module k+1 (1..8).
SqueezeNet has no BatchNorm, so ``freeze_bn`` changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import (
    LayerFactory,
    backbone_layers,
)

# fire id -> (squeeze filters, expand filters per branch)
_FIRES = {
    2: (16, 64),
    3: (16, 64),
    4: (32, 128),
    5: (32, 128),
    6: (48, 192),
    7: (48, 192),
    8: (64, 256),
    9: (64, 256),
}


def _conv_relu(
    layers: LayerFactory, x, filters: int, kernel: int, name: str, block: int, strides: int = 1
):
    x = layers.conv(x, filters, kernel, strides=strides, block=block, use_bias=True, name=name)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _fire(layers: LayerFactory, x, fire_id: int):
    squeeze, expand = _FIRES[fire_id]
    block = fire_id - 1
    prefix = f"fire{fire_id}_"
    x = _conv_relu(layers, x, squeeze, 1, f"{prefix}squeeze1x1", block)
    left = _conv_relu(layers, x, expand, 1, f"{prefix}expand1x1", block)
    right = _conv_relu(layers, x, expand, 3, f"{prefix}expand3x3", block)
    return keras.layers.Concatenate(name=f"fire{fire_id}")([left, right])


def build_squeezenet(
    inputs,
    nlayers: int | None = None,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[fire8 (stride 8), fire9 (stride 16)]``."""
    del freeze_bn  # no BatchNorm
    # no depth option (000): nlayers must be unset
    _, layers = backbone_layers("squeezenet", nlayers, freeze_blocks, False, kernel_regularizer)
    x = _conv_relu(layers, inputs, 96, 7, "conv1", 0, strides=2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for fire_id in (2, 3, 4):
        x = _fire(layers, x, fire_id)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool4")(x)
    for fire_id in (5, 6, 7, 8):
        x = _fire(layers, x, fire_id)
    stride8 = x
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool8")(x)
    x = _fire(layers, x, 9)
    return [stride8, x]
