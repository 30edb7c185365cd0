"""`tlt ssd export` end to end on a tiny SSD: ONNX parity with Keras + the shared NMS,
the sealed .etlt, INT8 calibration cache, DeepStream files, and the ONNX Runtime runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlt_core.errors import ExportError, ModelFileError
from tlt_core.networks import get_network

KEY = "export-key"

SSD = get_network("ssd")


@pytest.fixture(scope="module")
def exported(sample_dataset, tmp_path_factory):
    """One export through the CLI: int8, tensorfile, DeepStream files (a single tf2onnx run)."""
    from export_helpers import tiny_ssd

    from tlt_core.cli import main

    root = tmp_path_factory.mktemp("export")
    spec, experiment, model = tiny_ssd(sample_dataset.root, root, seed=7, key=KEY)
    out = root / "out" / "model.etlt"
    code = main(
        [
            "ssd",
            "export",
            "-m",
            str(root / "model.tlt"),
            "-k",
            KEY,
            "-e",
            str(spec),
            "-o",
            str(out),
            "--data_type",
            "int8",
            "--cal_image_dir",
            str(sample_dataset.train_image_dir),
            "--cal_data_file",
            str(root / "out" / "cal.npz"),
            "--batches",
            "2",
            "--batch_size",
            "4",
            "--gen_ds_config",
        ]
    )
    assert code == 0
    return {"root": root, "spec": spec, "experiment": experiment, "model": model, "out": out}


def _val_batch(experiment, count: int = 8):
    from tlt_core.networks import get_network

    dataset = get_network("ssd").input_pipeline(
        experiment, training=False, batch_size=count, shuffle=False
    )
    return next(dataset.as_numpy_iterator())


def test_written_files(exported):
    out_dir = exported["out"].parent
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        "cal.bin",
        "cal.npz",
        "labels.txt",
        "model.etlt",
        "model.onnx",
        "nvinfer_config.txt",
    ]
    assert (out_dir / "labels.txt").read_text().split() == [
        "background",
        "car",
        "cyclist",
        "pedestrian",
    ]
    config = (out_dir / "nvinfer_config.txt").read_text()
    assert "onnx-file=model.onnx" in config and "int8-calib-file=cal.bin" in config
    assert "network-mode=1" in config and "infer-dims=3;96;128" in config


def test_etlt_is_sealed_and_holds_the_documented_graph(exported):
    from tlt_core.export.onnx import get_metadata, read_model
    from tlt_core.networks.ssd.onnx_postprocess import OUTPUT_NAMES

    model = read_model(exported["out"], KEY)
    with pytest.raises(ModelFileError, match="wrong key"):
        read_model(exported["out"], "not-the-key")
    assert b"detection_boxes" not in exported["out"].read_bytes()  # encrypted
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "Input"
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [3, 96, 128]
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    ops = {n.op_type for n in model.graph.node}
    assert {"NonMaxSuppression", "Softmax", "TopK"} <= ops
    meta = get_metadata(model)
    experiment = exported["experiment"]
    assert meta["class_names"] == list(experiment.class_names)
    assert meta["input_shape_chw"] == [3, 96, 128]
    assert meta["image_mean_bgr"] == pytest.approx(list(experiment.image_mean_bgr))
    assert meta["nms"]["top_k"] == 200 and meta["postprocess"] == "onnx"
    assert len(meta["spec_sha256"]) == 64
    plain = read_model(exported["out"].with_suffix(".onnx"))
    assert plain.SerializeToString() == model.SerializeToString()


def test_batch_dimension_is_named_batch_everywhere(exported):
    """DeepStream and TensorRT profiles show the name: one ``batch``, never ``unk__NNN``."""
    from tlt_core.export.onnx import read_model

    graph = read_model(exported["out"].with_suffix(".onnx")).graph
    leading = {
        info.name: info.type.tensor_type.shape.dim[0].dim_param
        for info in (*graph.input, *graph.output)
    }
    assert set(leading.values()) == {"batch"}, leading
    params = {
        d.dim_param
        for info in (*graph.input, *graph.output, *graph.value_info)
        for d in info.type.tensor_type.shape.dim
    }
    assert not any(p.startswith("unk__") for p in params), params


def test_onnx_detections_match_keras_and_shared_nms(exported):
    from tlt_core.boxes.nms import NmsConfig
    from tlt_core.export.runners import OnnxRunner
    from tlt_core.inference_runner import KerasRunner
    from tlt_core.networks.ssd.anchors import generate_anchors
    from tlt_core.networks.ssd.model import ssd_feature_map_sizes
    from tlt_core.networks.ssd.postprocess import detections_from_outputs

    experiment, model = exported["experiment"], exported["model"]
    images = _val_batch(experiment)["image"]
    keras_runner = KerasRunner(model, SSD)
    onnx_runner = OnnxRunner.from_file(exported["out"], KEY)
    assert onnx_runner.input_shape == keras_runner.input_shape
    sizes = keras_runner.metadata["feature_map_sizes"]
    assert onnx_runner.metadata["feature_map_sizes"] == sizes
    assert onnx_runner.num_classes == keras_runner.num_classes == 3

    probs_k, loc_k = keras_runner.predict(images)
    probs_o, loc_o = onnx_runner.predict(images)
    np.testing.assert_allclose(probs_o, probs_k, atol=1e-3)
    np.testing.assert_allclose(loc_o, loc_k, rtol=1e-4, atol=1e-3)

    height, width = 96, 128
    anchors = generate_anchors(experiment.anchors, ssd_feature_map_sizes(model), (height, width))
    expected = detections_from_outputs(
        probs_k,
        loc_k,
        anchors,
        experiment.anchors.variances,
        NmsConfig(
            experiment.nms.confidence_threshold,
            experiment.nms.clustering_iou_threshold,
            experiment.nms.top_k,
        ),
        [(height, width)] * len(images),
    )
    got = onnx_runner.detect(images)
    scale = np.array([width, height, width, height])
    total = 0
    for b, det in enumerate(expected):
        n = int(got["num_detections"][b, 0])
        assert n == len(det)
        total += n
        boxes = np.clip(got["detection_boxes"][b, :n] * scale, 0, scale)
        np.testing.assert_allclose(boxes, det.boxes, rtol=1e-3, atol=1e-3 * width)
        np.testing.assert_array_equal(got["detection_classes"][b, :n] - 1, det.classes)
    assert total > 0


@pytest.mark.slow
def test_evaluate_through_the_onnx_runner_matches_keras(exported, monkeypatch):
    from tlt_core import inference_runner
    from tlt_core.stages.evaluate import evaluate

    monkeypatch.setitem(
        inference_runner.RUNNERS, ".etlt", "tlt_core.export.runners:OnnxRunner.from_file"
    )
    root, spec = exported["root"], exported["spec"]
    keras_ap = evaluate(root / "model.tlt", spec, KEY)
    onnx_ap = evaluate(exported["out"], spec, KEY)
    assert abs(onnx_ap.mAP - keras_ap.mAP) <= 0.005
    for name, ap in keras_ap.per_class_ap.items():
        assert abs(onnx_ap.per_class_ap[name] - ap) <= 0.005


def test_cache_covers_the_network_and_calibrate_stage_agrees(exported, sample_dataset):
    from tlt_core.export.cache import check_cache_matches, read_cache
    from tlt_core.export.calibrate import activation_names, load_tensorfile
    from tlt_core.export.onnx import read_model
    from tlt_core.stages.calibrate import calibrate, network_part

    out_dir = exported["out"].parent
    cache = read_cache(out_dir / "cal.bin")
    network = network_part(read_model(exported["out"], KEY))
    names = activation_names(network)
    assert list(cache.scales) == names and names[0] == "Input"
    assert not any(":" in name for name in names)  # one way to split a cache line
    check_cache_matches(cache, names, out_dir / "cal.bin")
    assert all(s > 0 for s in cache.scales.values())
    tensors = load_tensorfile(out_dir / "cal.npz")
    assert [t.shape for t in tensors] == [(4, 3, 96, 128)] * 2
    # The same images through the stand-alone stage (from the tensorfile) give the same cache.
    again = calibrate(
        exported["out"],
        exported["spec"],
        None,
        out_dir.parent / "again.bin",
        batches=2,
        batch_size=4,
        key=KEY,
        data_file=out_dir / "cal.npz",
    )
    assert again.tensor_count == len(names) and again.num_images == 8
    assert read_cache(again.cache_path).scales == cache.scales


def test_efficient_nms_variant_attaches_to_the_same_network(exported):
    from tlt_core.export.onnx import read_model
    from tlt_core.networks.ssd.onnx_postprocess import (
        NMS_EFFICIENT_TRT,
        OUTPUT_NAMES,
        PostprocessConfig,
        attach_postprocess,
    )
    from tlt_core.stages.calibrate import network_part

    network = network_part(read_model(exported["out"], KEY))
    cfg = PostprocessConfig(
        np.zeros((1160, 4), np.float32) + 0.1, (0.1, 0.1, 0.2, 0.2), 4, 0.05, 0.6, 200
    )
    merged = attach_postprocess(network, cfg, NMS_EFFICIENT_TRT)
    assert [o.name for o in merged.graph.output] == list(OUTPUT_NAMES)
    assert any(n.op_type == "EfficientNMS_TRT" for n in merged.graph.node)


def test_qat_spec_with_a_float_model_needs_force_ptq(exported, tmp_path):
    from tlt_core.stages.export import export

    spec = tmp_path / "qat.txt"
    spec.write_text(
        Path(exported["spec"]).read_text().replace("enable_qat: false", "enable_qat: true")
    )
    # A float model exported for a QAT spec: no ranges to peel (tlt_core.models.qat).
    with pytest.raises(ExportError, match=r"training_config\.enable_qat: .*not trained with QAT"):
        export(
            exported["root"] / "model.tlt",
            KEY,
            spec,
            tmp_path / "m.etlt",
            data_type="int8",
            cal_image_dir=tmp_path,
        )
    assert not (tmp_path / "m.etlt").exists()


def test_cli_errors_are_one_line(exported, capsys, tmp_path):
    from tlt_core.cli import main

    code = main(
        [
            "ssd",
            "export",
            "-m",
            str(exported["root"] / "model.tlt"),
            "-k",
            "bad-key",
            "-e",
            str(exported["spec"]),
            "-o",
            str(tmp_path / "x.etlt"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == ModelFileError.exit_code and "\n" not in err and "wrong key" in err
    code = main(
        [
            "ssd",
            "export",
            "-m",
            str(exported["root"] / "model.tlt"),
            "-k",
            KEY,
            "-e",
            str(exported["spec"]),
            "-o",
            str(tmp_path / "x.etlt"),
            "--data_type",
            "int8",
            "--cal_image_dir",
            str(tmp_path / "none"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 3 and "none: no such file or directory" in err and "\n" not in err


@pytest.mark.slow
def test_int8_simulation_runs_with_the_exported_cache(exported):
    from tlt_core.export.cache import read_cache
    from tlt_core.export.int8_sim import simulated_map
    from tlt_core.export.onnx import read_model
    from tlt_core.networks import get_network

    # On this untrained model both mAPs are near 0; the trained figure is in the report.
    result = simulated_map(
        read_model(exported["out"], KEY),
        read_cache(exported["out"].parent / "cal.bin").scales,
        get_network("ssd"),
        exported["experiment"],
    )
    assert {"fp32", "int8"} <= set(result) <= {"fp32", "int8", "int8_vs_fp32"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
