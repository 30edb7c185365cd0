"""INT8 calibration: entropy thresholds, the TensorRT cache format, tensorfiles, Q/DQ sim."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from export_helpers import tiny_network
from hypothesis import given
from hypothesis import strategies as st

from tlt_core.errors import ExportError
from tlt_core.export import cache as cache_mod
from tlt_core.export.cache import (
    CalibrationCache,
    check_cache_matches,
    hex_to_scale,
    read_cache,
    scale_to_hex,
    write_cache,
)
from tlt_core.export.calibrate import (
    NUM_BINS,
    activation_names,
    calibrate_network,
    entropy_amax,
    entropy_threshold_bins,
    kl_divergences,
    load_tensorfile,
    save_tensorfile,
)


def reference_divergences(hist: np.ndarray, levels: int = 128) -> np.ndarray:
    """Migacz's algorithm written as a plain loop, one candidate at a time."""
    hist = np.asarray(hist, float)
    out = []
    for i in range(levels, len(hist) + 1):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        nonzero = hist[:i] != 0
        q = np.zeros(i)
        for k in range(levels):
            start, end = (k * i + levels - 1) // levels, ((k + 1) * i + levels - 1) // levels
            count = nonzero[start:end].sum()
            if count:
                q[start:end] = np.where(nonzero[start:end], hist[start:end].sum() / count, 0)
        if p.sum() == 0 or q.sum() == 0:
            out.append(np.inf)
            continue
        pn, qn = p / p.sum(), q / q.sum()
        mask = pn > 0
        if (qn[mask] == 0).any():
            out.append(np.inf)
            continue
        out.append(float(np.sum(pn[mask] * np.log(pn[mask] / qn[mask]))))
    return np.array(out)


def _hist(values: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    values = np.abs(values)
    return np.histogram(values, bins=bins, range=(0.0, values.max()))[0]


@pytest.mark.parametrize("kind", ["gauss", "relu", "heavy_tail", "gaps"])
def test_vectorised_divergence_matches_reference_loop(kind):
    rng = np.random.default_rng(3)
    if kind == "gauss":
        x = rng.normal(size=50_000)
    elif kind == "relu":
        x = np.maximum(rng.normal(size=50_000), 0)
    elif kind == "heavy_tail":
        x = rng.standard_t(2, size=50_000)
    else:
        x = np.concatenate([rng.uniform(0, 1, 20_000), rng.uniform(5, 6, 200)])
    hist = _hist(x, bins=512)  # smaller than 2048 to keep the loop quick
    fast, slow = kl_divergences(hist), reference_divergences(hist)
    finite = np.isfinite(slow)
    assert np.array_equal(np.isfinite(fast), finite)
    np.testing.assert_allclose(fast[finite], slow[finite], rtol=1e-9, atol=1e-12)
    assert entropy_threshold_bins(hist) == 128 + int(np.argmin(slow))


def test_entropy_clips_outliers_but_keeps_the_bulk():
    rng = np.random.default_rng(0)
    bulk = rng.normal(size=200_000)
    x = np.concatenate([bulk, [40.0]])  # one extreme outlier sets the histogram range
    amax = entropy_amax(_hist(x), float(np.abs(x).max()))
    assert 2.5 < amax < 10.0  # far below the outlier, above nearly all of the bulk
    uniform = rng.uniform(-1, 1, 200_000)
    assert entropy_amax(_hist(uniform), 1.0) > 0.9  # nothing to clip


def test_all_zero_histogram_keeps_the_full_range():
    assert entropy_threshold_bins(np.zeros(NUM_BINS)) == NUM_BINS


@given(st.floats(min_value=1e-30, max_value=1e30, allow_nan=False))
def test_scale_hex_round_trip(scale):
    text = scale_to_hex(scale)
    assert len(text) == 8 and int(text, 16) == struct.unpack(">I", struct.pack(">f", scale))[0]
    assert hex_to_scale(text) == np.float32(scale)


def test_cache_text_format_and_round_trip(tmp_path):
    cache = CalibrationCache({"Input": 1.0, "conv1/Relu:0": 0.0078125, "a: b": 2.5})
    path = write_cache(tmp_path / "cal.bin", cache)
    text = path.read_text().splitlines()
    assert text[0] == "TRT-8601-EntropyCalibration2"
    assert text[1] == "Input: 3f800000"
    assert text[2] == "conv1/Relu:0: 3c000000"
    back = read_cache(path)
    assert back.scales == cache.scales and back.trt_version == 8601
    assert back.algorithm == "EntropyCalibration2"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", 1),
        ("TRT-x-EntropyCalibration2\n", 1),
        ("TRT-8601-EntropyCalibration2\nInput 3f800000\n", 2),
        ("TRT-8601-EntropyCalibration2\nInput: 3f80000\n", 2),
        ("TRT-8601-EntropyCalibration2\nInput: 3f800000\nInput: 3f800000\n", 3),
    ],
)
def test_malformed_cache_is_a_located_error(tmp_path, text, line):
    path = tmp_path / "bad.bin"
    path.write_text(text)
    with pytest.raises(ExportError, match=rf"bad\.bin:{line}: "):
        read_cache(path)


def test_write_refuses_non_positive_scale(tmp_path):
    with pytest.raises(ExportError, match="conv: scale"):
        write_cache(tmp_path / "c.bin", CalibrationCache({"conv": 0.0}))
    assert not (tmp_path / "c.bin").exists()


def test_cache_for_another_graph_is_refused(tmp_path):
    cache = CalibrationCache({"Input": 1.0, "other_model/conv:0": 0.5})
    with pytest.raises(ExportError, match=r"c\.bin: other_model/conv:0: cache tensor not in"):
        check_cache_matches(cache, ["Input", "conv_out"], tmp_path / "c.bin")
    check_cache_matches(CalibrationCache({"Input": 1.0}), ["Input", "x"], "c.bin")


# ------------------------------------------------------------------ tiny hand-made graph


def _run(model, x: np.ndarray, outputs=None) -> list[np.ndarray]:
    import onnxruntime as ort

    from tlt_core.export.calibrate import expose_tensors

    if outputs:
        model = expose_tensors(model, outputs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"Input": x})


def test_activation_names_are_input_and_float_node_outputs():
    assert activation_names(tiny_network()) == ["Input", "conv1", "relu1", "out"]


def test_calibrate_tiny_graph_gives_thresholds_within_the_observed_range():
    model = tiny_network()
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(4, 3, 8, 8)).astype(np.float32) for _ in range(3)]
    result = calibrate_network(model, batches)
    assert list(result.amax) == ["Input", "conv1", "relu1", "out"]
    conv1 = np.concatenate([_run(model, b, ["conv1"])[0] for b in batches])
    assert result.max_abs["conv1"] == pytest.approx(np.abs(conv1).max(), rel=1e-6)
    for name, amax in result.amax.items():
        assert 0 < amax <= result.max_abs[name] * (1 + 1e-9)
    # The entropy threshold is the one computed from the histogram of that tensor.
    nonzero = np.abs(conv1)[conv1 != 0]  # exact zeros are left out (skip_zeros)
    hist = np.histogram(nonzero, bins=NUM_BINS, range=(0, result.max_abs["conv1"]))[0]
    assert result.amax["conv1"] == pytest.approx(entropy_amax(hist, result.max_abs["conv1"]))
    assert result.scales["relu1"] == pytest.approx(result.amax["relu1"] / 127)
    assert result.num_images == 12
    # relu1 is half zeros: with them in the histogram its threshold is clipped harder.
    with_zeros = calibrate_network(model, batches, skip_zeros=False)
    assert with_zeros.amax["relu1"] < result.amax["relu1"]


def test_int8_simulation_stays_close_to_fp32():
    from tlt_core.export.int8_sim import quantize_simulation

    model = tiny_network()
    rng = np.random.default_rng(2)
    batches = [rng.normal(size=(32, 3, 8, 8)).astype(np.float32) for _ in range(4)]
    scales = calibrate_network(model, batches).scales
    conv_only = [n.op_type for n in quantize_simulation(model, scales).graph.node]
    assert conv_only.count("QuantizeLinear") == 2  # Input and relu1, the two Conv inputs
    sim = quantize_simulation(model, scales, conv_inputs_only=False)
    ops = [n.op_type for n in sim.graph.node]
    assert ops.count("QuantizeLinear") == 4 and ops.count("DequantizeLinear") == 4
    x = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    ref, got = _run(model, x)[0], _run(sim, x)[0]
    assert not np.array_equal(ref, got)  # quantisation does change values
    # Entropy thresholds clip the tails on purpose: a few percent of mean error on a
    # random (untrained) network is expected; a wrong scale would be far off.
    rel = np.abs(got - ref).mean() / np.abs(ref).mean()
    assert rel < 0.1
    # Values on the int8 grid of the output scale.
    steps = got / scales["out"]
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


def test_tensorfile_round_trip_and_checks(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(4, 3, 8, 8)).astype(np.float32) for _ in range(3)]
    path = save_tensorfile(tmp_path / "cal.npz", batches)
    back = load_tensorfile(path)
    assert len(back) == 3 and all(np.array_equal(a, b) for a, b in zip(back, batches, strict=True))
    rebatched = load_tensorfile(path, batches=2, batch_size=6, input_chw=(3, 8, 8))
    assert [b.shape[0] for b in rebatched] == [6, 6]
    with pytest.raises(ExportError, match="fewer than batches x batch_size"):
        load_tensorfile(path, batches=4, batch_size=4)
    with pytest.raises(ExportError, match="does not match the model input"):
        load_tensorfile(path, input_chw=(3, 16, 16))
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(ExportError, match=r"junk\.npz: not a calibration tensorfile"):
        load_tensorfile(tmp_path / "junk.npz")


def test_cache_module_default_version_is_tensorrt_86():
    assert cache_mod.DEFAULT_TRT_VERSION == 8601
