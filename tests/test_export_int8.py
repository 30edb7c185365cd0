"""INT8 export of a tiny SSD, TensorRT 10's way and 000's: `--qdq` (PTQ and QAT) and the
QAT ranges peeled into a calibration cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlt_core.errors import ExportError
from tlt_core.networks import get_network

KEY = "int8-key"
SSD = get_network("ssd")


@pytest.fixture(scope="module")
def models(sample_dataset, tmp_path_factory):
    """A float SSD and its QAT twin (ranges from a few real batches), saved as .tlt."""
    from export_helpers import tiny_ssd

    from tlt_core.modelfile import save_model
    from tlt_core.models import qat
    from tlt_core.train.loop import model_metadata

    root = tmp_path_factory.mktemp("int8")
    spec, experiment, model = tiny_ssd(sample_dataset.root, root, seed=7, key=KEY, name="float.tlt")
    quantised = qat.to_qat(model)
    batches = SSD.input_pipeline(experiment, training=False, batch_size=8, shuffle=False)
    for batch in batches.take(2).as_numpy_iterator():
        quantised(batch["image"], training=True)
    save_model(root / "qat.tlt", quantised, KEY, model_metadata(SSD, experiment, quantised))
    qat_spec = root / "qat_spec.txt"
    qat_spec.write_text(spec.read_text().replace("enable_qat: false", "enable_qat: true"))
    return {
        "root": root,
        "spec": spec,
        "qat_spec": qat_spec,
        "experiment": experiment,
        "ranges": qat.activation_ranges(quantised),
        "images": sample_dataset.train_image_dir,
    }


def _export(models, name: str, *extra: str, model: str = "float.tlt", spec: str = "spec"):
    from tlt_core.cli import main

    out = models["root"] / name
    code = main(
        [
            "ssd", "export", "-m", str(models["root"] / model), "-k", KEY,
            "-e", str(models[spec]), "-o", str(out), "--data_type", "int8",
            "--batches", "2", "--batch_size", "4", *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return out


def _qdq_nodes(model):
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_ptq_qdq_export_is_tensorrt_ready_and_evaluates_in_onnxruntime(models, capsys):
    import onnx

    from tlt_core.cli import main
    from tlt_core.export.onnx import get_metadata
    from tlt_core.export.qdq import check_tensorrt_qdq, quantized_inputs
    from tlt_core.export.runners import OnnxRunner
    from tlt_core.stages.calibrate import network_part

    out = _export(models, "ptq.qdq.onnx", "--qdq", "--cal_image_dir", str(models["images"]))
    graph = onnx.load(out)
    assert check_tensorrt_qdq(graph) == []
    assert get_metadata(graph)["int8"] == {"mode": "qdq", "scales": "ort-entropy"}
    assert not (out.parent / "cal.bin").exists()  # explicit quantization: no cache
    # Only the network part is quantised: the post-processing (decode, NMS) stays float.
    network = network_part(graph)
    assert len(_qdq_nodes(network)) == len(_qdq_nodes(graph)) > 0
    float_network = network_part(
        onnx.load(_export(models, "float.onnx", "--cal_image_dir", str(models["images"])))
    )
    # One Q/DQ pair per input TensorRT quantises (tf2onnx numbers its transposes afresh on
    # each conversion, so the two graphs are compared by count and by what the pairs feed).
    quantize = [n for n in _qdq_nodes(graph) if n.op_type == "QuantizeLinear"]
    assert len(quantize) == len(quantized_inputs(float_network))
    readers = {
        name for n in graph.graph.node for name in n.input if n.op_type != "DequantizeLinear"
    }
    for node in quantize:
        dq_out = next(n.output[0] for n in graph.graph.node if node.output[0] in n.input)
        consumers = [n.op_type for n in graph.graph.node if dq_out in n.input]
        assert set(consumers) <= {"Conv", "Add", "MatMul", "Gemm"} and dq_out in readers
    # Real INT8 in ONNX Runtime: close to the float graph, not equal to it.
    batch = next(
        SSD.input_pipeline(
            models["experiment"], training=False, batch_size=4, shuffle=False
        ).as_numpy_iterator()
    )["image"]
    int8 = OnnxRunner(graph).predict(batch)
    fp32 = OnnxRunner(onnx.load(out.parent / "float.onnx")).predict(batch)
    for q, f in zip(int8, fp32, strict=True):
        assert not np.array_equal(q, f)
        assert np.abs(q - f).mean() < 0.1 * np.abs(f).mean() + 1e-3
    # `tlt ssd evaluate -m model.qdq.onnx` measures it through the ONNX runner.
    code = main(["ssd", "evaluate", "-m", str(out), "-e", str(models["spec"]), "-k", KEY])
    assert code == 0 and "mAP" in capsys.readouterr().out


def test_qat_cache_is_peeled_from_the_learned_ranges(models):
    import onnx

    from tlt_core.export.cache import check_cache_matches, read_cache
    from tlt_core.export.calibrate import activation_names
    from tlt_core.export.qat_scales import int8_tensors, layer_of
    from tlt_core.export.qdq import QUANTIZED_OPS, quantized_nodes
    from tlt_core.stages.calibrate import network_part

    out = _export(models, "qat/model.onnx", model="qat.tlt", spec="qat_spec")
    graph = onnx.load(out)
    assert not _qdq_nodes(graph)  # the float graph: TensorRT takes the scales from the cache
    network = network_part(graph)
    cache = read_cache(out.parent / "cal.bin")
    check_cache_matches(cache, activation_names(network), out.parent / "cal.bin")
    # Every tensor TensorRT runs in INT8 has a scale...
    missing = set(int8_tensors(network)) - set(cache.scales)
    assert not missing, sorted(missing)[:5]
    # ... and a quantised input's scale is its learned range / 127.
    ranges = models["ranges"]
    checked = 0
    for node in quantized_nodes(network):
        layer = layer_of(node.name, set(ranges), "ssd_resnet10")
        indices = [0] if QUANTIZED_OPS[node.op_type] is not None else range(len(node.input))
        for k in indices:
            expected = max(
                ranges[layer_of(n.name, set(ranges), "ssd_resnet10")][j]
                for n in quantized_nodes(network)
                for j, name in enumerate(n.input)
                if name == node.input[k]
            )
            assert cache.scales[node.input[k]] == pytest.approx(expected / 127, rel=1e-6)
            checked += 1
        assert layer is not None
    assert checked >= 30


def test_qat_qdq_export_uses_the_ranges_per_layer(models):
    import onnx
    from onnx import numpy_helper

    from tlt_core.export.qat_scales import layer_of
    from tlt_core.export.qdq import check_tensorrt_qdq

    out = _export(models, "qat.qdq.onnx", "--qdq", model="qat.tlt", spec="qat_spec")
    graph = onnx.load(out)
    assert check_tensorrt_qdq(graph) == []
    values = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    ranges = models["ranges"]
    checked = 0
    for q in (n for n in graph.graph.node if n.op_type == "QuantizeLinear"):
        dq = next(n for n in graph.graph.node if q.output[0] in n.input)
        for reader in (n for n in graph.graph.node if dq.output[0] in n.input):
            layer = layer_of(reader.name, set(ranges), "ssd_resnet10")
            index = list(reader.input).index(dq.output[0])
            assert float(values[q.input[1]]) == pytest.approx(ranges[layer][index] / 127, rel=1e-6)
            checked += 1
    assert checked >= 30  # every conv and both inputs of every residual add


def test_force_ptq_ignores_the_ranges_and_a_float_model_is_refused_for_qat(models, tmp_path):
    from tlt_core.export.cache import read_cache
    from tlt_core.stages.export import export

    out = _export(
        models, "forced/model.onnx", "--force_ptq", "--cal_image_dir", str(models["images"]),
        model="qat.tlt", spec="qat_spec",
    )  # fmt: skip
    peeled = read_cache(models["root"] / "qat" / "cal.bin").scales
    calibrated = read_cache(out.parent / "cal.bin").scales
    shared = set(peeled) & set(calibrated)
    assert shared and any(peeled[n] != pytest.approx(calibrated[n]) for n in shared)
    with pytest.raises(ExportError, match=r"training_config\.enable_qat: .*not trained with QAT"):
        export(
            models["root"] / "float.tlt", KEY, models["qat_spec"], tmp_path / "m.onnx",
            data_type="int8", cal_image_dir=models["images"],
        )  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ExportError, match="--qdq writes an INT8 graph"):
        export(models["root"] / "float.tlt", KEY, models["spec"], tmp_path / "m.onnx", qdq=True)
    assert not Path(tmp_path / "m.onnx").exists()


def test_pipeline_calibration_writes_both_forms_to_kfp_artifact_paths(models, tmp_path):
    """The calibrate component's call: KFP artifact paths have no suffix, and the Q/DQ
    model must land at its artifact path as a file the engine build can read (a link left
    there by the atomic write once made every qdq target's build fail)."""
    import shutil

    import onnx

    from tlt_core import pipeline_support as support
    from tlt_core.export.qdq import check_tensorrt_qdq

    float_onnx = _export(models, "plain/model.onnx", "--cal_image_dir", str(models["images"]))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copy(float_onnx, artifacts / "onnx_model")
    count = support.run_calibrate(
        str(artifacts / "onnx_model"),
        models["spec"].read_text(),
        str(models["images"]),
        str(artifacts / "calibration_cache"),
        batches=1,
        batch_size=4,
        qdq_out=str(artifacts / "qdq_model"),
    )
    qdq = artifacts / "qdq_model"
    assert count > 0 and (artifacts / "calibration_cache").is_file()
    assert qdq.is_file() and not qdq.is_symlink()
    assert check_tensorrt_qdq(onnx.load(qdq)) == []
    # The engine task reads it under a .onnx name; without TensorRT the build is reported
    # skipped with TensorRT's absence as the reason, not a missing model.
    publish = tmp_path / "publish"
    report = support.run_engine_builds(
        str(artifacts / "onnx_model"),
        str(artifacts / "calibration_cache"),
        str(tmp_path / "engines"),
        target="x86-t4",
        precisions=["int8"],
        max_batch_size=4,
        publish_uri=str(publish),
        model_version="v1",
        require_tensorrt=False,
        qdq_path=str(qdq),
        int8_mode="qdq",
    )
    reason = report["int8"].get("reason", "")
    assert report["int8"]["status"] in {"built", "skipped"}
    assert "no such model file" not in reason, reason


def test_pipeline_calibration_of_a_qat_model_peels_its_ranges(models, tmp_path, monkeypatch):
    """train_deploy hands the calibrate step the retrained .tlt: a QAT model's scales are
    the learned ranges (as `export --data_type int8` peels them), not a fresh calibration;
    no calibration image is read."""
    import shutil

    import onnx

    from tlt_core import pipeline_support as support
    from tlt_core.export.cache import read_cache
    from tlt_core.export.onnx import get_metadata
    from tlt_core.export.qdq import check_tensorrt_qdq

    monkeypatch.setenv(support.MODEL_KEY_ENV, KEY)
    exported = _export(models, "qat-pipe/model.onnx", model="qat.tlt", spec="qat_spec")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copy(exported, artifacts / "onnx_model")
    shutil.copy(models["root"] / "qat.tlt", artifacts / "model")
    count = support.run_calibrate(
        str(artifacts / "onnx_model"),
        models["qat_spec"].read_text(),
        str(tmp_path / "no-images-here"),  # not read: the ranges give the scales
        str(artifacts / "calibration_cache"),
        batches=1,
        batch_size=4,
        qdq_out=str(artifacts / "qdq_model"),
        model_path=str(artifacts / "model"),
    )
    peeled = read_cache(artifacts / "calibration_cache").scales
    assert count == len(peeled) > 0
    assert peeled == read_cache(exported.parent / "cal.bin").scales
    qdq = onnx.load(artifacts / "qdq_model")
    assert check_tensorrt_qdq(qdq) == []
    assert get_metadata(qdq)["int8"] == {"mode": "qdq", "scales": "qat"}
    # A float model is calibrated on the images as before (and needs them).
    shutil.copy(models["root"] / "float.tlt", artifacts / "model")
    with pytest.raises(Exception, match="no-images-here"):
        support.run_calibrate(
            str(artifacts / "onnx_model"),
            models["spec"].read_text(),
            str(tmp_path / "no-images-here"),
            str(artifacts / "calibration_cache"),
            batches=1,
            batch_size=4,
            model_path=str(artifacts / "model"),
        )


def test_a_qat_model_evaluates_as_trained(models):
    """`tlt ssd evaluate -m qat.tlt` (the pipeline's evaluate of a QAT-trained model), in a
    fresh process as a task runs it: the QAT layers load and the fake-quantised model is
    measured."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "tlt_core.cli", "ssd", "evaluate"]
    spec = str(models["qat_spec"])
    done = subprocess.run(
        [*command, "-m", str(models["root"] / "qat.tlt"), "-e", spec, "-k", KEY],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mAP" in done.stdout
