"""INT8 simulation in ONNX Runtime: what a calibration cache does to the model's accuracy.

Every tensor with a cache scale gets a QuantizeLinear/DequantizeLinear pair (symmetric,
zero point 0, scale from the cache), and Conv weights are fake-quantised per output channel
with scale max|W|/127, as TensorRT quantises weights. Run the result on a validation set and
compare its mAP with the FP32 model's to check a cache before building an engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_QDQ_SUFFIX = "__fp32"


def fake_quantize_weights(weights: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel INT8 round trip of a conv kernel [O, I, kh, kw]."""
    flat = weights.reshape(weights.shape[0], -1)
    amax = np.abs(flat).max(axis=1, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    quantized = np.clip(np.round(flat / scale), -127, 127) * scale
    return quantized.reshape(weights.shape).astype(weights.dtype)


def quantize_simulation(
    model,
    scales: Mapping[str, float],
    *,
    quantize_weights: bool = True,
    conv_inputs_only: bool = True,
):
    """A copy of ``model`` with Q/DQ pairs on the tensors of ``scales`` (and INT8 weights).

    ``conv_inputs_only`` (default) quantises only tensors that a Conv reads: TensorRT runs
    a layer in INT8 and hands INT8 on only where the next layer consumes INT8, so the head
    outputs feeding softmax / decode stay in float (the placement explicit-quantisation
    tools use). ``False`` quantises every tensor of the cache, a pessimistic bound.
    """
    import onnx
    from onnx import helper, numpy_helper

    sim = onnx.ModelProto()
    sim.CopyFrom(model)
    graph = sim.graph
    if conv_inputs_only:
        conv_inputs = {node.input[0] for node in graph.node if node.op_type == "Conv"}
        scales = {k: v for k, v in scales.items() if k in conv_inputs}
    inputs = {inp.name for inp in graph.input}
    producers = {out for node in graph.node for out in node.output}
    new_nodes = []
    for name, scale in scales.items():
        if name not in inputs and name not in producers:
            continue
        scale_name, zero_name = f"{name}__qscale", f"{name}__qzero"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.asarray(scale, np.float32), scale_name),
                numpy_helper.from_array(np.asarray(0, np.int8), zero_name),
            ]
        )
        if name in inputs:
            source, target = name, f"{name}__qdq"
            for node in graph.node:  # consumers read the quantised copy
                node.input[:] = [target if i == name else i for i in node.input]
        else:
            # Rename the producer's output and let the Q/DQ pair produce the original name,
            # so consumers and graph outputs all see the quantised value.
            source, target = name + _QDQ_SUFFIX, name
            for node in graph.node:
                node.output[:] = [source if o == name else o for o in node.output]
        new_nodes += [
            helper.make_node("QuantizeLinear", [source, scale_name, zero_name], [f"{name}__q"]),
            helper.make_node("DequantizeLinear", [f"{name}__q", scale_name, zero_name], [target]),
        ]
    graph.node.extend(new_nodes)
    if quantize_weights:
        conv_weights = {node.input[1] for node in graph.node if node.op_type == "Conv"}
        for init in graph.initializer:
            if init.name in conv_weights:
                init.CopyFrom(
                    numpy_helper.from_array(
                        fake_quantize_weights(numpy_helper.to_array(init)), init.name
                    )
                )
    return _toposort(sim)


def _toposort(model):
    """Reorder nodes so each comes after its inputs' producers (ONNX requires it)."""
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(
                f"graph has a cycle or a missing input at {rest[0].name or rest[0].op_type}"
            )
        pending = rest
    nodes = [type(n)() for n in ordered]
    for copy, node in zip(nodes, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def simulated_map(
    model,
    scales: Mapping[str, float],
    network,
    spec,
    *,
    sources=None,
    batch_size: int | None = None,
    agreement_threshold: float = 0.3,
) -> dict[str, float]:
    """How much INT8 costs: the primary metric (SSD: mAP) of the exported ``model`` in FP32
    and INT8-simulated.

    Both run through the ONNX Runtime runner and the network's post-processing and metric
    on the spec's validation data. ``fp32`` and ``int8`` are the metric against the ground
    truth; ``int8_vs_fp32`` (where the network defines `prediction_agreement`; SSD: the mAP
    of the INT8 detections against the FP32 detections scoring at least
    ``agreement_threshold`` taken as ground truth, 1.0 = INT8 finds what FP32 finds)
    measures the quantisation alone, also for a model that is still weak.
    """
    from tlt_core.evaluate.collect import collect_predictions, score
    from tlt_core.export.runners import OnnxRunner

    result: dict[str, float] = {}
    collected = {}
    for name, graph in (("fp32", model), ("int8", quantize_simulation(model, scales))):
        runner = OnnxRunner(graph)
        collected[name] = collect_predictions(
            network, spec, runner, sources=sources, batch_size=batch_size
        )
        result[name] = float(score(network, spec, collected[name]).value)
    agreement = network.prediction_agreement(
        spec,
        collected["int8"].predictions,
        collected["fp32"].predictions,
        threshold=agreement_threshold,
    )
    if agreement is not None:
        result["int8_vs_fp32"] = float(agreement)
    return result
