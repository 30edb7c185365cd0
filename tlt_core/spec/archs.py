"""The backbones an SSD spec may name (``ssd_config.arch``) and what each accepts.

From TLT 3.0's SSD chapter (000), "SSD config": ``nlayers`` per family and the block ids
``freeze_blocks`` may list. This is the one table of these facts; model code that builds
the backbones checks itself against it (SqueezeNet's block ids are not in 000: conv1 is
block 0 and fire2..fire9 are blocks 1..8).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchInfo:
    """What one backbone family accepts in the spec."""

    nlayers: tuple[int, ...]  # empty: the family takes no nlayers field
    freeze_blocks: tuple[int, ...]  # block ids valid in freeze_blocks


ARCHITECTURES: dict[str, ArchInfo] = {
    "resnet": ArchInfo(nlayers=(10, 18, 34, 50, 101), freeze_blocks=tuple(range(4))),
    "vgg": ArchInfo(nlayers=(16, 19), freeze_blocks=tuple(range(1, 6))),
    "darknet": ArchInfo(nlayers=(19, 53), freeze_blocks=tuple(range(6))),
    "googlenet": ArchInfo(nlayers=(), freeze_blocks=tuple(range(8))),
    "mobilenet_v1": ArchInfo(nlayers=(), freeze_blocks=tuple(range(12))),
    "mobilenet_v2": ArchInfo(nlayers=(), freeze_blocks=tuple(range(14))),
    "squeezenet": ArchInfo(nlayers=(), freeze_blocks=tuple(range(9))),
}
