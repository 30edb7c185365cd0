"""Layer helpers shared by the backbone builders: named conv/BN/activation with freezing.

Every layer gets an explicit, stable name (TLT/TAO naming where it is known), so a model
rebuilt from its config, or by the pruner with fewer filters, keeps the same names.

Which ``nlayers`` and block ids a family accepts is ``tlt_core.spec.archs.ARCHITECTURES``
(one table, shared with spec validation); the builders check their arguments against it.

Freezing (000, ``ssd_config.freeze_blocks`` / ``freeze_bn``):

- a layer built for a frozen block id gets ``trainable=False``: its convolutions AND its
  BatchNorm layers (TLT froze only the convolutions; a frozen block whose BN still moves is
  not frozen, so we freeze the whole block);
- with ``freeze_bn`` every BatchNorm layer gets ``trainable=False``. In Keras 3 a
  non-trainable BatchNormalization also runs in inference mode (moving statistics), so no
  ``training=False`` call argument is needed and the behaviour survives serialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import keras

from tlt_core.errors import SpecError
from tlt_core.spec.archs import ARCHITECTURES

BN_EPSILON = 1e-3


@dataclass(frozen=True)
class LayerFactory:
    """Builds named layers for one backbone, applying regulariser and freezing rules."""

    kernel_regularizer: keras.regularizers.Regularizer | None = None
    freeze_blocks: frozenset[int] = frozenset()
    freeze_bn: bool = False

    def frozen(self, block: int | None) -> bool:
        return block is not None and block in self.freeze_blocks

    def conv(
        self,
        x,
        filters: int,
        kernel_size: int,
        *,
        name: str,
        strides: int = 1,
        block: int | None = None,
        use_bias: bool = False,
        padding: str = "same",
    ):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer="he_normal",
            kernel_regularizer=self.kernel_regularizer,
            trainable=not self.frozen(block),
            name=name,
        )(x)

    def depthwise(self, x, *, name: str, strides: int = 1, block: int | None = None):
        return keras.layers.DepthwiseConv2D(
            3,
            strides=strides,
            padding="same",
            use_bias=False,
            depthwise_initializer="he_normal",
            depthwise_regularizer=self.kernel_regularizer,
            trainable=not self.frozen(block),
            name=name,
        )(x)

    def bn(self, x, *, name: str, block: int | None = None):
        return keras.layers.BatchNormalization(
            epsilon=BN_EPSILON,
            trainable=not (self.freeze_bn or self.frozen(block)),
            name=name,
        )(x)

    def conv_bn_relu(
        self,
        x,
        filters: int,
        kernel_size: int,
        *,
        conv_name: str,
        bn_name: str,
        relu_name: str,
        strides: int = 1,
        block: int | None = None,
    ):
        """Conv (no bias) -> BatchNorm -> ReLU, the unit most backbones repeat."""
        x = self.conv(x, filters, kernel_size, strides=strides, block=block, name=conv_name)
        x = self.bn(x, block=block, name=bn_name)
        return keras.layers.ReLU(name=relu_name)(x)


def check_freeze_blocks(arch: str, freeze_blocks: Iterable[int]) -> frozenset[int]:
    """``freeze_blocks`` as a set, or SpecError naming the ids ``ARCHITECTURES`` allows."""
    blocks = frozenset(int(b) for b in freeze_blocks)
    valid = frozenset(ARCHITECTURES[arch].freeze_blocks)
    bad = sorted(blocks - valid)
    if bad:
        raise SpecError(
            f"block id(s) {bad} cannot be frozen for {arch}; valid ids are {sorted(valid)}",
            field="ssd_config.freeze_blocks",
        )
    return blocks


def check_nlayers(arch: str, nlayers: int | None) -> int | None:
    """``nlayers`` if the family accepts it (None where it has no depth option)."""
    supported = ARCHITECTURES[arch].nlayers
    if not supported:
        if nlayers is not None:
            raise SpecError(
                f"{arch} has no depth option; delete nlayers (got {nlayers})",
                field="ssd_config.nlayers",
            )
        return None
    if nlayers is None or int(nlayers) not in supported:
        raise SpecError(
            f"{arch} supports nlayers {list(supported)}, got {nlayers}",
            field="ssd_config.nlayers",
        )
    return int(nlayers)


def backbone_layers(
    arch: str,
    nlayers: int | None,
    freeze_blocks: Iterable[int],
    freeze_bn: bool,
    kernel_regularizer,
) -> tuple[int | None, LayerFactory]:
    """What every ``build_<arch>`` starts with: its depth checked (`check_nlayers`) and the
    factory of its layers with the freeze ids checked (`check_freeze_blocks`)."""
    nlayers = check_nlayers(arch, nlayers)
    blocks = check_freeze_blocks(arch, freeze_blocks)
    return nlayers, LayerFactory(kernel_regularizer, blocks, freeze_bn)


def subblock_letter(index: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa' (TLT's sub-block naming, e.g. block_3w for ResNet-101)."""
    letters = ""
    index += 1
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters
