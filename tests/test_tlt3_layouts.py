"""TLT 3.0's SSD output layout (issue 13): ``export --output_layout tlt_nms`` (NMS [B,1,K,7] +
NMS_1), its DeepStream config, ``tlt-converter -o NMS`` on either export, both runners reading
both layouts, engines evaluated from their NMS outputs, and the converter's and export's
flags of 000."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tlt_core.errors import EngineBuildError, ModelFileError, UsageError
from tlt_core.networks import get_network

KEY = "layout-key"
SSD = get_network("ssd")


def _tensorrt_missing() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.fixture(scope="module")
def exports(sample_dataset, tmp_path_factory):
    """A tiny SSD exported by the CLI in the tlt_nms layout (with DeepStream files), and the
    same model in the default batched_nms layout."""
    from export_helpers import tiny_ssd

    from tlt_core.cli import main
    from tlt_core.export import onnx as onnx_export

    root = tmp_path_factory.mktemp("layouts")
    spec, experiment, model = tiny_ssd(sample_dataset.root, root, seed=11, key=KEY)
    out = root / "nms" / "model.etlt"
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
            "--output_layout",
            "tlt_nms",
            "--gen_ds_config",
            "--gpu_index",
            "0",
            "--verbose",
        ]
    )
    assert code == 0
    batched = onnx_export.export_model(model, SSD, experiment, variant="onnx").full
    batched_path = root / "batched" / "model.etlt"
    batched_path.parent.mkdir()
    onnx_export.write_model(batched_path, batched, KEY)
    return {
        "root": root,
        "spec": spec,
        "experiment": experiment,
        "tlt_nms": out,
        "batched": batched_path,
    }


def _val_images(experiment, count: int = 8):
    dataset = SSD.input_pipeline(experiment, training=False, batch_size=count, shuffle=False)
    return next(dataset.as_numpy_iterator())["image"]


def _detections(runner, experiment, images):
    sizes = [tuple(experiment.input_shape[:2])] * len(images)
    return SSD.final_postprocessor(experiment, runner)(runner.detect(images), sizes)


def test_tlt_nms_export_outputs(exports):
    from tlt_core.export.runners import OnnxRunner

    runner = OnnxRunner.from_file(exports["tlt_nms"], KEY)
    assert runner.outputs == ("NMS", "NMS_1")
    assert runner.metadata["output_layout"] == "tlt_nms"
    assert runner.metadata["outputs"] == ["NMS", "NMS_1"]
    images = _val_images(exports["experiment"])
    out = runner.detect(images)
    nms, keep = out["NMS"], out["NMS_1"]
    k = min(200, 3 * runner.metadata["num_anchors"])
    assert nms.shape == (len(images), 1, k, 7) and nms.dtype == np.float32
    assert keep.shape == (len(images), 1, 1, 1) and keep.dtype == np.int32
    assert keep.sum() > 0, "the fixture model should detect something"
    for b in range(len(images)):
        rows, count = nms[b, 0], int(keep[b, 0, 0, 0])
        assert np.all(rows[:, 0] == b)  # image id
        assert np.all(rows[:count, 1] >= 1) and np.all(rows[count:, 1] == -1)  # label
        assert np.all(rows[count:, 2:] == 0)  # padding: confidence and box zero
        assert np.all(np.diff(rows[:count, 2]) <= 0)  # by confidence, descending


def test_both_layouts_give_the_same_detections(exports):
    from tlt_core.export.runners import OnnxRunner

    experiment = exports["experiment"]
    images = _val_images(experiment)
    batched = OnnxRunner.from_file(exports["batched"], KEY)
    nms = OnnxRunner.from_file(exports["tlt_nms"], KEY)
    assert batched.outputs == (
        "num_detections",
        "detection_boxes",
        "detection_scores",
        "detection_classes",
    )
    first = _detections(batched, experiment, images)
    second = _detections(nms, experiment, images)
    assert sum(len(d) for d in first) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.classes, b.classes)
        np.testing.assert_array_equal(a.scores, b.scores)
    # ... and the same as the shared decode + NMS on the raw outputs (float32 graph vs
    # float64 reference: boxes to a pixel fraction).
    reference = SSD.postprocessor(experiment, batched)(
        batched.predict(images), [tuple(experiment.input_shape[:2])] * len(images)
    )
    for ref, got in zip(reference, second, strict=True):
        assert len(ref) == len(got)
        np.testing.assert_array_equal(ref.classes, got.classes)
        np.testing.assert_allclose(ref.boxes, got.boxes, atol=1e-2)
        np.testing.assert_allclose(ref.scores, got.scores, atol=1e-5)


def test_ds_config_for_the_layout_exported(exports):
    folder = exports["tlt_nms"].parent
    config = (folder / "nvinfer_config.txt").read_text()
    lines = config.splitlines()
    assert "output-blob-names=NMS" in lines
    assert "parse-bbox-func-name=NvDsInferParseCustomNMSTLT" in lines
    assert "custom-lib-path=<path to libnvds_infercustomparser_tlt.so>" in lines
    assert "onnx-file=model.onnx" in lines
    # The plain ONNX beside it (what nvinfer reads) has 000's outputs.
    import onnx

    plain = onnx.load(str(folder / "model.onnx"))
    assert [o.name for o in plain.graph.output] == ["NMS", "NMS_1"]
    # The default layout keeps the BatchedNMS parser.
    from tlt_core.networks.ssd.deepstream import deepstream_files

    default = deepstream_files(
        exports["experiment"], model_file="m.onnx", model_class_names=None, data_type="fp32"
    )["nvinfer_config.txt"].splitlines()
    assert "parse-bbox-func-name=NvDsInferParseCustomBatchedNMSTLT" in default
    assert (
        "output-blob-names=num_detections;detection_boxes;detection_scores;detection_classes"
        in default
    )


def test_converter_o_nms_on_a_batched_export_gives_the_tlt_nms_graph(exports):
    import onnx

    from tlt_core.export.onnx import get_metadata
    from tlt_core.export.runners import OnnxRunner
    from tlt_core.export.tensorrt import read_model_bytes
    from tlt_core.stages.convert import engine_onnx

    data = read_model_bytes(exports["batched"], KEY)
    for names in (("NMS",), ("NMS", "NMS_1")):
        relaid = onnx.load_from_string(engine_onnx(data, names))
        assert [o.name for o in relaid.graph.output] == ["NMS", "NMS_1"]
        assert get_metadata(relaid)["output_layout"] == "tlt_nms"
    images = _val_images(exports["experiment"], 4)
    from_converter = OnnxRunner(relaid).detect(images)
    from_export = OnnxRunner.from_file(exports["tlt_nms"], KEY).detect(images)
    for name in ("NMS", "NMS_1"):
        np.testing.assert_array_equal(from_converter[name], from_export[name])
    # The export's own outputs need no rewrite; names of neither layout are a usage error.
    batched_names = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
    assert engine_onnx(data, batched_names) == data
    with pytest.raises(UsageError, match=r"-o: output 'BOGUS' is not a model output"):
        engine_onnx(data, ("BOGUS",))


def test_converter_cli_as_000_prints_it_reaches_tensorrt(exports, capsys):
    """000's command line (-o NMS, -v, -t fp16, -i nchw, -m 1): everything up to the
    TensorRT call runs; here TensorRT is missing and says so in one line."""
    from tlt_core.cli.converter import main

    engine = exports["root"] / "trt.fp16.engine"
    argv = ["-k", KEY, "-d", "3,96,128", "-o", "NMS", "-e", str(engine), "-t", "fp16"]
    argv += ["-i", "nchw", "-m", "1", "-v", str(exports["batched"])]
    code = main(argv)
    err = capsys.readouterr().err
    if _tensorrt_missing():
        assert code != 0
        assert "tlt-converter: error: tensorrt Python package not installed" in err
        assert not engine.exists()
    code = main([*argv[:5], "BOGUS", *argv[6:]])
    assert code == 2
    assert "-o: output 'BOGUS' is not a model output" in capsys.readouterr().err
    code = main([*argv[:3], "3,384,1248", *argv[4:]])  # 000's dims, not this model's
    assert code == 2
    assert "-d: input dims 3,384,1248 (nchw) do not match the model input Input" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("suffix", [".trt", ".engine", ".plan"])
def test_engine_suffixes_open_the_tensorrt_runner(tmp_path, suffix):
    from tlt_core.inference_runner import open_runner

    engine = tmp_path / f"ssd{suffix}"
    engine.write_bytes(b"not checked before tensorrt loads it")
    with pytest.raises(ModelFileError, match=r"\.json beside the engine"):
        open_runner(engine, None, SSD)
    (tmp_path / f"ssd{suffix}.json").write_text(
        json.dumps({"model_metadata": {"num_classes": 3, "outputs": ["NMS", "NMS_1"]}})
    )
    if not _tensorrt_missing():
        pytest.skip("tensorrt installed: the runner would load the engine")
    with pytest.raises(EngineBuildError, match="tensorrt Python package not installed"):
        open_runner(engine, None, SSD)


def test_evaluate_cli_names_the_runner_and_engines_fail_in_one_line(exports, tmp_path, capsys):
    from tlt_core.cli import main

    code = main(
        ["ssd", "evaluate", "-m", str(exports["tlt_nms"]), "-k", KEY, "-e", str(exports["spec"])]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("runner: ONNX Runtime (CPUExecutionProvider)")
    engine = tmp_path / "ssd.trt"
    engine.write_bytes(b"engine")
    Path(f"{engine}.json").write_text(json.dumps({"model_metadata": {"num_classes": 3}}))
    code = main(["ssd", "evaluate", "-m", str(engine), "-e", str(exports["spec"])])
    if _tensorrt_missing():
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert code != 0 and len(errors) == 1
        assert errors[0].startswith("tlt: error: tensorrt Python package not installed")


def test_evaluation_from_final_outputs_matches_raw(exports):
    """The path an engine with only NMS outputs takes (final_outputs_only: detect() and the
    network's final_postprocessor), run by the ONNX runner on both layouts."""
    from tlt_core.evaluate.collect import collect_predictions, score
    from tlt_core.export.runners import OnnxRunner

    experiment = exports["experiment"]
    raw_runner = OnnxRunner.from_file(exports["batched"], KEY)
    raw = score(SSD, experiment, collect_predictions(SSD, experiment, raw_runner))
    for layout in ("batched", "tlt_nms"):
        runner = OnnxRunner.from_file(exports[layout], KEY)
        runner.final_outputs_only = True  # read as an engine from tlt-converter is
        final = score(SSD, experiment, collect_predictions(SSD, experiment, runner))
        assert final.num_images == raw.num_images
        assert final.value == pytest.approx(raw.value, abs=1e-3)
