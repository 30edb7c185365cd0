"""Backbones: every family and depth builds, has the documented strides, stable unique
names, and freezes exactly the layers of the block ids 000 documents."""

from __future__ import annotations

import re

import keras
import pytest

from tlt_core.errors import SpecError
from tlt_core.models.backbones import BACKBONES, get_backbone
from tlt_core.networks.ssd.model import predictor_maps
from tlt_core.spec.archs import ARCHITECTURES

ALL_CONFIGS = [(arch, n) for arch, info in ARCHITECTURES.items() for n in (info.nlayers or (None,))]
# Deep variants take several seconds each to build; the other depth of the family is fast.
SLOW_CONFIGS = {("resnet", 34), ("resnet", 50), ("resnet", 101), ("darknet", 53), ("vgg", 19)}
# One depth per family for the freeze tests.
FREEZE_CONFIGS = [
    ("resnet", 18),
    ("resnet", 50),
    ("vgg", 16),
    ("darknet", 19),
    ("darknet", 53),
    ("googlenet", None),
    ("mobilenet_v1", None),
    ("mobilenet_v2", None),
    ("squeezenet", None),
]

GOOGLENET_BLOCKS = {1: "3a", 2: "3b", 3: "4a", 4: "4b", 5: "4c", 6: "4d", 7: "4e"}


def _marks(config):
    return [pytest.mark.slow] if config in SLOW_CONFIGS else []


def _params(configs):
    return [pytest.param(a, n, marks=_marks((a, n)), id=f"{a}{n or ''}") for a, n in configs]


def build_backbone(arch, nlayers, size=64, **kwargs) -> keras.Model:
    inputs = keras.Input((size, size, 3), name="Input")
    outputs = get_backbone(arch)(inputs, nlayers, **kwargs)
    return keras.Model(inputs, outputs)


def block_pattern(arch: str, nlayers, block: int) -> str:
    """Regex of the weighted layers of one freeze block, written from the docs, not the code."""
    if arch == "resnet":
        return r"conv1|bn_conv1" if block == 0 else rf"block_{block}[a-z]+_(conv|bn)_\w+"
    if arch == "vgg":
        return rf"block_{block}[a-z]+_(conv|bn)_1"
    if arch == "darknet":
        if block == 0:
            return r"conv1(_bn)?"
        stride_conv = rf"|conv{block + 1}(_bn)?" if nlayers == 53 else ""
        return rf"b{block}_conv\d+(_\d)?(_bn)?{stride_conv}"
    if arch == "googlenet":
        if block == 0:
            return r"(bn_)?conv1|(bn_)?conv2_reduce|(bn_)?conv2"
        return rf"inception_{GOOGLENET_BLOCKS[block]}_\w+_?\w*(_bn)?"
    if arch == "mobilenet_v1":
        return r"conv1(_bn)?" if block == 0 else rf"conv_(dw|pw)_{block}(_bn)?"
    if arch == "mobilenet_v2":
        if block == 0:
            return r"conv1|bn_conv1"
        prefix = "expanded_conv_" if block == 1 else f"block_{block - 1}_"
        return rf"{prefix}(expand|depthwise|project|projected_inputs)(_bn)?"
    if arch == "squeezenet":
        return r"conv1" if block == 0 else rf"fire{block + 1}_(squeeze1x1|expand1x1|expand3x3)"
    raise AssertionError(arch)


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


@pytest.mark.parametrize(("arch", "nlayers"), _params(ALL_CONFIGS))
def test_backbone_maps_and_names(arch, nlayers):
    # A 128x96 input: SSD needs 6 maps >= 1x1 at strides 8, 16, ..., 256 ('same' padding).
    inputs = keras.Input((128, 96, 3), name="Input")
    maps = predictor_maps(inputs, arch, nlayers)
    assert [tuple(m.shape[1:3]) for m in maps] == [(16, 12), (8, 6), (4, 3), (2, 2), (1, 1), (1, 1)]
    model = keras.Model(inputs, maps)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    # No auto-generated names ("conv2d_3", "re_lu_12", "add_1", ...): every name is explicit.
    auto = [
        n
        for n in names
        if re.fullmatch(
            r"(conv2d|batch_normalization|re_lu|add|"
            r"concatenate|max_pooling2d|depthwise_conv2d|"
            r"input_layer|functional)(_\d+)?",
            n,
        )
    ]
    assert auto == []
    # The backbone alone: its own maps at strides 8 and 16 (and 32 for DarkNet).
    backbone = build_backbone(arch, nlayers, size=64)
    sizes = [tuple(out.shape[1:3]) for out in backbone.outputs]
    assert sizes == ([(8, 8), (4, 4), (2, 2)] if arch == "darknet" else [(8, 8), (4, 4)])
    # Same names and weight shapes on a second build (the backbone layers come first).
    assert [layer.name for layer in backbone.layers] == names[: len(backbone.layers)]
    assert [w.shape for w in backbone.weights] == [
        w.shape for w in model.weights[: len(backbone.weights)]
    ]


@pytest.mark.parametrize(("arch", "nlayers"), _params(FREEZE_CONFIGS))
def test_freeze_blocks_freezes_exactly_the_block(arch, nlayers):
    ids = ARCHITECTURES[arch].freeze_blocks
    for chosen in (ids[0::2], ids[1::2]):
        model = build_backbone(arch, nlayers, freeze_blocks=chosen)
        frozen = {layer.name for layer in weighted_layers(model) if not layer.trainable}
        expected = set()
        for block in chosen:
            members = {
                layer.name
                for layer in weighted_layers(model)
                if re.fullmatch(block_pattern(arch, nlayers, block), layer.name)
            }
            assert members, f"block {block} of {arch} matched no layer"
            expected |= members
        assert frozen == expected
        # Non-trainable weights are exactly the frozen layers' weights plus BN statistics.
        trainable_ids = {id(w) for w in model.trainable_weights}
        for layer in weighted_layers(model):
            assert all(
                (id(w) in trainable_ids) == (layer.name not in frozen)
                for w in layer.trainable_weights
                + [w for w in layer.weights if layer.name in frozen]
            )


@pytest.mark.parametrize(("arch", "nlayers"), _params(FREEZE_CONFIGS))
def test_freeze_bn_freezes_exactly_the_batchnorms(arch, nlayers):
    model = build_backbone(arch, nlayers, freeze_bn=True)
    bns = {
        layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    }
    frozen = {layer.name for layer in weighted_layers(model) if not layer.trainable}
    assert frozen == bns
    assert bool(bns) == (arch != "squeezenet")  # SqueezeNet has no BatchNorm


def test_frozen_batchnorm_uses_moving_statistics():
    import numpy as np

    model = build_backbone("mobilenet_v1", None, freeze_bn=True)
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=True)[0]),
        keras.ops.convert_to_numpy(model(x, training=False)[0]),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("arch", "nlayers", "blocks"),
    [
        ("resnet", 18, (4,)),
        ("vgg", 16, (0,)),
        ("mobilenet_v1", None, (12,)),
        ("googlenet", None, (8,)),
        ("darknet", 19, (6,)),
        ("mobilenet_v2", None, (14,)),
    ],
)
def test_invalid_freeze_block_is_a_spec_error(arch, nlayers, blocks):
    with pytest.raises(SpecError, match=r"ssd_config\.freeze_blocks"):
        build_backbone(arch, nlayers, freeze_blocks=blocks)


@pytest.mark.parametrize(
    ("arch", "nlayers"),
    [("resnet", 20), ("resnet", None), ("vgg", 11), ("darknet", 21), ("mobilenet_v2", 18)],
)
def test_bad_nlayers_is_a_spec_error(arch, nlayers):
    with pytest.raises(SpecError, match=r"ssd_config\.nlayers"):
        predictor_maps(keras.Input((64, 64, 3)), arch, nlayers)


def test_every_spec_arch_has_a_builder():
    assert set(BACKBONES) == set(ARCHITECTURES)


def test_unknown_arch_is_a_spec_error():
    with pytest.raises(SpecError, match=r"ssd_config\.arch: .*resnet"):
        get_backbone("alexnet")


def test_regularizer_reaches_every_backbone_kernel():
    reg = keras.regularizers.L2(1e-4)
    model = build_backbone("mobilenet_v2", None, kernel_regularizer=reg)
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
    ]
    assert convs
    assert len(model.losses) == len(convs)
