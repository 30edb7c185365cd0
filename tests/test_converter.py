"""tlt-converter: argument parsing, dims/profile validation, cache-only calibrator, no-TRT path.

TensorRT itself needs a GPU and is not installed on the CI machine: everything up to the
first TensorRT call is tested here; the calibrator is exercised on a tiny stand-in base
class only when the real ``tensorrt.IInt8EntropyCalibrator2`` is absent.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from export_helpers import tiny_network
from hypothesis import given
from hypothesis import strategies as st

from tlt_core.cli.converter import build_parser, main
from tlt_core.errors import EngineBuildError, UsageError
from tlt_core.export import tensorrt as trt_mod
from tlt_core.export.cache import CalibrationCache, write_cache
from tlt_core.export.tensorrt import (
    EngineOptions,
    ShapeProfile,
    cache_calibrator_class,
    parse_dims,
    parse_profile,
)

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_parser_defaults_and_all_flags():
    args = build_parser().parse_args(["-k", "key", "-d", "3,96,128", "-o", "a,b", "m.etlt"])
    assert (args.engine, args.cal_cache, args.data_type) == ("./saved.engine", "./cal.bin", "fp32")
    assert (args.max_batch_size, args.cal_batch_size, args.workspace) == (16, 8, 1 << 30)
    assert (args.input_order, args.strict, args.dla_core, args.profiles) == (
        "nchw",
        False,
        None,
        [],
    )
    args = build_parser().parse_args(
        [
            "-k",
            "key",
            "-d",
            "3,96,128",
            "-o",
            "num_detections",
            "-c",
            "c.bin",
            "-e",
            "x.engine",
            "-b",
            "4",
            "-m",
            "32",
            "-t",
            "int8",
            "-w",
            "2048",
            "-i",
            "nchw",
            "-p",
            "Input,1x3x96x128,8x3x96x128,16x3x96x128",
            "-s",
            "-u",
            "1",
            "m.onnx",
        ]
    )
    assert (args.cal_cache, args.engine, args.cal_batch_size, args.max_batch_size) == (
        "c.bin",
        "x.engine",
        4,
        32,
    )
    assert (args.data_type, args.workspace, args.strict, args.dla_core) == ("int8", 2048, True, 1)
    assert args.profiles == ["Input,1x3x96x128,8x3x96x128,16x3x96x128"]


def test_parse_dims():
    assert parse_dims("3,300,300") == (3, 300, 300)
    assert parse_dims("300,300,3", "nhwc") == (300, 300, 3)
    assert parse_dims("10", "nc") == (10,)
    for bad in ("3,300", "3,300,x", "3,0,300", "3,-1,300", ""):
        with pytest.raises(UsageError, match=r"^-d: "):
            parse_dims(bad)


def test_parse_profile():
    assert parse_profile("Input,1x3x96x128,8x3x96x128,16x3x96x128") == ShapeProfile(
        "Input", (1, 3, 96, 128), (8, 3, 96, 128), (16, 3, 96, 128)
    )
    for bad in (
        "Input,1x3x96x128,8x3x96x128",
        "Input,1x3x96,8x3x96x128,16x3x96x128",
        "Input,8x3x96x128,1x3x96x128,16x3x96x128",
        ",1x3,1x3,1x3",
        "I,1x3,1xa,1x3",
        "I,0x3,1x3,1x3",
    ):
        with pytest.raises(UsageError, match=r"^-p: "):
            parse_profile(bad)


@given(st.lists(st.integers(1, 64), min_size=1, max_size=5))
def test_profile_accepts_any_ordered_shapes(dims):
    text = "x".join(map(str, dims))
    big = "x".join(str(d * 2) for d in dims)
    profile = parse_profile(f"in,{text},{text},{big}")
    assert profile.min_shape == tuple(dims) and profile.max_shape == tuple(d * 2 for d in dims)


def test_engine_options_validation():
    with pytest.raises(UsageError, match=r"^-c: int8 needs a calibration cache"):
        EngineOptions(data_type="int8")
    with pytest.raises(UsageError, match=r"^-u: DLA runs only fp16 or int8"):
        EngineOptions(dla_core=0)
    with pytest.raises(UsageError, match=r"^-m: must be positive"):
        EngineOptions(max_batch_size=0)
    EngineOptions(data_type="fp16", dla_core=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-d", "3,96"], "tlt-converter: error: -d: '3,96': expected 3 dimensions"),
        (["-d", "3,96,128", "-p", "Input,1x3"], "tlt-converter: error: -p: 'Input,1x3': expected"),
    ],
)
def test_bad_strings_exit_2_with_one_line(capsys, tmp_path, argv, message):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    code = main(["-k", "k", "-o", "num_detections", *argv, str(model)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(message) and "\n" not in err


@pytest.mark.skipif(HAS_TENSORRT, reason="tests the path without TensorRT")
def test_missing_tensorrt_is_one_line_error(capsys, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_network().SerializeToString())
    code = main(
        ["-k", "k", "-d", "3,8,8", "-o", "out", "-e", str(tmp_path / "x.engine"), str(model)]
    )
    err = capsys.readouterr().err.strip()
    assert code == EngineBuildError.exit_code == 6
    assert err == f"tlt-converter: error: {trt_mod.MISSING_TENSORRT}"
    assert not (tmp_path / "x.engine").exists()


def test_int8_cache_is_checked_before_tensorrt(capsys, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_network().SerializeToString())
    cache = write_cache(tmp_path / "cal.bin", CalibrationCache({"Input": 0.1, "other:0": 0.2}))
    code = main(["-k", "k", "-d", "3,8,8", "-o", "out", "-t", "int8", "-c", str(cache), str(model)])
    err = capsys.readouterr().err.strip()
    assert code == 6
    assert err == (
        f"tlt-converter: error: {cache}: other:0: cache tensor not in the network "
        "(1 of 2 unknown): the cache was made for another model"
    )


def test_etlt_input_is_opened_with_the_key(tmp_path):
    from tlt_core.errors import ModelFileError
    from tlt_core.modelfile import KIND_ETLT, seal_bytes

    path = tmp_path / "m.etlt"
    path.write_bytes(seal_bytes(b"onnx-bytes", "right", kind=KIND_ETLT))
    assert trt_mod.read_model_bytes(path, "right") == b"onnx-bytes"
    with pytest.raises(ModelFileError, match="wrong key"):
        trt_mod.read_model_bytes(path, "wrong")
    # A missing input is a model-file error (exit 4), not an engine-build failure (issue 16).
    with pytest.raises(ModelFileError, match=r"absent\.etlt: no such model file"):
        trt_mod.read_model_bytes(tmp_path / "absent.etlt", "k")


def _calibrator_base() -> type:
    if HAS_TENSORRT:
        import tensorrt

        return tensorrt.IInt8EntropyCalibrator2

    class StandInCalibratorBase:  # stand-in for tensorrt.IInt8EntropyCalibrator2 (absent here)
        def __init__(self) -> None:
            self.base_initialised = True

    return StandInCalibratorBase


def test_cache_only_calibrator_returns_cache_and_no_batches(tmp_path):
    cache = write_cache(tmp_path / "cal.bin", CalibrationCache({"Input": 0.5}))
    data = trt_mod.load_cache_bytes(cache, ["Input", "x"])
    calibrator = cache_calibrator_class(_calibrator_base())(data, 8)
    assert calibrator.read_calibration_cache() == data
    assert calibrator.get_batch_size() == 8
    assert calibrator.get_batch(["Input"]) is None  # never feeds data
    assert calibrator.batches_requested == 1
    calibrator.write_calibration_cache(b"other")  # never overwrites the source cache
    assert cache.read_bytes() == data


def test_engine_info_path_sits_beside_the_engine(tmp_path):
    assert trt_mod.engine_info_path(tmp_path / "a.engine") == tmp_path / "a.engine.json"


def test_onnx_tensor_names_cover_inputs_and_node_outputs():
    names = trt_mod.onnx_tensor_names(tiny_network().SerializeToString())
    assert names == ["Input", "conv1", "relu1", "shape", "out"]
    assert np.all([isinstance(n, str) for n in names])


def test_cache_header_is_retagged_for_the_running_tensorrt():
    assert trt_mod.trt_version_int("8.6.1.6") == 8601
    assert trt_mod.trt_version_int("10.3.0") == 100300
    cache = b"TRT-8601-EntropyCalibration2\nInput: 3f800000\n"
    assert trt_mod.retag_cache(cache, 100300) == (
        b"TRT-100300-EntropyCalibration2\nInput: 3f800000\n"
    )


def test_int8_without_a_cache_needs_a_qdq_graph(tmp_path):
    """Explicit quantization: INT8 from Q/DQ nodes, no cache; a float graph is refused
    before TensorRT is needed."""
    from tlt_core.export.qdq import qdq_from_amax

    assert EngineOptions(data_type="int8", int8_mode="qdq").cal_cache is None
    with pytest.raises(EngineBuildError, match="int8_mode qdq needs an ONNX with QuantizeLinear"):
        trt_mod.build_engine(
            tiny_network().SerializeToString(),
            tmp_path / "x.engine",
            EngineOptions(data_type="int8", int8_mode="qdq"),
        )
    qdq = qdq_from_amax(tiny_network(), {"Input": 3.0, "relu1": 2.0})
    assert trt_mod.has_qdq_nodes(qdq.SerializeToString())
    assert not trt_mod.has_qdq_nodes(tiny_network().SerializeToString())
    with pytest.raises(UsageError, match="int8_mode"):
        EngineOptions(data_type="int8", int8_mode="implicit")
