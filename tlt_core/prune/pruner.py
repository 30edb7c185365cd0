"""Decide which filters a model keeps (``plan_pruning``) and build the smaller model
(``prune_model``).

The decision is per group of tied channel spaces (``tlt_core.prune.graph``): every producer
of a group scores its filters (``tlt_core.prune.criteria``), the equalisation criterion
combines the scores, and the group keeps the same channel indices in every member.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from tlt_core.prune import criteria
from tlt_core.prune.graph import ChannelGraph, analyse_channels
from tlt_core.prune.plan import LayerPruning, PrunePlan, PruneSettings
from tlt_core.prune.rebuild import rebuild_pruned

log = logging.getLogger(__name__)


def producer_scores(model, graph: ChannelGraph, producer: str, normalizer: str) -> np.ndarray:
    """Normalised L2 norms of ``producer``'s output filters."""
    layer = model.get_layer(producer)
    kernel = next(v for v in layer.weights if v.name.split("/")[-1] == "kernel")
    out_axis = -2 if graph.layers[producer].transpose else -1
    norms = criteria.filter_norms(np.asarray(kernel.numpy()), out_axis)
    return criteria.normalize(norms, normalizer)


# TensorFlow's oneDNN CPU kernel for the filter gradient of a 1x1 convolution with stride > 1
# corrupts the heap (a crash without a Python traceback, in a tf_Compute thread) when the
# convolution reads 8 input channels (at 80x80; 16 or more are fine): a heavily pruned
# ResNet's shortcut convolutions hit it, and the pruned model cannot be retrained. Channel
# spaces read by such a convolution keep at least this many channels.
STRIDED_1X1_MIN_INPUT_CHANNELS = 16


def _channel_floors(model, graph: ChannelGraph) -> dict[int, tuple[int, str]]:
    """Group root -> (fewest channels it may keep, the layer that needs them)."""
    import keras

    floors: dict[int, tuple[int, str]] = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D) or layer.name not in graph.layers:
            continue
        config = layer.get_config()
        if tuple(config["kernel_size"]) != (1, 1) or max(config["strides"]) <= 1:
            continue
        for space_id in graph.layers[layer.name].inputs:
            root = graph.group_of(space_id)
            if floors.get(root, (0, ""))[0] < STRIDED_1X1_MIN_INPUT_CHANNELS:
                floors[root] = (STRIDED_1X1_MIN_INPUT_CHANNELS, layer.name)
    return floors


def plan_pruning(model, settings: PruneSettings, *, protected: Iterable[str] = ()) -> PrunePlan:
    """Which channels each group keeps. ``protected``: layers kept whole besides
    ``settings.excluded_layers`` (the SSD heads)."""
    settings.validate()
    excluded = set(settings.excluded_layers) | set(protected)
    graph = analyse_channels(model, excluded)
    plan = PrunePlan(graph, settings)
    floors = _channel_floors(model, graph)
    for root, members in sorted(graph.groups().items()):
        producers = graph.producers(members)
        if not producers:
            continue
        blocker = graph.group_blocker(members)
        size = graph.spaces[root].size
        limited_by = None
        if blocker is None:
            scores = [producer_scores(model, graph, p, settings.normalizer) for p in producers]
            score = criteria.equalize(scores, settings.equalization)
            kept = criteria.select_filters(
                score, settings.threshold, int(settings.granularity), int(settings.min_filters)
            )
            floor, needed_by = floors.get(root, (0, ""))
            if kept.size < min(floor, size):
                kept = criteria.select_filters(
                    score, settings.threshold, int(settings.granularity), floor
                )
                limited_by = (
                    f"{needed_by} (a 1x1 convolution with stride > 1) needs at least "
                    f"{floor} input channels to train: TensorFlow's CPU kernel for it "
                    "crashes with fewer"
                )
            if kept.size < size:
                plan.kept[root] = kept
        after = size if blocker else int(plan.kept_in_space(root).size)
        for producer in producers:
            plan.per_layer.append(
                LayerPruning(producer, size, after, tuple(producers), blocker, limited_by)
            )
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    plan.per_layer.sort(key=lambda p: order.get(p.name, len(order)))
    return plan


def prune_model(model, settings: PruneSettings, *, protected: Iterable[str] = ()):
    """``(pruned keras.Model, PrunePlan)``: the model rebuilt with the kept filters only."""
    plan = plan_pruning(model, settings, protected=protected)
    pruned = rebuild_pruned(model, plan)
    for layer in plan.per_layer:
        if layer.filters_after != layer.filters_before:
            log.debug("%s: %d -> %d filters", layer.name, layer.filters_before, layer.filters_after)
    return pruned, plan


__all__ = [
    "LayerPruning",
    "PrunePlan",
    "PruneSettings",
    "plan_pruning",
    "producer_scores",
    "prune_model",
]
