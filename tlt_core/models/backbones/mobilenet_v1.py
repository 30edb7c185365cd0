"""MobileNet V1 (alpha 1) cut at stride 16, as TLT builds it for SSD.

``conv1`` (32, stride 2) then depthwise-separable blocks 1..11; blocks 2, 4, 6 have stride
2, so block 5 ends at stride 8 and block 11 at stride 16 (TLT's ``stride=16`` variant drops
blocks 12-13).

Layer names (Keras/TLT): ``conv1``, ``conv1_bn``, ``conv1_relu``; per block i
``conv_dw_{i}``, ``conv_dw_{i}_bn``, ``conv_dw_{i}_relu``, ``conv_pw_{i}``,
``conv_pw_{i}_bn``, ``conv_pw_relu_{i}``.

Freeze block ids (000): 0 = ``conv1``, 1..11 = block i.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import backbone_layers

# (pointwise filters, depthwise stride) of blocks 1..11
_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
)


def build_mobilenet_v1(
    inputs,
    nlayers: int | None = None,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[conv_pw_relu_5 (stride 8), conv_pw_relu_11 (stride 16)]``."""
    # no depth option (000): nlayers must be unset
    _, layers = backbone_layers(
        "mobilenet_v1", nlayers, freeze_blocks, freeze_bn, kernel_regularizer
    )
    x = layers.conv_bn_relu(
        inputs,
        32,
        3,
        strides=2,
        block=0,
        conv_name="conv1",
        bn_name="conv1_bn",
        relu_name="conv1_relu",
    )
    outputs = []
    for i, (filters, stride) in enumerate(_BLOCKS, start=1):
        x = layers.depthwise(x, strides=stride, block=i, name=f"conv_dw_{i}")
        x = layers.bn(x, block=i, name=f"conv_dw_{i}_bn")
        x = keras.layers.ReLU(name=f"conv_dw_{i}_relu")(x)
        x = layers.conv_bn_relu(
            x,
            filters,
            1,
            block=i,
            conv_name=f"conv_pw_{i}",
            bn_name=f"conv_pw_{i}_bn",
            relu_name=f"conv_pw_relu_{i}",
        )
        if i in (5, 11):
            outputs.append(x)
    return outputs
