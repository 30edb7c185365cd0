"""The DetectNet_v2 detector: a shared backbone to its stride-16 map, and two 1x1 heads.

- ``output_cov``: ``C`` filters with a sigmoid: per grid cell and class, the coverage (how
  likely the cell lies on an object of that class);
- ``output_bbox``: ``4 C`` filters, linear: per cell and class the box corners as scaled
  offsets from the cell's reference point (`tlt_core.networks.detectnet_v2.rasterizer`),
  channel ``4 c + k`` for class ``c`` and corner ``k`` in (x1, y1, x2, y2) order.

The layers are named ``output_cov`` and ``output_bbox`` and carry their activation, so the
graph nodes are ``output_cov/Sigmoid`` and ``output_bbox/BiasAdd``: the output names 002
(``tlt-export -O``, ``tlt-infer --output_cov``) and DeepStream's DetectNet_v2 parser use.
The model is channels-last (``[B, H/16, W/16, C]``); the exporter transposes to DeepStream's
``[C, H/16, W/16]`` layout.

The backbone map used is the one at stride 16 (the last for every family but DarkNet,
which also returns a stride-32 map). Freezing applies to the backbone only; the heads
always train.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras

from tlt_core.errors import SpecError
from tlt_core.models.backbones import get_backbone
from tlt_core.models.backbones.common import check_nlayers
from tlt_core.networks.detectnet_v2.outputs import BBOX_OUTPUT, COV_OUTPUT


def stride16_map(features: Sequence, height: int, width: int):
    """The backbone output at stride 16 ('same' padding: ceil(size / 16))."""
    rows, cols = -(-height // 16), -(-width // 16)
    for fmap in reversed(features):
        if int(fmap.shape[1]) == rows and int(fmap.shape[2]) == cols:
            return fmap
    raise RuntimeError(  # a backbone table error, not a user error
        f"no stride-16 map among {[tuple(f.shape[1:3]) for f in features]} for {height}x{width}"
    )


def build_detectnet_v2_model(
    arch: str,
    nlayers: int | None,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    freeze_blocks: Iterable[int] = (),
    freeze_bn: bool = False,
    dropout_rate: float = 0.0,
    kernel_regularizer=None,
) -> keras.Model:
    """Build the model from plain values (`build_detectnet_v2` reads them from a spec)."""
    if num_classes < 1:
        raise SpecError(f"need at least one class, got {num_classes}", field="dataset_config")
    height, width, channels = (int(v) for v in input_shape)
    inputs = keras.Input(shape=(height, width, channels), name="input_1")
    features = get_backbone(arch)(
        inputs,
        check_nlayers(arch, nlayers),
        freeze_blocks=tuple(freeze_blocks),
        freeze_bn=freeze_bn,
        kernel_regularizer=kernel_regularizer,
    )
    x = stride16_map(features, height, width)
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout_1")(x)
    cov = keras.layers.Conv2D(
        num_classes,
        1,
        activation="sigmoid",
        kernel_initializer="glorot_uniform",
        # Start at coverage ~0.01 everywhere: most cells are background.
        bias_initializer=keras.initializers.Constant(-4.6),
        kernel_regularizer=kernel_regularizer,
        dtype="float32",
        name=COV_OUTPUT,
    )(x)
    bbox = keras.layers.Conv2D(
        4 * num_classes,
        1,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=kernel_regularizer,
        dtype="float32",
        name=BBOX_OUTPUT,
    )(x)
    name = f"detectnet_v2_{arch}{nlayers or ''}"
    return keras.Model(inputs=inputs, outputs={COV_OUTPUT: cov, BBOX_OUTPUT: bbox}, name=name)


def make_regularizer(kind: str, weight: float):
    """``training_config.regularizer`` as a Keras regulariser (None for NO_REG or 0)."""
    if kind == "NO_REG" or float(weight) == 0.0:
        return None
    if kind == "L1":
        return keras.regularizers.L1(float(weight))
    return keras.regularizers.L2(float(weight))


def build_detectnet_v2(
    experiment,
    num_classes: int | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    kernel_regularizer=None,
) -> keras.Model:
    """The model a `DetectNetExperiment` describes (no regulariser unless given)."""
    backbone = experiment.backbone
    return build_detectnet_v2_model(
        backbone.arch,
        backbone.nlayers,
        input_shape=tuple(input_shape or experiment.input_shape),
        num_classes=experiment.num_classes if num_classes is None else num_classes,
        freeze_blocks=backbone.freeze_blocks,
        freeze_bn=backbone.freeze_bn,
        dropout_rate=experiment.dropout_rate,
        kernel_regularizer=kernel_regularizer,
    )
