"""Channel analysis of a Keras functional model: which channels can be removed, and which
must be removed together.

Every tensor's last (channel) axis is described as a sequence of *channel spaces*: the
output filters of one layer that creates channels (a convolution or a Dense layer), or an
unprunable space (the model input, the output of a layer we do not understand). Layers are
classified by their role towards channels, not by backbone:

- producers (``Conv1D/2D/3D``, their transposes, ``Dense``): create a new space, the one
  pruning removes filters from; their kernels' input axis follows the input's spaces;
- channel-wise layers (``BatchNormalization``, ``DepthwiseConv*`` with depth multiplier 1):
  output channel ``c`` is input channel ``c``; their weights follow the input's spaces;
- passthrough layers without weights (activations, pooling, padding, dropout, ...);
- element-wise merges (``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
  ``Minimum``): their inputs' spaces are *tied* (union-find): a residual block's shortcut
  conv and its last conv must keep the same channels, and an identity shortcut back to an
  unprunable space makes the whole group unprunable;
- ``Concatenate`` on the channel axis: the output is the inputs' spaces side by side (its
  consumers slice at channel offsets); on another axis its inputs are tied like a merge;
- anything else (``Reshape``, ``Flatten``, ``Permute``, ``Softmax``, custom layers, a layer
  called more than once, a layer whose weights are not the ones listed above) is *opaque*:
  the spaces it reads are made unprunable and its outputs are new unprunable spaces. That
  is always safe; it only prunes less.

Model outputs, producers named in ``excluded`` (the SSD heads, ``--excluded_layers``) and
the input are unprunable. The topology is read from ``model.get_config()`` (each layer's
``inbound_nodes``), the same config the pruned model is rebuilt from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import keras

ROLE_INPUT = "input"
ROLE_PRODUCER = "producer"
ROLE_CHANNELWISE = "channelwise"
ROLE_PASSTHROUGH = "passthrough"
ROLE_MERGE = "merge"
ROLE_CONCAT = "concat"
ROLE_OPAQUE = "opaque"

_L = keras.layers
_CONV_PRODUCERS = (_L.Conv1D, _L.Conv2D, _L.Conv3D)
_TRANSPOSE_PRODUCERS = (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)
_DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
_MERGES = (_L.Add, _L.Subtract, _L.Multiply, _L.Average, _L.Maximum, _L.Minimum)
# Channel-wise without weights, as long as they work channels-last (checked below).
_PASSTHROUGH = (
    _L.ReLU,
    _L.LeakyReLU,
    _L.ELU,
    _L.Activation,
    _L.Identity,
    _L.Dropout,
    _L.SpatialDropout1D,
    _L.SpatialDropout2D,
    _L.SpatialDropout3D,
    _L.GaussianNoise,
    _L.GaussianDropout,
    _L.AlphaDropout,
    _L.MaxPooling1D,
    _L.MaxPooling2D,
    _L.MaxPooling3D,
    _L.AveragePooling1D,
    _L.AveragePooling2D,
    _L.AveragePooling3D,
    _L.GlobalMaxPooling1D,
    _L.GlobalMaxPooling2D,
    _L.GlobalMaxPooling3D,
    _L.GlobalAveragePooling1D,
    _L.GlobalAveragePooling2D,
    _L.GlobalAveragePooling3D,
    _L.ZeroPadding1D,
    _L.ZeroPadding2D,
    _L.ZeroPadding3D,
    _L.Cropping1D,
    _L.Cropping2D,
    _L.Cropping3D,
    _L.UpSampling1D,
    _L.UpSampling2D,
    _L.UpSampling3D,
)
# Activations that mix channels (not element-wise).
_MIXING_ACTIVATIONS = frozenset({"softmax", "log_softmax"})
# The variables each weighted role knows how to slice.
PRODUCER_WEIGHTS = frozenset({"kernel", "bias"})
BATCHNORM_WEIGHTS = frozenset({"gamma", "beta", "moving_mean", "moving_variance"})
DEPTHWISE_WEIGHTS = frozenset({"kernel", "bias"})  # kernel: [..., C, 1]

TensorRef = tuple[str, int, int]  # (layer name, node index, tensor index): keras_history


@dataclass
class ChannelSpace:
    """The channels one layer creates (``producer``), or an unprunable block of channels."""

    id: int
    size: int
    producer: str | None
    blocked_by: str | None = None  # why these channels cannot be pruned (None: they can)


@dataclass
class LayerChannels:
    """How one layer relates to channels: its role, what its weights' input axis reads
    (``inputs``, a sequence of space ids) and the space it creates (``output``)."""

    name: str
    role: str
    inputs: tuple[int, ...] = ()
    output: int | None = None
    transpose: bool = False  # kernel laid out (..., out, in): Conv*Transpose


@dataclass
class ChannelGraph:
    spaces: list[ChannelSpace] = field(default_factory=list)
    layers: dict[str, LayerChannels] = field(default_factory=dict)
    _parent: list[int] = field(default_factory=list)

    # --- union-find over spaces -------------------------------------------------------------
    def new_space(self, size: int, producer: str | None, blocked_by: str | None = None) -> int:
        space = ChannelSpace(len(self.spaces), int(size), producer, blocked_by)
        self.spaces.append(space)
        self._parent.append(space.id)
        return space.id

    def group_of(self, space_id: int) -> int:
        root = space_id
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[space_id] != root:  # path compression
            self._parent[space_id], space_id = root, self._parent[space_id]
        return root

    def tie(self, a: int, b: int) -> None:
        ra, rb = self.group_of(a), self.group_of(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def block(self, space_ids: Iterable[int], reason: str) -> None:
        for space_id in space_ids:
            space = self.spaces[space_id]
            if space.blocked_by is None:
                space.blocked_by = reason

    # --- queries ---------------------------------------------------------------------------
    def groups(self) -> dict[int, list[int]]:
        """Root space id -> the ids of the spaces that must keep the same channels."""
        groups: dict[int, list[int]] = {}
        for space in self.spaces:
            groups.setdefault(self.group_of(space.id), []).append(space.id)
        return groups

    def group_blocker(self, members: Iterable[int]) -> str | None:
        """Why a group cannot be pruned (the first member's reason), or None."""
        for space_id in members:
            space = self.spaces[space_id]
            if space.blocked_by is not None:
                return space.blocked_by
            if space.producer is None:
                return "not created by a layer with filters"
        return None

    def producers(self, members: Iterable[int]) -> list[str]:
        return [p for p in (self.spaces[s].producer for s in members) if p is not None]


# --- topology from the functional config ----------------------------------------------------


def _tensor_refs(obj: Any) -> Iterator[tuple[TensorRef, tuple]]:
    """The ``__keras_tensor__`` references (and their shapes) nested in a node's args."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            config = obj["config"]
            name, node, index = config["keras_history"]
            yield (str(name), int(node), int(index)), tuple(config.get("shape") or ())
            return
        for value in obj.values():
            yield from _tensor_refs(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _tensor_refs(value)


def _output_refs(obj: Any) -> Iterator[TensorRef]:
    """``[name, node, index]`` triples nested in ``output_layers`` (list or dict)."""
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _output_refs(value)
    elif isinstance(obj, list | tuple):
        if len(obj) == 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
            yield (obj[0], int(obj[1]), int(obj[2]))
        else:
            for value in obj:
                yield from _output_refs(value)


def _topological(layer_configs: list[dict]) -> list[dict]:
    """The layer configs ordered so every layer comes after the layers it reads."""
    by_name = {conf["name"]: conf for conf in layer_configs}
    order: list[dict] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done
    for start in by_name:
        if start in state:
            continue
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(by_name[name])
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            for ref, _ in _tensor_refs(by_name[name].get("inbound_nodes", [])):
                if ref[0] in by_name and ref[0] not in state:
                    stack.append((ref[0], False))
    return order


# --- roles -----------------------------------------------------------------------------------


def _weight_names(layer) -> set[str]:
    return {v.name.split("/")[-1] for v in layer.weights}


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") in (None, "channels_last")


def classify(layer, input_rank: int | None = None) -> str:
    """The layer's role towards channels (see the module docstring)."""
    if isinstance(layer, _L.InputLayer):
        return ROLE_INPUT
    names = _weight_names(layer)
    if isinstance(layer, _CONV_PRODUCERS + _TRANSPOSE_PRODUCERS):
        groups = int(getattr(layer, "groups", 1) or 1)
        if groups == 1 and _channels_last(layer) and names <= PRODUCER_WEIGHTS:
            return ROLE_PRODUCER
        return ROLE_OPAQUE
    if isinstance(layer, _L.Dense):
        return ROLE_PRODUCER if names <= PRODUCER_WEIGHTS else ROLE_OPAQUE
    if isinstance(layer, _DEPTHWISE):
        if (
            int(layer.depth_multiplier) == 1
            and _channels_last(layer)
            and names <= DEPTHWISE_WEIGHTS
        ):
            return ROLE_CHANNELWISE
        return ROLE_OPAQUE
    if isinstance(layer, _L.BatchNormalization):
        axis = int(layer.axis)
        last = axis == -1 or (input_rank is not None and axis == input_rank - 1)
        return ROLE_CHANNELWISE if last and names <= BATCHNORM_WEIGHTS else ROLE_OPAQUE
    if isinstance(layer, _MERGES):
        return ROLE_MERGE
    if isinstance(layer, _L.Concatenate):
        return ROLE_CONCAT
    if isinstance(layer, _PASSTHROUGH) and not names and _channels_last(layer):
        if isinstance(layer, _L.Activation):
            activation = getattr(layer.activation, "__name__", "")
            if activation in _MIXING_ACTIVATIONS:
                return ROLE_OPAQUE
        return ROLE_PASSTHROUGH
    return ROLE_OPAQUE


def _filters(layer) -> int:
    return int(layer.units if isinstance(layer, _L.Dense) else layer.filters)


# --- the analysis ----------------------------------------------------------------------------


def analyse_channels(model, excluded: Iterable[str] = ()) -> ChannelGraph:
    """Channel spaces, their ties and their blockers for a functional ``model``.

    ``excluded``: layer names whose own channels must stay as they are (a producer's filters,
    a channel-wise layer's channels); what they read from other layers is still sliced.
    """
    excluded = frozenset(excluded)
    config = model.get_config()
    graph = ChannelGraph()
    descs: dict[TensorRef, tuple[int, ...]] = {}

    def desc_of(ref: TensorRef, shape: tuple) -> tuple[int, ...]:
        if ref not in descs:
            # An opaque layer's output, first seen here: a fresh unprunable space.
            size = int(shape[-1]) if shape and shape[-1] is not None else 0
            descs[ref] = (graph.new_space(size, None, f"output of {ref[0]!r}"),)
        return descs[ref]

    def sizes(desc: tuple[int, ...]) -> list[int]:
        return [graph.spaces[s].size for s in desc]

    for conf in _topological(config["layers"]):
        name = conf["name"]
        layer = model.get_layer(name)
        nodes = conf.get("inbound_nodes") or []
        if len(nodes) > 1:
            role = ROLE_OPAQUE  # shared weights across calls: leave it whole
            reason = f"read by {name!r}, a layer called {len(nodes)} times"
            for node in nodes:
                for ref, shape in _tensor_refs(node):
                    graph.block(desc_of(ref, shape), reason)
            graph.layers[name] = LayerChannels(name, role)
            continue
        refs = list(_tensor_refs(nodes[0])) if nodes else []
        in_descs = [desc_of(ref, shape) for ref, shape in refs]
        rank = len(refs[0][1]) if refs and refs[0][1] else None
        role = classify(layer, rank)
        if role in (ROLE_PRODUCER, ROLE_CHANNELWISE, ROLE_PASSTHROUGH) and len(in_descs) != 1:
            role = ROLE_OPAQUE
        out_ref = (name, 0, 0)
        record = LayerChannels(name, role)

        if role == ROLE_INPUT:
            shape = conf["config"].get("batch_shape") or conf["config"].get("batch_input_shape")
            size = int(shape[-1]) if shape and shape[-1] is not None else 0
            descs[out_ref] = (graph.new_space(size, None, "model input"),)
        elif role == ROLE_PRODUCER:
            blocked = f"{name!r} is excluded" if name in excluded else None
            record.inputs = in_descs[0]
            record.output = graph.new_space(_filters(layer), name, blocked)
            record.transpose = isinstance(layer, _TRANSPOSE_PRODUCERS)
            descs[out_ref] = (record.output,)
        elif role in (ROLE_CHANNELWISE, ROLE_PASSTHROUGH):
            if name in excluded:
                graph.block(in_descs[0], f"{name!r} is excluded")
            record.inputs = in_descs[0]
            descs[out_ref] = in_descs[0]
        elif role == ROLE_MERGE or (role == ROLE_CONCAT and not _channel_concat(layer, rank)):
            descs[out_ref] = _tie_all(graph, in_descs, name, sizes)
        elif role == ROLE_CONCAT:
            descs[out_ref] = tuple(s for desc in in_descs for s in desc)
        else:  # opaque: what it reads cannot change
            for desc in in_descs:
                graph.block(desc, f"read by {name!r} ({type(layer).__name__})")
        graph.layers[name] = record

    for ref in _output_refs(config.get("output_layers", [])):
        if ref in descs:
            graph.block(descs[ref], f"model output {ref[0]!r}")
    return graph


def _channel_concat(layer, rank: int | None) -> bool:
    axis = int(layer.axis)
    return axis == -1 or (rank is not None and axis == rank - 1)


def _tie_all(graph: ChannelGraph, in_descs: list[tuple[int, ...]], name: str, sizes):
    """Tie the inputs of an element-wise op segment by segment; returns the output's spaces.

    An input with a single channel broadcasts (it is left whole); inputs whose space layouts
    differ cannot be tied segment by segment, so they are all left whole.
    """
    total = [sum(sizes(d)) for d in in_descs]
    widest = max(total) if total else 0
    full = [d for d, t in zip(in_descs, total, strict=True) if t == widest]
    for desc, t in zip(in_descs, total, strict=True):
        if t != widest:
            graph.block(desc, f"broadcast in {name!r}")
    reference = full[0] if full else ()
    if any(sizes(d) != sizes(reference) for d in full[1:]):
        for desc in full:
            graph.block(desc, f"inputs of {name!r} have different channel layouts")
        return reference
    for desc in full[1:]:
        for a, b in zip(reference, desc, strict=True):
            graph.tie(a, b)
    return reference
