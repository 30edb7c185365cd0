"""The ranges a QAT model learned, placed on its exported ONNX graph.

``tlt_core.models.qat.activation_ranges`` gives each quantised Keras layer's input amax;
tf2onnx names every node it converts from a layer under that layer's name scope
(``.../<layer name>/...``), so each ONNX Conv / Gemm / MatMul / Add that TensorRT
quantises finds its layer by name. From there:

- ``qat_ranges_on_graph``: amax per (node, input) and per tensor (the largest where two
  layers read one tensor), for ``qdq.qdq_from_amax``: the explicit Q/DQ graph;
- ``peel_cache_scales``: 000's "peeling" for the float ONNX: TensorRT's implicit INT8 needs
  a scale on every tensor it hands between INT8 layers, including the outputs of the layers
  it fuses (Conv + ReLU, Add + ReLU). Each quantised input takes its learned range; a range
  moves back through ops that do not change it (ReLU, transposes, reshapes, pooling, pads,
  concatenation) to the producing Conv / Add, and forward through the same ops. scale =
  amax / 127.
"""

from __future__ import annotations

from collections.abc import Mapping

from tlt_core.errors import ExportError
from tlt_core.export.qdq import QUANTIZED_OPS, quantized_nodes

# Ops whose output range is (at most) their input's: a scale passes through them.
RANGE_PRESERVING = {
    "Relu",
    "Identity",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "MaxPool",
    "Pad",
    "Concat",
}


def layer_of(node_name: str, layer_names: set[str], model_name: str | None = None) -> str | None:
    """The Keras layer a tf2onnx node name belongs to: the innermost scope naming a layer.

    Keras uniquifies a scope per trace (``conv1`` becomes ``conv1_1`` inside the model scope
    ``ssd_resnet10_1``); the model's own scope tells which suffix that trace added.
    """
    parts = node_name.split("/")
    suffix = ""
    if model_name and parts[0].startswith(model_name):
        suffix = parts[0][len(model_name) :]
    for part in reversed(parts[:-1] or parts):
        if suffix and part.endswith(suffix) and part[: -len(suffix)] in layer_names:
            return part[: -len(suffix)]
        if part in layer_names:
            return part
    return None


def qat_ranges_on_graph(
    model, ranges: Mapping[str, list[float]], model_name: str | None = None
) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    """(amax per tensor, amax per (node name, input index)) of the TensorRT-quantised inputs
    of ``model`` (the raw network ONNX of a QAT model exported as float)."""
    names = set(ranges)
    per_tensor: dict[str, float] = {}
    per_consumer: dict[tuple[str, int], float] = {}
    unmatched = []
    for node in quantized_nodes(model):
        layer = layer_of(node.name, names, model_name)
        if layer is None:
            unmatched.append(node.name)
            continue
        amax = ranges[layer]
        indices = [0] if QUANTIZED_OPS[node.op_type] is not None else range(len(node.input))
        for k in indices:
            value = amax[min(k, len(amax) - 1)]
            if value <= 0:
                continue
            per_consumer[(node.name, k)] = value
            name = node.input[k]
            per_tensor[name] = max(per_tensor.get(name, 0.0), value)
    if unmatched:
        raise ExportError(
            f"QAT export: {len(unmatched)} quantised ONNX node(s) match no QAT layer "
            f"(first: {unmatched[0]}): the model does not quantise every layer TensorRT does"
        )
    return per_tensor, per_consumer


def peel_cache_scales(model, amax: Mapping[str, float]) -> dict[str, float]:
    """Cache scales (amax / 127) for every tensor TensorRT reads or writes in INT8, from the
    quantised inputs' ranges spread through range-preserving ops (see the module doc)."""
    ranges = dict(amax)
    nodes = [n for n in model.graph.node if n.op_type in RANGE_PRESERVING]
    changed = True
    while changed:
        changed = False
        for node in nodes:
            data = [node.input[0]] if node.op_type != "Concat" else list(node.input)
            out = node.output[0]
            if out in ranges:  # backward: the producer writes what the reader reads
                for name in data:
                    if name not in ranges:
                        ranges[name] = ranges[out]
                        changed = True
            elif all(name in ranges for name in data):
                ranges[out] = max(ranges[name] for name in data)
                changed = True
    # Producers fused with a range-preserving reader: Conv -> Relu, Add -> Relu.
    return {name: value / 127.0 for name, value in ranges.items() if value > 0}


def int8_tensors(model) -> list[str]:
    """The tensors TensorRT runs in INT8 for this graph: the quantised inputs, and every
    tensor joined to one of them by range-preserving ops (the outputs of the Conv / Add
    layers that feed them)."""
    from tlt_core.export.qdq import quantized_inputs

    needed = set(quantized_inputs(model))
    nodes = [n for n in model.graph.node if n.op_type in RANGE_PRESERVING]
    changed = True
    while changed:
        changed = False
        for node in nodes:
            data = [node.input[0]] if node.op_type != "Concat" else list(node.input)
            if node.output[0] in needed:
                for name in data:
                    if name not in needed:
                        needed.add(name)
                        changed = True
    initializers = {init.name for init in model.graph.initializer}
    return sorted(needed - initializers)
