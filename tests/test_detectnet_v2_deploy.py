"""DetectNet_v2 deployment parts: NCHW ONNX outputs, nvinfer config, cluster-params file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tlt_core.boxes.nms import Detections
from tlt_core.errors import DataError, ExportError
from tlt_core.networks.detectnet_v2.deepstream import deepstream_files
from tlt_core.networks.detectnet_v2.inference import DetectNetWriter, load_cluster_params
from tlt_core.networks.detectnet_v2.sample_spec import sample_spec
from tlt_core.networks.detectnet_v2.spec import parse_experiment

CLUSTER_FILE = Path("/work/shared/specs/detectnet_v2_inference_cluster_params.json")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    return parse_experiment(sample_spec(root), path="spec.txt")


def test_sample_spec_parses(spec):
    assert spec.class_names == ("car", "cyclist", "pedestrian")
    assert spec.class_mapping["van"] == "car" and spec.class_mapping["person_sitting"]
    assert spec.grid_shape == (12, 16)
    assert spec.validation_data_sources and spec.validation_fold is None


def test_deepstream_config_uses_the_builtin_parser(spec):
    files = deepstream_files(
        spec,
        model_file="model.onnx",
        model_class_names=None,
        data_type="int8",
        cal_cache_file="cal.bin",
    )
    assert files["labels.txt"] == "car\ncyclist\npedestrian\n"
    text = files["nvinfer_config.txt"]
    assert "output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd" in text
    assert "cluster-mode=1" in text and "parse-bbox-func-name=" not in text
    assert "int8-calib-file=cal.bin" in text and "num-detected-classes=3" in text
    assert "[class-attrs-2]" in text and "eps=0.3" in text and "dbscan-min-score=0.05" in text
    assert "WARNING" not in text
    odd = spec.with_overrides({"model_config.objective_set.bbox.scale": 20.0})
    text = deepstream_files(odd, model_file="m.onnx", model_class_names=None, data_type="fp32")[
        "nvinfer_config.txt"
    ]
    assert "WARNING: objective_set.bbox scale 20" in text
    with pytest.raises(ExportError, match="differ"):
        deepstream_files(spec, model_file="m", model_class_names=["a"], data_type="fp32")


def test_onnx_outputs_are_nchw_with_deepstream_names(spec):
    import onnxruntime as ort

    from tlt_core.networks.detectnet_v2.deepstream import nchw_outputs
    from tlt_core.networks.detectnet_v2.model import build_detectnet_v2_model

    tf2onnx = pytest.importorskip("tf2onnx")
    import tensorflow as tf

    model = build_detectnet_v2_model("resnet", 10, input_shape=(64, 96, 3), num_classes=3)

    @tf.function(input_signature=[tf.TensorSpec([None, 64, 96, 3], tf.float32, name="Input")])
    def call(x):
        return dict(model(x, training=False))

    proto, _ = tf2onnx.convert.from_function(call, input_signature=call.input_signature)
    full = nchw_outputs(proto)
    assert [o.name for o in full.graph.output] == ["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    x = np.random.default_rng(0).normal(size=(2, 64, 96, 3)).astype(np.float32)
    session = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"])
    cov, bbox = session.run(None, {session.get_inputs()[0].name: x})
    keras_out = model(x)
    np.testing.assert_allclose(cov, np.transpose(keras_out["output_cov"], (0, 3, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(
        bbox, np.transpose(keras_out["output_bbox"], (0, 3, 1, 2)), atol=1e-4
    )


def test_shared_cluster_params_file_reads_as_it_is(spec):
    if not CLUSTER_FILE.exists():
        pytest.skip("shared spec samples not present")
    params = load_cluster_params(CLUSTER_FILE, spec.class_names, spec.clustering)
    car, cyclist, pedestrian = params.settings
    assert (car.dbscan_eps, car.coverage_threshold, car.confidence_threshold) == (0.25, 0.075, 0.3)
    assert pedestrian.confidence_threshold == 0.2 and pedestrian.coverage_threshold == 0.005
    assert cyclist.minimum_bounding_box_height == 4
    assert params.written == {"car", "cyclist", "pedestrian"}
    assert params.colours["pedestrian"] == (200, 0, 200)


def test_cluster_params_errors_name_the_line(spec, tmp_path):
    path = tmp_path / "cp.json"
    path.write_text('{\n  "dbscan_eps": {"car": 0.2},\n  "target_classes": ["truck"]\n}\n')
    with pytest.raises(DataError, match=r"cp.json:3: target_classes: 'truck' is not a class"):
        load_cluster_params(path, spec.class_names, spec.clustering)
    path.write_text('{\n  "dbscan_eps": {"car": 0.2,}\n}\n')
    with pytest.raises(DataError, match=r"cp.json:2: not JSON"):
        load_cluster_params(path, spec.class_names, spec.clustering)


def test_writer_applies_output_map_and_postproc_classes(spec, tmp_path):
    cp = tmp_path / "cp.json"
    cp.write_text(
        json.dumps({"output_map": {"car": "vehicle"}, "postproc_classes": ["car", "pedestrian"]})
    )
    params = load_cluster_params(cp, spec.class_names, spec.clustering)
    writer = DetectNetWriter(
        list(spec.class_names),
        tmp_path / "images_annotated",
        tmp_path / "labels",
        cluster_params=params,
    )
    det = Detections(
        np.array([[1.0, 2.0, 30.0, 40.0], [5.0, 5.0, 9.0, 20.0]]),
        np.array([0, 1]),
        np.array([0.9, 0.8]),
    )
    image = np.zeros((50, 60, 3), np.uint8)
    assert writer.add(Path("img/000001.png"), image, det) == 1
    label = (tmp_path / "labels" / "000001.txt").read_text().split()
    assert label[0] == "vehicle" and float(label[-1]) == pytest.approx(0.9)
    assert (tmp_path / "images_annotated" / "000001.png").exists()
