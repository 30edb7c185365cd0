"""Explicit INT8 quantization (Q/DQ ONNX): placement, TensorRT's parser rules, accuracy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from export_helpers import tiny_network

from tlt_core.export.qdq import (
    check_tensorrt_qdq,
    qdq_counts,
    qdq_from_amax,
    quantize_weight,
    quantize_with_onnxruntime,
    quantized_inputs,
)


def _run(model, x):
    from tlt_core.export.onnx import ort_session

    session = ort_session(model, ["CPUExecutionProvider"])
    return session.run(None, {"Input": x})[0]


def _batches(seed: int = 1, count: int = 3):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(4, 3, 8, 8)).astype(np.float32) for _ in range(count)]


def _residual_network():
    """Input -> Conv -> Relu -> (Conv, identity) -> Add -> Relu -> MatMul; a bias Add too."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["Input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["c2", "r1"], ["sum"]),
            helper.make_node("Relu", ["sum"], ["r2"]),
            helper.make_node("Flatten", ["r2"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w3"], ["mm"]),
            helper.make_node("Add", ["mm", "b3"], ["out"]),  # a bias: not quantised
        ],
        "residual",
        [helper.make_tensor_value_info("Input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 5])],
        [
            numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3, "w1"),
            numpy_helper.from_array(rng.normal(size=4).astype(np.float32) * 0.1, "b1"),
            numpy_helper.from_array(rng.normal(size=(4, 4, 3, 3)).astype(np.float32) * 0.2, "w2"),
            numpy_helper.from_array(rng.normal(size=(256, 5)).astype(np.float32) * 0.1, "w3"),
            numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "b3"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def test_quantised_inputs_are_conv_matmul_data_and_residual_adds_not_biases():
    model = _residual_network()
    assert quantized_inputs(model) == ["Input", "r1", "c2", "flat"]


def test_per_channel_weight_quantisation_is_symmetric_int8():
    w = np.random.default_rng(0).normal(size=(6, 3, 3, 3)).astype(np.float32)
    q, scale = quantize_weight(w, 0)
    assert q.dtype == np.int8 and scale.shape == (6,)
    assert np.all(np.abs(q).reshape(6, -1).max(axis=1) == 127)
    assert np.abs(q * scale[:, None, None, None] - w).max() <= scale.max() / 2 + 1e-7
    _, scale1 = quantize_weight(w.reshape(6, 27).T, 1)  # MatMul [K, N]: channels last
    assert scale1.shape == (6,) and np.allclose(scale1, scale)


@pytest.mark.parametrize("calibrator", ["tlt", "ort-entropy", "ort-percentile"])
def test_qdq_graphs_pass_tensorrt_rules_and_stay_close(calibrator, caplog):
    from tlt_core.export.calibrate import calibrate_network

    model = _residual_network()
    batches = _batches()
    if calibrator == "tlt":
        quantised = qdq_from_amax(model, calibrate_network(model, batches).amax)
    else:
        with caplog.at_level(logging.WARNING):
            quantised = quantize_with_onnxruntime(model, batches, calibrator.split("-")[1])
        # ONNX Runtime's pre-processing advice (its optimiser makes ORT-only ops) is not
        # passed on to the user; nothing else it says is hidden.
        assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
        assert logging.getLogger().filters == []
    assert check_tensorrt_qdq(quantised) == []
    # One Q/DQ pair per quantised input and a DQ per weight (3 weights).
    counts = qdq_counts(quantised)
    assert counts["QuantizeLinear"] == 4 and counts["DequantizeLinear"] == 4 + 3
    dq_axes = {
        n.input[0]: next((a.i for a in n.attribute if a.name == "axis"), None)
        for n in quantised.graph.node
        if n.op_type == "DequantizeLinear" and "w" in n.input[0][:2]
    }
    assert sorted(dq_axes.values()) == [0, 0, 1]  # Conv kernels axis 0, MatMul [K, N] axis 1
    x = _batches(seed=9, count=1)[0]
    reference, int8 = _run(model, x), _run(quantised, x)
    assert np.abs(int8 - reference).max() < 0.05 * np.abs(reference).max()
    assert not np.array_equal(int8, reference)  # it did quantise


def test_checker_names_what_tensorrt_refuses():
    import onnx
    from onnx import numpy_helper

    model = qdq_from_amax(tiny_network(), {"Input": 3.0, "relu1": 2.0})
    assert check_tensorrt_qdq(model) == []
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    for init in bad.graph.initializer:
        if init.name == "qdq_zero":  # asymmetric: zero point 3
            init.CopyFrom(numpy_helper.from_array(np.asarray(3, np.int8), "qdq_zero"))
    assert any("non-zero zero point" in p for p in check_tensorrt_qdq(bad))
    uint8 = onnx.ModelProto()
    uint8.CopyFrom(model)
    for init in uint8.graph.initializer:
        if init.name == "qdq_zero":
            init.CopyFrom(numpy_helper.from_array(np.asarray(0, np.uint8), "qdq_zero"))
    assert any("int8" in p for p in check_tensorrt_qdq(uint8))
    assert check_tensorrt_qdq(tiny_network()) == ["no QuantizeLinear/DequantizeLinear nodes"]
