"""SSD feature extractors, one module per family, and the table that names them.

Every builder has the signature::

    build_<family>(inputs, nlayers, *, freeze_blocks=(), freeze_bn=False,
                   kernel_regularizer=None) -> list[KerasTensor]

and returns its feature maps shallow to deep, channels-last. All but the last returned map
are SSD predictor maps as they are; the last is the trunk that ``tlt_core.networks.ssd.model``
grows its expansion layers from (as TLT's ``get_raw_ssd_model``). For every family but
DarkNet that is ``[stride 8, stride 16]``; DarkNet gives ``[stride 8, stride 16,
stride 32]``.

Layers are plain ``keras.layers`` with explicit stable names (TLT/TAO naming where known)
and every convolution's filter count in its config, so the pruner can rebuild a model
from its config with fewer filters.
"""

from __future__ import annotations

from collections.abc import Callable

from tlt_core.errors import SpecError
from tlt_core.models.backbones import (
    darknet,
    googlenet,
    mobilenet_v1,
    mobilenet_v2,
    resnet,
    squeezenet,
    vgg,
)

BackboneBuilder = Callable[..., list]

# The builders; which nlayers and freeze ids each accepts is tlt_core.spec.archs.ARCHITECTURES.
BACKBONES: dict[str, BackboneBuilder] = {
    "resnet": resnet.build_resnet,
    "vgg": vgg.build_vgg,
    "darknet": darknet.build_darknet,
    "googlenet": googlenet.build_googlenet,
    "mobilenet_v1": mobilenet_v1.build_mobilenet_v1,
    "mobilenet_v2": mobilenet_v2.build_mobilenet_v2,
    "squeezenet": squeezenet.build_squeezenet,
}


def get_backbone(arch: str) -> BackboneBuilder:
    """The builder for ``arch``, or SpecError listing the supported ones."""
    try:
        return BACKBONES[arch]
    except KeyError:
        raise SpecError(
            f"unknown arch {arch!r}; supported: {', '.join(sorted(BACKBONES))}",
            field="ssd_config.arch",
        ) from None


__all__ = ["BACKBONES", "BackboneBuilder", "get_backbone"]
