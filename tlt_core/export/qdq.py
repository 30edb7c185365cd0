"""Explicit INT8 quantization: an ONNX graph with QuantizeLinear/DequantizeLinear (Q/DQ).

TensorRT 10 deprecates implicit quantization (calibrators, caches); it builds an INT8
engine from a Q/DQ ONNX without a calibrator. What its ONNX parser accepts for that
(TensorRT developer guide, "Explicit Quantization"): opset >= 13, INT8 Q/DQ with zero
point 0 (symmetric), per-tensor scales on activations and per-tensor or per-channel scales
on weights (``axis`` = the output-channel axis: 0 for Conv kernels [O, I, kh, kw]);
``check_tensorrt_qdq`` checks exactly that on a graph.

Two ways to get the scales, both placing Q/DQ where TensorRT runs INT8 (the inputs of
Conv / Gemm / MatMul and of element-wise Add, weights per output channel):

- ``qdq_from_amax``: from given activation ranges (our entropy calibrator, or the ranges a
  QAT model learned); weights are stored as INT8 initializers with a per-channel
  DequantizeLinear (scale max|W| / 127 per output channel, as TensorRT and QAT do);
- ``quantize_with_onnxruntime``: ONNX Runtime's ``quantize_static`` (QDQ format, symmetric,
  entropy / percentile / minmax calibration).

Only the raw network is quantised (the export's ``network`` graph, before the network's
post-processing is appended): decode and NMS stay in float.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from tlt_core.errors import ExportError

log = logging.getLogger(__name__)

# The ops whose inputs TensorRT quantises; the weight input index of each (None: no weight).
QUANTIZED_OPS: dict[str, int | None] = {"Conv": 1, "Gemm": 1, "MatMul": 1, "Add": None}
CALIBRATORS = ("tlt", "ort-entropy", "ort-percentile", "ort-minmax")
MIN_QDQ_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (``axis``)


def _constants(model) -> set[str]:
    return {init.name for init in model.graph.initializer} | {
        o for node in model.graph.node if node.op_type == "Constant" for o in node.output
    }


def quantized_nodes(model, only: set[str] | None = None) -> list:
    """The nodes TensorRT runs in INT8: Conv / Gemm / MatMul with a constant weight, and Add
    between two activations (a residual join; an Add with a constant is a bias TensorRT fuses
    into the layer before it). ``only``: node names to consider (the network part of an
    exported graph; its post-processing stays float)."""
    constants = _constants(model)
    nodes = []
    for node in model.graph.node:
        if only is not None and node.name not in only:
            continue
        weight = QUANTIZED_OPS.get(node.op_type, -1)
        if weight == -1 or len(node.input) < 2:
            continue
        if weight is None:
            if not any(name in constants for name in node.input):
                nodes.append(node)
        elif node.input[weight] in constants:
            nodes.append(node)
    return nodes


def quantized_inputs(model, only: set[str] | None = None) -> list[str]:
    """Activation tensors TensorRT reads in INT8: the data input of each quantised Conv /
    Gemm / MatMul and both inputs of a residual Add, in graph order."""
    names: list[str] = []
    for node in quantized_nodes(model, only):
        inputs = list(node.input) if QUANTIZED_OPS[node.op_type] is None else [node.input[0]]
        for name in inputs:
            if name and name not in names:
                names.append(name)
    return names


def weight_axis(node, weight_shape: Sequence[int]) -> int:
    """The output-channel axis of ``node``'s weight (per-channel scales run along it)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return len(weight_shape) - 1  # MatMul: [K, N]


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel INT8: (int8 values, float32 scale per channel along ``axis``)."""
    moved = np.moveaxis(weight, axis, 0)
    amax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def qdq_from_amax(
    model,
    amax: Mapping[str, float],
    *,
    consumer_amax: Mapping[tuple[str, int], float] | None = None,
    only: set[str] | None = None,
):
    """A copy of ``model`` with Q/DQ before every input of a TensorRT-quantised node that has
    a range (scale amax / 127, zero point 0), and INT8 per-channel weights on every such
    Conv / Gemm / MatMul.

    ``amax``: range per tensor name; ``consumer_amax``: range per (node name, input index),
    which wins (a QAT model learns a range per layer input, and two layers reading one tensor
    may have learned different ones: each gets its own Q/DQ pair); ``only``: as for
    `quantized_nodes`.
    """
    import onnx
    from onnx import helper, numpy_helper

    from tlt_core.export.int8_sim import _toposort

    consumer_amax = consumer_amax or {}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {init.name: init for init in graph.initializer}
    new_nodes = []
    new_inits = [numpy_helper.from_array(np.asarray(0, np.int8), "qdq_zero")]
    pairs: dict[tuple[str, float], str] = {}  # (tensor, amax) -> its dequantised copy
    weights_done: dict[str, str] = {}

    for node in quantized_nodes(out, only):
        weight_index = QUANTIZED_OPS[node.op_type]
        data_inputs = range(len(node.input)) if weight_index is None else [0]
        for k in data_inputs:
            name = node.input[k]
            value = consumer_amax.get((node.name, k), amax.get(name))
            if value is None:
                continue
            value = float(max(value, 1e-8))
            key = (name, value)
            if key not in pairs:
                tag = f"{name}_qdq{len([p for p in pairs if p[0] == name]) or ''}"
                scale_name = f"{tag}_scale"
                new_inits.append(
                    numpy_helper.from_array(np.asarray(value / 127.0, np.float32), scale_name)
                )
                new_nodes += [
                    helper.make_node(
                        "QuantizeLinear", [name, scale_name, "qdq_zero"], [f"{tag}_q"]
                    ),
                    helper.make_node(
                        "DequantizeLinear", [f"{tag}_q", scale_name, "qdq_zero"], [f"{tag}_dq"]
                    ),
                ]
                pairs[key] = f"{tag}_dq"
            node.input[k] = pairs[key]
        if weight_index is None:
            continue
        weight_name = node.input[weight_index]
        if weight_name not in weights_done:
            init = inits.get(weight_name)
            if init is None or init.data_type != onnx.TensorProto.FLOAT or len(init.dims) < 2:
                continue
            weight = numpy_helper.to_array(init)
            axis = weight_axis(node, weight.shape)
            q, scale = quantize_weight(weight, axis)
            q_name, s_name, z_name = (f"{weight_name}_{k}" for k in ("int8", "wscale", "wzero"))
            new_inits += [
                numpy_helper.from_array(q, q_name),
                numpy_helper.from_array(scale, s_name),
                numpy_helper.from_array(np.zeros(scale.shape, np.int8), z_name),
            ]
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear", [q_name, s_name, z_name], [f"{weight_name}_dq"], axis=axis
                )
            )
            weights_done[weight_name] = f"{weight_name}_dq"
        node.input[weight_index] = weights_done[weight_name]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    used = {n for node in graph.node for n in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return _toposort(out)


# --------------------------------------------------------------------------- ONNX Runtime


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of NCHW batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = list(batches)
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        batch = self.batches[self.position]
        self.position += 1
        return {self.input_name: np.asarray(batch, np.float32)}

    def rewind(self) -> None:
        self.position = 0


def quantize_with_onnxruntime(
    model, batches: Sequence[np.ndarray], method: str = "entropy", only: set[str] | None = None
):
    """The raw network ``model`` quantised by ONNX Runtime's ``quantize_static``: QDQ format,
    INT8 symmetric activations (per tensor) and weights (per channel), float biases, Q/DQ
    only at the ops TensorRT quantises; ``method``: entropy, percentile or minmax."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        "minmax": CalibrationMethod.MinMax,
    }
    if method not in methods:
        raise ExportError(f"calibration method {method!r} not one of {sorted(methods)}")
    named = onnx.ModelProto()
    named.CopyFrom(model)
    taken = {node.name for node in named.graph.node}
    for index, node in enumerate(named.graph.node):  # nodes_to_quantize selects by name
        if not node.name:
            node.name = f"{node.op_type}_{index}"
            while node.name in taken:
                node.name += "_"
            taken.add(node.name)
    model = named
    input_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="tlt_qdq_") as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(onnx.shape_inference.infer_shapes(model), source)
        with _without_preprocessing_advice():
            quantize_static(
                str(source),
                str(target),
                _Reader(input_name, batches),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                nodes_to_quantize=[node.name for node in quantized_nodes(model, only)],
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                extra_options={
                    "ActivationSymmetric": True,
                    "WeightSymmetric": True,
                    # TensorRT takes float biases (it quantises them itself).
                    "QuantizeBias": False,
                    # Keep ReLU/Clip: removing them is only exact with asymmetric ranges.
                    "QDQKeepRemovableActivations": True,
                    "CalibTensorRangeSymmetric": True,
                    "CalibMovingAverage": False,
                    # Q/DQ on the inputs only, as TensorRT places them (its layer outputs stay
                    # in the precision the next layer reads).
                    "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
                },
                calibration_providers=["CPUExecutionProvider"],
            )
        quantised = onnx.load(target)
    # ONNX Runtime leaves value_info entries without a shape for some tensors (the
    # classification graph's softmax), which onnx.checker rejects; they are optional.
    kept = [v for v in quantised.graph.value_info if v.type.tensor_type.HasField("shape")]
    del quantised.graph.value_info[:]
    quantised.graph.value_info.extend(kept)
    del quantised.metadata_props[:]
    quantised.metadata_props.extend(model.metadata_props)
    return quantised


def network_nodes(exported) -> set[str]:
    """Names of the nodes of an exported graph's network part (``Input`` -> the raw network
    outputs its metadata names), the part that is quantised."""
    from tlt_core.export.onnx import network_part

    return {node.name for node in network_part(exported).graph.node}


class _PreprocessingAdvice(logging.Filter):
    """Drops ONNX Runtime's "Please consider (to run) pre-processing before quantization"
    lines. Its pre-processing runs ORT's graph optimiser, which can fuse nodes into
    ORT-only contrib ops (FusedConv, ...) that TensorRT's ONNX parser rejects; the graph
    here comes from tf2onnx's optimiser with shapes inferred, which is what TensorRT reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    advice = _PreprocessingAdvice()
    root = logging.getLogger()  # quantize_static warns through the root logger
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantize_exported(exported, batches: Sequence[np.ndarray], calibrator: str):
    """An exported graph (network + post-processing) with its network part explicitly
    quantised, the scales calibrated on ``batches`` by ``calibrator`` (`CALIBRATORS`)."""
    if calibrator not in CALIBRATORS:
        raise ExportError(f"calibrator {calibrator!r} not one of {CALIBRATORS}")
    only = network_nodes(exported)
    if calibrator == "tlt":
        from tlt_core.export.calibrate import calibrate_network
        from tlt_core.export.onnx import network_part

        amax = calibrate_network(network_part(exported), batches).amax
        quantised = qdq_from_amax(exported, amax, only=only)
    else:
        quantised = quantize_with_onnxruntime(
            exported, batches, calibrator.split("-", 1)[1], only=only
        )
    require_tensorrt_qdq(quantised, "Q/DQ model")
    return quantised


# --------------------------------------------------------------------------- TensorRT rules


def check_tensorrt_qdq(model) -> list[str]:
    """What in ``model`` TensorRT's ONNX parser would refuse for explicit quantization;
    an empty list when it accepts the graph (also runs ``onnx.checker``)."""
    import onnx
    from onnx import numpy_helper

    from tlt_core.export.onnx import opset_of

    problems: list[str] = []
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        # TensorRT plugin nodes (EfficientNMS_TRT) are unknown to the checker, not to TensorRT.
        if not any(node.op_type.endswith("_TRT") for node in model.graph.node):
            problems.append(f"onnx.checker: {str(error).splitlines()[0]}")
    if opset_of(model) < MIN_QDQ_OPSET:
        problems.append(f"opset {opset_of(model)} < {MIN_QDQ_OPSET}")
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    constants = {
        node.output[0]: numpy_helper.to_array(node.attribute[0].t)
        for node in model.graph.node
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"
    }
    values = {**inits, **constants}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        problems.append("no QuantizeLinear/DequantizeLinear nodes")
    for node in qdq:
        label = node.name or node.output[0]
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{label}: domain {node.domain!r} (TensorRT reads the ONNX domain)")
        if len(node.input) < 3 or node.input[2] not in values:
            problems.append(f"{label}: no constant zero point (INT8 needs an explicit 0)")
            continue
        zero_point = values[node.input[2]]
        if zero_point.dtype != np.int8:
            problems.append(f"{label}: zero point type {zero_point.dtype}, TensorRT needs int8")
        if np.any(zero_point != 0):
            problems.append(f"{label}: non-zero zero point (TensorRT is symmetric)")
        scale = values.get(node.input[1])
        if scale is None:
            problems.append(f"{label}: scale is not a constant")
            continue
        if scale.dtype != np.float32 or not np.all(scale > 0):
            problems.append(f"{label}: scale must be positive float32")
        if scale.size > 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            source = node.input[0]
            if node.op_type != "DequantizeLinear" or source not in values:
                problems.append(f"{label}: per-channel scale on an activation (per-tensor only)")
            elif values[source].shape[axis] != scale.size:
                problems.append(f"{label}: axis {axis} does not match {scale.size} scales")
        source_value = values.get(node.input[0])
        weight_dtype = None if source_value is None else source_value.dtype
        if node.op_type == "DequantizeLinear" and weight_dtype not in (None, np.int8):
            problems.append(f"{label}: weight stored as {weight_dtype}")
    return problems


def require_tensorrt_qdq(model, source: str) -> None:
    problems = check_tensorrt_qdq(model)
    if problems:
        raise ExportError(
            f"{source}: Q/DQ graph TensorRT would not accept: {problems[0]}"
            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )


def qdq_counts(model) -> dict[str, int]:
    """How many Q and DQ nodes a graph holds (for logs and reports)."""
    count = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in model.graph.node:
        if node.op_type in count:
            count[node.op_type] += 1
    return count
