"""The classifier: a shared backbone, global average pooling and the ``predictions`` layer.

As TLT's classification models (002, 11.1: ``predictions (Dense)`` after the pooled
features): input ``input_1`` [B, H, W, 3] (the preprocessed image, channels-last), the
deepest feature map of `tlt_core.models.backbones` (stride 16: the SSD trunk, which the
backbone table shares), ``avg_pool`` (GlobalAveragePooling2D), ``dropout`` when the spec
asks for it, and ``predictions``: Dense with a softmax, float32 even under mixed
precision, so the exported graph's output is ``predictions/Softmax`` (002, chapter 9).

Regularisation follows ``reg_config.scope``: the kernel regulariser goes to the backbone's
convolutions (``Conv2D``) and/or the ``predictions`` kernel (``Dense``).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tlt_core.models.backbones import get_backbone

INPUT_NAME = "input_1"
OUTPUT_NAME = "predictions"


def make_regularizer(reg_type: str, weight_decay: float):
    """``reg_config`` type and weight as a Keras regulariser (None: no regularisation)."""
    if reg_type == "None" or weight_decay == 0.0:
        return None
    if reg_type == "L1":
        return keras.regularizers.L1(weight_decay)
    return keras.regularizers.L2(weight_decay)


def build_classifier(
    *,
    arch: str,
    n_layers: int | None,
    input_shape: tuple[int, int, int],
    num_classes: int,
    freeze_blocks: Sequence[int] = (),
    freeze_bn: bool = False,
    dropout: float = 0.0,
    conv_regularizer=None,
    dense_regularizer=None,
) -> keras.Model:
    """A classifier of ``num_classes`` on ``input_shape`` (H, W, C), softmax outputs."""
    inputs = keras.Input(shape=tuple(input_shape), name=INPUT_NAME)
    features = get_backbone(arch)(
        inputs,
        n_layers,
        freeze_blocks=tuple(freeze_blocks),
        freeze_bn=freeze_bn,
        kernel_regularizer=conv_regularizer,
    )[-1]
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=dense_regularizer,
        dtype="float32",
        name=OUTPUT_NAME,
    )(x)
    name = f"{arch}{n_layers if n_layers is not None else ''}"
    return keras.Model(inputs, outputs, name=name)


def build_from_spec(spec, num_classes: int) -> keras.Model:
    """`build_classifier` with the spec's model and regulariser settings."""
    regularizer = make_regularizer(spec.reg_type, spec.weight_decay)
    return build_classifier(
        arch=spec.arch,
        n_layers=spec.n_layers,
        input_shape=spec.input_shape,
        num_classes=num_classes,
        freeze_blocks=spec.freeze_blocks,
        freeze_bn=spec.freeze_bn,
        dropout=spec.dropout,
        conv_regularizer=regularizer if "Conv2D" in spec.reg_scope else None,
        dense_regularizer=regularizer if "Dense" in spec.reg_scope else None,
    )
