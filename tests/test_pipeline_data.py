"""train_deploy's data step and gate, per network: the network's `prepare_dataset` /
`dataset_sources` hooks (KITTI -> TFRecord folds for the detectors, class folders checked
and passed through for classification), the calibration image choice for class folders,
and the quality gate on the network's primary metric."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from tlt_core import pipeline_support as support
from tlt_core.data.classmap import read_classmap
from tlt_core.data.sample import sample_convert_spec
from tlt_core.errors import DataError, SpecError, UsageError
from tlt_core.networks import get_network
from tlt_core.networks.base import MetricSpec
from tlt_core.stages.calibrate import calibration_images


def _image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((12, 16, 3), value, np.uint8))


def _class_folders(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    for split in ("train", "val"):
        for c, name in enumerate(classes):
            for i in range(per_class):
                _image(root / split / name / f"{split}_{name}_{i}.png", 40 * c + i)
    return root


def test_classification_data_step_checks_and_passes_the_class_folders(tmp_path):
    data = _class_folders(tmp_path / "data")
    out = tmp_path / "artifact"
    counts = support.run_dataset_convert(str(data), "", str(out), "classification")
    assert counts == {
        "classes": ["cat", "dog"],
        "train": {"cat": 3, "dog": 3},
        "val": {"cat": 3, "dog": 3},
    }
    assert read_classmap(out / "classmap.json") == ("cat", "dog")
    assert sorted(p.name for p in (out / "val" / "dog").iterdir()) == [
        f"val_dog_{i}.png" for i in range(3)
    ]
    train, val = support.dataset_sources(str(out), 0, "classification")
    assert (train, val) == ([str(out / "train")], [str(out / "val")])
    # The classification spec reads them: what every later task of the DAG does.
    net = get_network("classification")
    spec = net.parse_spec(net.sample_spec(data)).replace_data_sources(train=train, val=val)
    assert spec.class_names == ("cat", "dog")
    assert net.dataset_size(spec, training=False) == 6
    with pytest.raises(UsageError, match="validation fold 1"):
        support.dataset_sources(str(out), 1, "classification")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: __import__("shutil").rmtree(root / "val"), "no val/ folder"),
        (lambda root: _image(root / "val" / "bird" / "b.png"), "bird not among"),
        (
            lambda root: (root / "train" / "cat" / "train_cat_1.png").write_bytes(b"\x89PNG\r\n"),
            "train_cat_1.png",
        ),
    ],
)
def test_classification_data_step_names_what_is_wrong(tmp_path, damage, message):
    data = _class_folders(tmp_path / "data")
    damage(data)
    with pytest.raises(DataError, match=message):
        support.run_dataset_convert(str(data), "", str(tmp_path / "artifact"), "classification")


@pytest.mark.parametrize("network", ["ssd", "detectnet_v2"])
def test_detector_data_step_converts_kitti_to_folds(sample_dataset, tmp_path, network):
    out = tmp_path / "artifact"
    counts = support.run_dataset_convert(
        str(sample_dataset.train_image_dir.parent),
        sample_convert_spec(sample_dataset.root),
        str(out),
        network,
    )
    assert len(counts["folds"]) == len(counts["frames_per_fold"]) == 2
    assert sum(counts["frames_per_fold"]) == 24  # the fixture's training frames
    train, val = support.dataset_sources(str(out), 0, network)
    assert val == [{"tfrecords_path": str(out / "tfrecords-fold-000-of-002-shard-*")}]
    assert train == [{"tfrecords_path": str(out / "tfrecords-fold-001-of-002-shard-*")}]
    with pytest.raises(DataError, match=r"validation fold 2 not in 0\.\.1"):
        support.dataset_sources(str(out), 2, network)
    with pytest.raises(SpecError, match="convert_spec: empty"):
        support.run_dataset_convert(str(sample_dataset.root), "", str(out), network)


def test_detector_sources_name_a_missing_conversion(tmp_path):
    with pytest.raises(DataError, match="no TFRecord folds"):
        support.dataset_sources(str(tmp_path), 0, "ssd")


def test_calibration_takes_class_folders_in_turn(tmp_path):
    _class_folders(tmp_path, classes=("a", "b", "c"), per_class=2)
    chosen = calibration_images(tmp_path / "val", 4)
    assert [p.parent.name for p in chosen] == ["a", "b", "c", "a"]
    flat = tmp_path / "flat"
    for i in range(3):
        _image(flat / f"{i}.png")
    _image(flat / "sub" / "ignored.png")
    assert [p.name for p in calibration_images(flat, 3)] == ["0.png", "1.png", "2.png"]


@pytest.mark.parametrize(
    ("network", "metric"), [("ssd", "mAP"), ("classification", "top1_accuracy")]
)
def test_gate_reads_the_networks_metric(network, metric):
    assert support.gate_verdict(0.9, 0.88, 0.5, 0.05, network=network) == "pass"
    low = support.gate_verdict(0.9, 0.4, 0.5, 1.0, network=network)
    assert low == f"fail: pruned {metric} 0.4000 < minimum 0.5000"
    lost = support.gate_verdict(0.9, 0.8, 0.5, 0.05, network=network)
    assert lost.startswith("fail: pruning lost 0.1000") and metric in lost
    report = support.gate_report_markdown(0.9, 0.8, 0.5, 0.05, network=network)
    escaped = metric.replace("_", "\\_")  # Markdown
    assert f"{escaped} of the pruned, retrained model" in report and "at least 0.5000" in report


def test_gate_of_a_metric_where_lower_is_better(monkeypatch):
    error = MetricSpec("error_rate", "top-1 error", higher_is_better=False)
    monkeypatch.setattr(support, "primary_metric", lambda network="ssd": error)
    assert support.gate_verdict(0.10, 0.12, 0.2, 0.05) == "pass"
    assert support.gate_verdict(0.10, 0.25, 0.3, 0.05).startswith("fail: pruning lost 0.1500")
    assert support.gate_verdict(0.10, 0.25, 0.2, 1.0) == (
        "fail: pruned error_rate 0.2500 > maximum 0.2000"
    )
    report = support.gate_report_markdown(0.10, 0.12, 0.2, 0.05)
    assert "at most 0.2000" in report and "**fail**" not in report


def test_calibration_extracts_raw_outputs_that_feed_appended_postprocessing():
    """DetectNet_v2's export appends transposes to its raw outputs, which then have no
    value_info: the pipeline's calibrate must still cut the graph there."""
    import onnx
    from onnx import TensorProto, helper

    from tlt_core.export.onnx import INPUT_NAME, set_metadata
    from tlt_core.stages.calibrate import network_part

    graph = helper.make_graph(
        [
            helper.make_node("Relu", [INPUT_NAME], ["output_cov"]),
            helper.make_node(
                "Transpose", ["output_cov"], ["output_cov/Sigmoid"], perm=[0, 3, 1, 2]
            ),
        ],
        "g",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 4, 6, 3])],
        [helper.make_tensor_value_info("output_cov/Sigmoid", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    set_metadata(model, {"network_outputs": ["output_cov"]})
    assert not model.graph.value_info
    part = network_part(model)
    assert [o.name for o in part.graph.output] == ["output_cov"]
    assert [n.op_type for n in part.graph.node] == ["Relu"]
    onnx.checker.check_model(part)
