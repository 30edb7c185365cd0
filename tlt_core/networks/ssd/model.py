"""The SSD detector: backbone + expansion layers + conf/loc predictor heads.

Layout (as TLT's ``ssd_arch`` / ``get_raw_ssd_model``, channels-last):

- the backbone (``tlt_core.models.backbones``) returns its maps shallow to deep; all but
  the last are predictor maps, the last is the trunk the expansion blocks grow from;
- expansion block ``i`` = 1x1 conv (bias, ReLU) + 3x3 conv (stride s, BatchNorm, ReLU),
  layers ``ssd_expand_block_{i}_conv_0``, ``_relu_0``, ``_conv_1``, ``_bn_1``, ``_relu_1``;
  ``i`` is the position in the family's expansion table (for the small backbones block 0
  is empty: the stride-16 trunk is a predictor map as it is, and names start at 1);
- this gives 6 predictor maps at strides 8, 16, 32, 64, 128, 256. Every 3x3 stride-2 conv
  has ``padding='same'`` so a map never shrinks below 1x1 (ceil(1 / 2) = 1): a 64x64 input
  gives 8, 4, 2, 1, 1, 1 and 128x128 gives 16, 8, 4, 2, 1, 1. No stride is changed for
  small inputs; the anchors are generated from the actual sizes
  (``ssd_feature_map_sizes``);
- heads ``ssd_conf_{i}`` (3x3, ``n_boxes[i] * (num_classes + 1)`` filters) and
  ``ssd_loc_{i}`` (3x3, ``n_boxes[i] * 4``), reshaped by ``ssd_conf_reshape_{i}`` /
  ``ssd_loc_reshape_{i}`` to ``[B, h * w * n_boxes, .]``: row-major over (row, column, box),
  which is the order of ``tlt_core.networks.ssd.anchors.generate_anchors``; concatenated over the
  layers in the layers ``conf`` [B, A, num_classes + 1] (logits, no softmax) and ``loc``
  [B, A, 4].

The model's outputs are a dict ``{"conf": ..., "loc": ...}`` whose keys are also the names
of the two concatenation layers (so dict-style ``fit``/``predict`` and a tf.function
signature for ONNX export both see ``conf`` and ``loc``). Both layers have dtype float32,
so the outputs are float32 under a ``mixed_float16`` policy.

Freezing: ``freeze_blocks`` / ``freeze_bn`` apply to the backbone only (as TLT); the
expansion layers and heads always train. Regularisation: ``kernel_regularizer`` is a
``keras.regularizers.Regularizer`` (or None) applied to every conv kernel (depthwise
kernels included); build one from the spec with ``make_regularizer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras

from tlt_core.errors import SpecError
from tlt_core.models.backbones import get_backbone
from tlt_core.models.backbones.common import check_nlayers
from tlt_core.networks.ssd.spec import N_PREDICTOR_LAYERS as NUM_PREDICTOR_LAYERS

CONF_OUTPUT = "conf"
LOC_OUTPUT = "loc"

# An expansion block: (1x1 filters, 3x3 filters, 3x3 stride); None = no layers.
ExpansionBlock = tuple[int, int, int] | None
_LARGE: tuple[ExpansionBlock, ...] = (
    (512, 512, 1),
    (256, 512, 2),
    (128, 256, 2),
    (128, 256, 2),
    (128, 256, 2),
)
_MID: tuple[ExpansionBlock, ...] = (
    (256, 256, 1),
    (128, 256, 2),
    (64, 128, 2),
    (64, 128, 2),
    (64, 128, 2),
)
_SMALL: tuple[ExpansionBlock, ...] = (
    None,
    (64, 128, 2),
    (64, 128, 2),
    (64, 128, 2),
    (64, 128, 2),
)


def expansion_config(arch: str, nlayers: int | None) -> tuple[ExpansionBlock, ...]:
    """The expansion blocks TLT adds after each backbone (wide trunks get wide blocks)."""
    if arch == "resnet":
        return {10: _SMALL, 18: _MID, 34: _MID}.get(nlayers, _LARGE)
    if arch == "darknet":
        # DarkNet already gives two predictor maps: one block fewer.
        return (_MID if nlayers == 19 else _LARGE)[:-1]
    if arch in ("vgg", "googlenet"):
        return _LARGE
    return _SMALL  # mobilenet_v1, mobilenet_v2, squeezenet


def make_regularizer(kind: str | int, weight: float) -> keras.regularizers.Regularizer | None:
    """``training_config.regularizer`` (type NO_REG/L1/L2, weight) as a Keras regulariser.

    ``kind`` is the type's name or its proto enum number; NO_REG or a zero weight give None.
    The trainer passes the result to ``build_ssd``.
    """
    if isinstance(kind, int):
        kind = {0: "NO_REG", 1: "L1", 2: "L2"}.get(kind, str(kind))
    weight = float(weight)
    if kind not in ("NO_REG", "L1", "L2"):
        raise SpecError(
            f"unknown type {kind!r}; use NO_REG, L1 or L2", field="training_config.regularizer.type"
        )
    if weight < 0:
        raise SpecError(f"must be >= 0, got {weight}", field="training_config.regularizer.weight")
    if kind == "NO_REG" or weight == 0.0:
        return None
    if kind == "L1":
        return keras.regularizers.L1(weight)
    return keras.regularizers.L2(weight)


def regularizer_from_config(regularizer_config) -> keras.regularizers.Regularizer | None:
    """``make_regularizer`` of a ``RegularizerConfig`` message (or None: no regulariser)."""
    if regularizer_config is None:
        return None
    return make_regularizer(regularizer_config.type, regularizer_config.weight)


def _expansion_block(x, index: int, block: ExpansionBlock, kernel_regularizer):
    reduce_filters, filters, stride = block
    prefix = f"ssd_expand_block_{index}_"
    x = keras.layers.Conv2D(
        reduce_filters,
        1,
        padding="same",
        use_bias=True,
        kernel_initializer="he_normal",
        kernel_regularizer=kernel_regularizer,
        name=f"{prefix}conv_0",
    )(x)
    x = keras.layers.ReLU(name=f"{prefix}relu_0")(x)
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=kernel_regularizer,
        name=f"{prefix}conv_1",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name=f"{prefix}bn_1")(x)
    return keras.layers.ReLU(name=f"{prefix}relu_1")(x)


def predictor_maps(
    inputs,
    arch: str,
    nlayers: int | None,
    *,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> list:
    """The 6 feature maps the SSD heads predict from: backbone maps + expansion blocks."""
    build = get_backbone(arch)
    nlayers = check_nlayers(arch, nlayers)
    features = build(
        inputs,
        nlayers,
        freeze_blocks=tuple(freeze_blocks),
        freeze_bn=freeze_bn,
        kernel_regularizer=kernel_regularizer,
    )
    maps = list(features[:-1])
    x = features[-1]
    for index, block in enumerate(expansion_config(arch, nlayers)):
        if block is not None:
            x = _expansion_block(x, index, block, kernel_regularizer)
        maps.append(x)
    if len(maps) != NUM_PREDICTOR_LAYERS:  # a table error, not a user error
        raise RuntimeError(f"{arch}: {len(maps)} predictor maps, expected 6")
    return maps


def build_ssd_model(
    arch: str,
    nlayers: int | None,
    *,
    input_shape: Sequence[int],
    boxes_per_layer: Sequence[int],
    num_classes: int,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    kernel_regularizer=None,
) -> keras.Model:
    """Build the SSD model from plain values (``build_ssd`` reads them from a spec)."""
    if len(boxes_per_layer) != NUM_PREDICTOR_LAYERS:
        raise SpecError(
            f"SSD has {NUM_PREDICTOR_LAYERS} predictor layers, the anchor spec gives "
            f"{len(boxes_per_layer)}",
            field="ssd_config.aspect_ratios",
        )
    if num_classes < 1:
        raise SpecError(f"need at least one class, got {num_classes}", field="dataset_config")
    height, width, channels = (int(v) for v in input_shape)
    inputs = keras.Input(shape=(height, width, channels), name="Input")
    maps = predictor_maps(
        inputs,
        arch,
        nlayers,
        freeze_blocks=freeze_blocks,
        freeze_bn=freeze_bn,
        kernel_regularizer=kernel_regularizer,
    )
    n_out = num_classes + 1
    confs, locs = [], []
    for i, (fmap, n_boxes) in enumerate(zip(maps, boxes_per_layer, strict=True)):
        conf = keras.layers.Conv2D(
            int(n_boxes) * n_out,
            3,
            padding="same",
            kernel_initializer="he_normal",
            kernel_regularizer=kernel_regularizer,
            name=f"ssd_conf_{i}",
        )(fmap)
        loc = keras.layers.Conv2D(
            int(n_boxes) * 4,
            3,
            padding="same",
            kernel_initializer="he_normal",
            kernel_regularizer=kernel_regularizer,
            name=f"ssd_loc_{i}",
        )(fmap)
        confs.append(keras.layers.Reshape((-1, n_out), name=f"ssd_conf_reshape_{i}")(conf))
        locs.append(keras.layers.Reshape((-1, 4), name=f"ssd_loc_reshape_{i}")(loc))
    conf = keras.layers.Concatenate(axis=1, dtype="float32", name=CONF_OUTPUT)(confs)
    loc = keras.layers.Concatenate(axis=1, dtype="float32", name=LOC_OUTPUT)(locs)
    name = f"ssd_{arch}{nlayers or ''}"
    return keras.Model(inputs=inputs, outputs={CONF_OUTPUT: conf, LOC_OUTPUT: loc}, name=name)


def build_ssd(
    experiment,
    num_classes: int,
    *,
    input_shape: Sequence[int] | None = None,
    kernel_regularizer=None,
) -> keras.Model:
    """Build the SSD model an experiment spec describes.

    ``num_classes`` excludes background. ``input_shape`` (H, W, C) overrides
    ``experiment.input_shape``. ``kernel_regularizer``: a Keras regulariser or None; the
    spec's is ``regularizer_from_config(experiment.proto.training_config.regularizer)``
    (not applied implicitly, so evaluation, pruning and export build the same model
    without one).
    """
    from tlt_core.networks.ssd.anchors import boxes_per_layer

    backbone = experiment.backbone  # ssd_config's arch/nlayers/freeze_* as validated
    return build_ssd_model(
        backbone.arch,
        backbone.nlayers,
        input_shape=tuple(input_shape or experiment.input_shape),
        boxes_per_layer=boxes_per_layer(experiment.anchors),
        num_classes=num_classes,
        freeze_blocks=tuple(backbone.freeze_blocks),
        freeze_bn=bool(backbone.freeze_bn),
        kernel_regularizer=kernel_regularizer,
    )


def ssd_feature_map_sizes(model: keras.Model) -> list[tuple[int, int]]:
    """``(h, w)`` of the 6 predictor maps, read from the ``ssd_conf_{i}`` layer outputs."""
    sizes = []
    for i in range(NUM_PREDICTOR_LAYERS):
        shape = model.get_layer(f"ssd_conf_{i}").output.shape
        sizes.append((int(shape[1]), int(shape[2])))
    return sizes


def count_params(model: keras.Model) -> int:
    """Total number of weights (trainable and not) of the model."""
    return int(model.count_params())
