"""DetectNet_v2 spec: 002's sample parses unchanged; bad specs give one located line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_spec_proto import _descriptor_declarations, _normalise, _proto_declarations

from tlt_core.errors import SpecError
from tlt_core.networks.detectnet_v2 import detectnet_v2_pb2
from tlt_core.networks.detectnet_v2.spec import (
    fold_sources,
    load_experiment,
    parse_experiment,
)

SAMPLE = Path("/work/shared/specs/detectnet_v2_kitti_train.txt")
PROTO = Path(__file__).resolve().parents[1] / "tlt_core/networks/detectnet_v2/detectnet_v2.proto"


@pytest.fixture(scope="module")
def sample_text() -> str:
    if SAMPLE.exists():
        return SAMPLE.read_text()
    pytest.skip("shared spec samples not present")


def test_generated_module_matches_proto():
    declared = _normalise(_proto_declarations(PROTO.read_text()))
    assert _descriptor_declarations(detectnet_v2_pb2) == declared
    source = PROTO.with_name("detectnet_v2_pb2.py").read_text()
    assert "_runtime_version" not in source


def test_sample_spec_parses_unchanged(sample_text, tmp_path):
    path = tmp_path / "spec.txt"
    path.write_text(sample_text)
    exp = load_experiment(path)
    assert exp.class_names == ("car", "cyclist", "pedestrian")
    assert exp.backbone.arch == "resnet" and exp.backbone.nlayers == 18
    assert exp.input_shape == (544, 960, 3)
    assert exp.grid_shape == (34, 60)
    assert (exp.bbox_scale, exp.bbox_offset) == (35.0, 0.5)
    assert exp.raster[0].cov_radius_x == 0.4 and exp.raster[1].cov_radius_x == 1.0
    assert exp.deadzone_radius == 0.67
    cyclist = exp.cost.classes[1]
    assert cyclist.initial_weights == (1.0, 10.0) and cyclist.target_weights == (1.0, 1.0)
    assert exp.cost.enable_autoweighting and exp.cost.max_objective_weight == 0.9999
    assert exp.clustering[0].dbscan_eps == 0.13 and exp.clustering[2].dbscan_eps == 0.15
    assert exp.clustering[0].minimum_bounding_box_height == 20
    assert exp.eval.iou_thresholds == (0.7, 0.5, 0.5)
    assert sorted(exp.eval.buckets) == ["easy", "hard", "mdrt"]
    assert exp.eval.buckets["mdrt"].maximum_truncation == 0.3
    assert exp.eval.first_validation_epoch == 40
    assert exp.class_mapping["heavy_truck"] == "car"
    assert exp.validation_fold == 0
    assert exp.training.regularizer == "L1" and exp.training.num_epochs == 80
    assert exp.augmentation.hflip_probability == 0.5 and exp.augmentation.hue_rotation_max == 25


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, path="spec.txt")
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        (
            "cov_radius_x: 0.4",
            "cov_radius_xx: 0.4",
            "cov_radius_xx",
            "did you mean one of cov_radius_x",
        ),
        ("dbscan_eps: 0.13", "dbscan_eps: 1.5", "dbscan_eps", "must be in (0, 1]"),
        ("num_layers: 18", "num_layers: 12", "num_layers", "supports num_layers"),
        ("type: L1", "type: L3", "type", "expected NO_REG or L1 or L2"),
        (
            'name: "bbox"\n      initial_weight: 10.0\n      weight_target: 10.0',
            'name: "box"\n      initial_weight: 10.0\n      weight_target: 10.0',
            "name",
            "unknown objective",
        ),
        (
            "output_image_width: 960",
            "output_image_width: 950",
            "output_image_width",
            "multiple of 16",
        ),
        (
            'key: "cyclist"\n    value: 0.5',
            'key: "bicycle"\n    value: 0.5',
            "minimum_detection_ground_truth_overlap",
            "not a target class",
        ),
    ],
)
def test_corrupted_spec_gives_located_error(sample_text, old, new, field, words):
    assert old in sample_text
    text = sample_text.replace(old, new, 1)
    error = _error(text)
    message = str(error)
    first_new_line = new.splitlines()[0]
    line = _line_of(text, first_new_line.split(":")[0] + ":" + first_new_line.split(":")[1])
    assert message.startswith("spec.txt:"), message
    assert field in message and words in message, message
    assert "\n" not in message
    reported = int(re.match(r"spec\.txt:(\d+):", message).group(1))
    # The error names the edited line (or, for a map key, its key line next to it).
    assert abs(reported - line) <= 1, (reported, line, message)


def test_missing_class_entry_is_reported(sample_text):
    text = re.sub(
        r'  target_class_config \{\n    key: "pedestrian"\n    value: \{\n      cov_center_x.*?\n  \}\n',
        "",
        sample_text,
        count=1,
        flags=re.S,
    )
    assert text != sample_text
    message = str(_error(text))
    assert "bbox_rasterizer_config.target_class_config" in message
    assert "pedestrian" in message


def test_validation_fold_splits_dataset_convert_shards(sample_text, tmp_path):
    for fold in range(2):
        for shard in range(2):
            (tmp_path / f"kitti_trainval-fold-{fold:03d}-of-002-shard-{shard:05d}-of-00002").touch()
    text = sample_text.replace(
        "/workspace/tlt-experiments/tfrecords/kitti_trainval/kitti_trainval*",
        str(tmp_path / "kitti_trainval*"),
    )
    exp = parse_experiment(text, path="spec.txt")
    train = [Path(s.tfrecords_path).name for s in fold_sources(exp, training=True)]
    val = [Path(s.tfrecords_path).name for s in fold_sources(exp, training=False)]
    assert len(train) == 2 and all("-fold-001-" in n for n in train)
    assert len(val) == 2 and all("-fold-000-" in n for n in val)
    bad = parse_experiment(text.replace("validation_fold: 0", "validation_fold: 5"))
    with pytest.raises(SpecError, match="2 folds"):
        fold_sources(bad, training=True)


@settings(max_examples=25, deadline=None)
@given(eps=st.floats(-2, 2, allow_nan=False), threshold=st.floats(-1, 2, allow_nan=False))
def test_clustering_values_accepted_exactly_in_range(sample_text, eps, threshold):
    text = sample_text.replace("dbscan_eps: 0.13", f"dbscan_eps: {eps!r}", 1)
    text = text.replace("coverage_threshold: 0.005", f"coverage_threshold: {threshold!r}", 1)
    import numpy as np

    eps32, thr32 = float(np.float32(eps)), float(np.float32(threshold))
    valid = 0 < eps32 <= 1 and 0 <= thr32 < 1
    if valid:
        exp = parse_experiment(text, path="spec.txt")
        assert exp.clustering[0].dbscan_eps == pytest.approx(eps32)
    else:
        error = _error(text)
        assert re.match(r"spec\.txt:\d+: postprocessing_config", str(error))


def test_validation_from_first_validation_epoch(sample_text, tmp_path):
    from tlt_core.networks import get_network
    from tlt_core.train.loop import _validation_due

    network = get_network("detectnet_v2")
    settings = network.training_settings(parse_experiment(sample_text, path="spec.txt"))
    assert (settings.first_validation_epoch, settings.validation_period) == (40, 10)
    due = [epoch for epoch in range(1, 81) if _validation_due(settings, epoch)]
    assert due == [40, 50, 60, 70, 80]
