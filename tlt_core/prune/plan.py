"""What pruning decided: the settings, the kept channels per tied group, the per-layer
before/after counts (made by ``pruner.plan_pruning``, applied by ``rebuild``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tlt_core.errors import UsageError
from tlt_core.prune import criteria
from tlt_core.prune.graph import ChannelGraph


@dataclass(frozen=True)
class PruneSettings:
    """``tlt <network> prune``'s knobs (000 defaults)."""

    normalizer: str = "max"
    equalization: str = "union"
    granularity: int = 8
    threshold: float = 0.1
    min_filters: int = 16
    excluded_layers: tuple[str, ...] = ()

    def validate(self) -> PruneSettings:
        if self.normalizer not in criteria.NORMALIZERS:
            raise UsageError(
                f"-n/--normalizer: {self.normalizer!r} is not one of "
                f"{', '.join(criteria.NORMALIZERS)}"
            )
        if self.equalization not in criteria.EQUALIZATION_CRITERIA:
            raise UsageError(
                f"-eq/--equalization_criterion: {self.equalization!r} is not one of "
                f"{', '.join(criteria.EQUALIZATION_CRITERIA)}"
            )
        if int(self.granularity) < 1:
            raise UsageError(f"-pg/--pruning_granularity must be >= 1, got {self.granularity}")
        if not np.isfinite(self.threshold) or self.threshold < 0:
            raise UsageError(f"-pth/--pruning_threshold must be >= 0, got {self.threshold}")
        if int(self.min_filters) < 0:
            raise UsageError(f"-nf/--min_num_filters must be >= 0, got {self.min_filters}")
        return self


@dataclass(frozen=True)
class LayerPruning:
    """One producer's filter count before and after, and why it was left whole."""

    name: str
    filters_before: int
    filters_after: int
    group: tuple[str, ...]  # the producers that keep the same channels (itself included)
    kept_whole_because: str | None = None
    limited_by: str | None = None  # why it keeps more filters than the threshold asks


@dataclass
class PrunePlan:
    graph: ChannelGraph
    settings: PruneSettings
    kept: dict[int, np.ndarray] = field(default_factory=dict)  # group root -> kept indices
    per_layer: list[LayerPruning] = field(default_factory=list)

    def kept_in_space(self, space_id: int) -> np.ndarray:
        kept = self.kept.get(self.graph.group_of(space_id))
        return np.arange(self.graph.spaces[space_id].size) if kept is None else kept

    def channel_indices(self, spaces: Iterable[int]) -> np.ndarray:
        """Indices kept along a tensor's channel axis made of ``spaces`` side by side."""
        parts, offset = [], 0
        for space_id in spaces:
            parts.append(self.kept_in_space(space_id) + offset)
            offset += self.graph.spaces[space_id].size
        return np.concatenate(parts) if parts else np.zeros((0,), np.int64)

    def filters_after(self, layer_name: str) -> int | None:
        record = self.graph.layers.get(layer_name)
        if record is None or record.output is None:
            return None
        return int(self.kept_in_space(record.output).size)
