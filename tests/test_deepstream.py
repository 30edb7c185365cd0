"""DeepStream files: labels.txt order and the nvinfer config matching the exported model."""

from __future__ import annotations

import pytest

from tlt_core.errors import ExportError
from tlt_core.networks.ssd.deepstream import (
    PARSER_FUNCTION,
    label_lines,
    nvinfer_config_text,
    write_deepstream_files,
)
from tlt_core.networks.ssd.onnx_postprocess import OUTPUT_NAMES


def _properties(text: str, section: str = "[property]") -> dict[str, str]:
    lines = text.split(section, 1)[1].split("\n[", 1)[0].splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_labels_are_background_then_the_model_order():
    assert label_lines(["bicycle", "car", "person"], ["bicycle", "car", "person"]) == [
        "background",
        "bicycle",
        "car",
        "person",
    ]


def test_labels_refuse_a_spec_that_differs_from_the_model():
    with pytest.raises(ExportError, match="differ from the model"):
        label_lines(["car", "person"], ["car", "cyclist"])
    with pytest.raises(ExportError, match="alphabetical"):
        label_lines(["person", "car"], None)


@pytest.mark.parametrize(("data_type", "mode"), [("fp32", "0"), ("int8", "1"), ("fp16", "2")])
def test_config_properties(data_type, mode):
    text = nvinfer_config_text(
        model_file="m.onnx",
        labels_file="labels.txt",
        input_shape_hwc=(384, 1248, 3),
        image_mean_bgr=(103.939, 116.779, 123.68),
        num_classes=4,
        data_type=data_type,
        batch_size=2,
        engine_file="m.engine" if data_type == "fp16" else None,
        cal_cache_file="cal.bin" if data_type == "int8" else None,
        pre_cluster_threshold=0.4,
    )
    props = _properties(text)
    assert props["network-mode"] == mode
    assert props["net-scale-factor"] == "1.0"
    assert props["offsets"] == "103.939;116.779;123.68"
    assert props["model-color-format"] == "1"
    assert props["infer-dims"] == "3;384;1248"
    assert props["num-detected-classes"] == "4"
    assert props["batch-size"] == "2"
    assert props["output-blob-names"].split(";") == list(OUTPUT_NAMES)
    assert props["parse-bbox-func-name"] == PARSER_FUNCTION
    assert props["onnx-file"] == "m.onnx" and props["labelfile-path"] == "labels.txt"
    assert ("int8-calib-file" in props) == (data_type == "int8")
    assert ("model-engine-file" in props) == (data_type == "fp16")
    assert _properties(text, "[class-attrs-all]")["pre-cluster-threshold"] == "0.4"


def test_int8_config_needs_a_cache():
    with pytest.raises(ExportError, match="int8 needs a calibration cache"):
        nvinfer_config_text(
            model_file="m.onnx",
            labels_file="l.txt",
            input_shape_hwc=(1, 1, 3),
            image_mean_bgr=(0, 0, 0),
            num_classes=2,
            data_type="int8",
        )


def test_written_files_use_relative_paths(tmp_path):
    files = write_deepstream_files(
        tmp_path,
        class_names=("car", "cyclist", "pedestrian"),
        model_class_names=["car", "cyclist", "pedestrian"],
        model_file=tmp_path / "m.onnx",
        input_shape_hwc=(96, 128, 3),
        image_mean_bgr=(103.9, 116.8, 123.7),
        data_type="int8",
        cal_cache_file=tmp_path / "cal.bin",
    )
    assert files.labels.read_text() == "background\ncar\ncyclist\npedestrian\n"
    props = _properties(files.config.read_text())
    assert props["onnx-file"] == "m.onnx" and props["int8-calib-file"] == "cal.bin"
    assert props["num-detected-classes"] == "4"
