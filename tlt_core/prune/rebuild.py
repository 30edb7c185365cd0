"""Build the pruned model: the original's config with smaller ``filters``/``units``, then
each layer's weights sliced to the kept channels and set by layer name."""

from __future__ import annotations

import numpy as np

from tlt_core.prune.graph import ROLE_CHANNELWISE, ROLE_PRODUCER, LayerChannels
from tlt_core.prune.plan import PrunePlan


def pruned_config(model, plan: PrunePlan) -> dict:
    """``model.get_config()`` with every pruned producer's filter count changed.

    ``build_config`` entries are dropped: they record the *old* input shapes, and a layer
    built from them would reject its narrower input; each layer builds on its first call.
    """
    config = model.get_config()
    for conf in config["layers"]:
        conf.pop("build_config", None)
        after = plan.filters_after(conf["name"])
        if after is None:
            continue
        layer_config = conf["config"]
        key = "units" if "units" in layer_config else "filters"
        layer_config[key] = after
    return config


def slice_weights(record: LayerChannels, plan: PrunePlan, weights: dict[str, np.ndarray]):
    """The layer's weights (name -> array) cut to the kept input / output channels."""
    in_idx = plan.channel_indices(record.inputs) if record.inputs else None
    if record.role == ROLE_PRODUCER:
        out_idx = plan.kept_in_space(record.output)
        in_axis, out_axis = (-1, -2) if record.transpose else (-2, -1)
        sliced = {}
        for name, value in weights.items():
            if name == "kernel":
                value = np.take(value, in_idx, axis=in_axis) if in_idx is not None else value
                sliced[name] = np.take(value, out_idx, axis=out_axis)
            else:  # bias
                sliced[name] = np.take(value, out_idx, axis=0)
        return sliced
    if record.role == ROLE_CHANNELWISE:
        # BatchNorm vectors and biases are [C]; a depthwise kernel is [..., C, 1] (depth
        # multiplier 1).
        return {
            name: np.take(value, in_idx, axis=-2 if value.ndim > 1 else 0)
            for name, value in weights.items()
        }
    return weights


def rebuild_pruned(model, plan: PrunePlan):
    """A new model with the pruned architecture and the original's weights, sliced."""
    import keras

    new_model = keras.Model.from_config(pruned_config(model, plan))
    old_shapes = [tuple(t.shape) for t in model.outputs]
    new_shapes = [tuple(t.shape) for t in new_model.outputs]
    if old_shapes != new_shapes:  # a bug in the analysis: an output layer was pruned
        raise RuntimeError(f"pruning changed the output shapes {old_shapes} -> {new_shapes}")
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = {v.name.split("/")[-1]: np.asarray(v.numpy()) for v in layer.weights}
        record = plan.graph.layers.get(layer.name)
        sliced = slice_weights(record, plan, weights) if record is not None else weights
        target = new_model.get_layer(layer.name)
        target.set_weights([sliced[v.name.split("/")[-1]] for v in target.weights])
    return new_model
