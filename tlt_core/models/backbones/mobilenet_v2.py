"""MobileNet V2 (alpha 1) cut at stride 16, as TLT builds it for SSD (all projections).

``conv1`` (32, stride 2) then inverted-residual blocks 0..12 (block 0 has no expansion);
blocks 1, 3, 6 have stride 2, so the stride-8 map is the expansion of block 6 (taken
before its strided depthwise conv; TLT's ``re_lu_7``) and block 12 ends at stride 16.
Residual blocks add a 1x1 ``projected_inputs`` convolution on the shortcut (TLT's
``all_projections``), so every convolution can be pruned.

Layer names: ``conv1``, ``bn_conv1``, ``conv1_relu``; ``expanded_conv_`` (block 0) or
``block_{n}_`` prefix + ``expand``, ``expand_bn``, ``expand_relu``, ``depthwise``,
``depthwise_bn``, ``depthwise_relu``, ``project``, ``project_bn``, ``projected_inputs``,
``add``.

Freeze block ids (000): 0 = ``conv1``, k = inverted-residual block k-1 (1..13).
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tlt_core.models.backbones.common import backbone_layers

# (output filters, stride, expansion) of inverted-residual blocks 0..12
_BLOCKS = (
    (16, 1, 1),
    (24, 2, 6),
    (24, 1, 6),
    (32, 2, 6),
    (32, 1, 6),
    (32, 1, 6),
    (64, 2, 6),
    (64, 1, 6),
    (64, 1, 6),
    (64, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
)
_STRIDE8_BLOCK = 6


def build_mobilenet_v2(
    inputs,
    nlayers: int | None = None,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """Return ``[block_6_expand_relu (stride 8), block_12 output (stride 16)]``."""
    # no depth option (000): nlayers must be unset
    _, layers = backbone_layers(
        "mobilenet_v2", nlayers, freeze_blocks, freeze_bn, kernel_regularizer
    )
    x = layers.conv_bn_relu(
        inputs,
        32,
        3,
        strides=2,
        block=0,
        conv_name="conv1",
        bn_name="bn_conv1",
        relu_name="conv1_relu",
    )
    outputs = []
    in_channels = 32
    for n, (filters, stride, expansion) in enumerate(_BLOCKS):
        block = n + 1
        prefix = f"block_{n}_" if n else "expanded_conv_"
        shortcut = x
        if expansion != 1:
            x = layers.conv_bn_relu(
                x,
                expansion * in_channels,
                1,
                block=block,
                conv_name=f"{prefix}expand",
                bn_name=f"{prefix}expand_bn",
                relu_name=f"{prefix}expand_relu",
            )
            if n == _STRIDE8_BLOCK:
                outputs.append(x)
        x = layers.depthwise(x, strides=stride, block=block, name=f"{prefix}depthwise")
        x = layers.bn(x, block=block, name=f"{prefix}depthwise_bn")
        x = keras.layers.ReLU(name=f"{prefix}depthwise_relu")(x)
        x = layers.conv(x, filters, 1, block=block, name=f"{prefix}project")
        x = layers.bn(x, block=block, name=f"{prefix}project_bn")
        if stride == 1 and in_channels == filters:
            shortcut = layers.conv(
                shortcut, filters, 1, block=block, name=f"{prefix}projected_inputs"
            )
            x = keras.layers.Add(name=f"{prefix}add")([shortcut, x])
        in_channels = filters
    outputs.append(x)
    return outputs
