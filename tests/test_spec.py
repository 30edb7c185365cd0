"""Spec loading: the documented samples parse; every broken copy is one located line."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.cli import run_command
from tlt_core.errors import SpecError
from tlt_core.networks.ssd.spec import (
    AnchorSpec,
    DataSource,
    experiment_to_text,
    load_experiment,
    parse_experiment,
)
from tlt_core.spec import load_convert_spec, parse_convert_spec

SAMPLES = Path(__file__).resolve().parents[1] / "specs" / "samples"
SSD_SAMPLE = SAMPLES / "ssd_kitti_train.txt"
RANDOM_CONVERT = SAMPLES / "kitti_dataset_convert.txt"
SEQUENCE_CONVERT = SAMPLES / "kitti_sequence_dataset_convert.txt"
SSD_TEXT = SSD_SAMPLE.read_text()


def test_samples_are_the_shared_ones_unchanged():
    shared = Path("/work/shared/specs")
    if not shared.is_dir():
        pytest.skip("shared spec directory not present on this machine")
    for name in (
        "ssd_kitti_train.txt",
        "kitti_dataset_convert.txt",
        "kitti_sequence_dataset_convert.txt",
    ):
        assert (SAMPLES / name).read_bytes() == (shared / name).read_bytes()


def test_ssd_sample_resolves():
    exp = load_experiment(SSD_SAMPLE)
    assert exp.path == str(SSD_SAMPLE)
    assert exp.random_seed == 42
    assert exp.class_names == ("car", "cyclist", "pedestrian")
    assert exp.class_mapping == {
        "car": "car",
        "pedestrian": "pedestrian",
        "cyclist": "cyclist",
        "van": "car",
        "person_sitting": "pedestrian",
    }
    assert exp.num_classes == 3
    assert exp.input_shape == (300, 300, 3)
    assert exp.image_mean_bgr == (103.9, 116.8, 123.7)
    anchors = exp.anchors
    assert anchors.scales == (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    assert anchors.aspect_ratios[0] == (1.0, 2.0, 0.5)
    assert anchors.aspect_ratios[1] == (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    assert anchors.n_layers == 6
    assert anchors.variances == (0.1, 0.1, 0.2, 0.2)
    assert anchors.two_boxes_for_ar1 and not anchors.clip_boxes
    assert anchors.steps is None and anchors.offsets is None
    assert exp.backbone.arch == "resnet" and exp.backbone.nlayers == 18
    assert exp.backbone.freeze_blocks == (0,) and not exp.backbone.freeze_bn
    t = exp.training
    assert (t.batch_size_per_gpu, t.num_epochs, t.enable_qat) == (16, 80, False)
    assert (t.min_learning_rate, t.max_learning_rate, t.soft_start, t.annealing) == (
        5e-5,
        2e-2,
        0.15,
        0.8,
    )
    assert (t.regularizer, t.regularizer_weight) == ("L1", 3e-5)
    assert (t.max_queue_size, t.n_workers, t.checkpoint_interval) == (16, 0, 1)
    assert exp.eval.average_precision_mode == "SAMPLE"
    assert (exp.eval.validation_period_during_training, exp.eval.batch_size) == (10, 16)
    assert exp.eval.matching_iou_threshold == 0.5
    assert (exp.nms.confidence_threshold, exp.nms.clustering_iou_threshold) == (0.01, 0.6)
    assert (exp.nms.top_k, exp.nms.infer_nms_score_bits) == (200, 0)
    aug = exp.augmentation
    # Absent in the sample: the defaults documented in 000 apply.
    assert (aug.random_crop_min_scale, aug.random_crop_max_scale) == (0.3, 1.0)
    assert (aug.random_crop_min_ar, aug.random_crop_max_ar) == (0.5, 2.0)
    assert (aug.zoom_out_min_scale, aug.zoom_out_max_scale) == (1.0, 4.0)
    assert (aug.brightness, aug.contrast, aug.saturation, aug.hue) == (32, 0.5, 0.5, 18)
    assert aug.random_flip == 0.5
    assert aug.random_crop_enabled and aug.zoom_out_enabled and aug.color_jitter_enabled
    assert exp.data_sources == (DataSource("/path/to/train/labels", "/path/to/train/images"),)
    assert exp.validation_data_sources[0].image_directory_path == "/path/to/val/images"
    assert exp.data_sources[0].kind == "kitti"
    assert exp.include_difficult_in_training


def test_convert_samples_resolve():
    random = load_convert_spec(RANDOM_CONVERT)
    root = Path("/workspace/tlt-experiments/data/training")
    assert random.root_directory == root
    assert (random.image_dir, random.label_dir) == (root / "image_2", root / "label_2")
    assert (random.partition_mode, random.num_partitions, random.val_split) == ("random", 2, 14)
    assert (random.num_shards, random.image_extension) == (10, ".png")
    assert random.sequence_to_frames_file is None and random.point_clouds_dir is None
    sequence = load_convert_spec(SEQUENCE_CONVERT)
    assert (sequence.partition_mode, sequence.num_partitions) == ("sequence", 5)
    assert sequence.val_split is None
    assert sequence.point_clouds_dir == root / "velodyne"
    assert sequence.calibrations_dir == root / "calib"
    assert sequence.sequence_to_frames_file == Path(
        "/workspace/tlt-experiments/data/kitti_seq_to_frames.json"
    )
    assert sequence.image_directory_path == root


# (old text, new text, marker on the expected line of the corrupted text, message part)
SSD_CORRUPTIONS = [
    ("nlayers: 18", "nlayers: eighteen", "nlayers", "ssd_config.nlayers: Couldn't parse integer"),
    (
        "  scales:",
        "  scale:",
        "scale:",
        "ssd_config.scale: unknown field; did you mean one of scales, ",
    ),
    (
        "nms_config {",
        "nms_conifg {",
        "nms_conifg",
        "nms_conifg: unknown field; did you mean one of nms_config, ",
    ),
    (
        '"[0.1, 0.1, 0.2, 0.2]"',
        '"[0.1, 0.1; 0.2, 0.2]"',
        "variances",
        "ssd_config.variances: bad list at column 10: expected ',' or ']'",
    ),
    ("1.0/3.0]", "1.0/0]", "aspect_ratios", "ssd_config.aspect_ratios: bad list at column"),
    (
        "matching_iou_threshold: 0.5",
        "matching_iou_threshold: 1.5",
        "matching_iou_threshold",
        "eval_config.matching_iou_threshold: must be in (0, 1], got 1.5",
    ),
    (
        ", 1.05]",
        "]",
        "scales",
        "ssd_config.scales: expected 7 values (predictor layers + 1), got 6",
    ),
    (
        "type: L1",
        "type: L3",
        "type: L3",
        "training_config.regularizer.type: unknown value L3; expected NO_REG or L1 or L2",
    ),
    (
        "nlayers: 18",
        "nlayers: 20",
        "nlayers",
        "resnet supports nlayers 10, 18, 34, 50, 101, got 20",
    ),
    (
        "freeze_blocks: 0",
        "freeze_blocks: 0\n  freeze_blocks: 7",
        "freeze_blocks: 7",
        "ssd_config.freeze_blocks[1]: block 7 is not a block of resnet; valid: 0, 1, 2, 3",
    ),
    (
        "key: 'g'",
        "key: 'x'",
        "key: 'x'",
        "augmentation_config.image_mean['x']: unknown key 'x'; with output_channel 3",
    ),
    (
        "    key: 'r'\n    value: 123.7\n",
        '    key: "b"\n    value: 123.7\n',
        'key: "b"',
        "augmentation_config.image_mean: key 'b' given twice (first at line",
    ),
    (
        "confidence_threshold: 0.01",
        "confidence_threshold: nan",
        "confidence_threshold",
        "nms_config.confidence_threshold: must be a finite number, got nan",
    ),
    ("top_k: 200", "top_k: 0", "top_k", "nms_config.top_k: must be positive, got 0"),
    (
        "soft_start: 0.15",
        "soft_start: 0.9",
        "annealing: 0.8",
        "soft_start_annealing_schedule.annealing: must not come before soft_start (0.9), got 0.8",
    ),
    (
        '  scales: "[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]"',
        '  scales: "[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]"\n  min_scale: 0.1',
        "scales:",
        "ssd_config.scales: give either scales or min_scale/max_scale, not both",
    ),
    (
        '    label_directory_path: "/path/to/val/labels"\n',
        "",
        "validation_data_sources",
        "dataset_config.validation_data_sources[0]: needs label_directory_path and",
    ),
    (
        '      value: "pedestrian"\n  }\n  target_class_mapping {\n      key: "cyclist"',
        '      value: "pedestrian"\n  }\n  target_class_mapping {\n      key: "Car"',
        'key: "Car"',
        "class 'car' (case-insensitive) is mapped to both",
    ),
    (
        'key: "van"\n      value: "car"',
        'key: "van"\n      value: "Background"',
        'value: "Background"',
        "'background' is reserved for model class 0",
    ),
    ("output_width: 300", "output_width: -300", "output_width", "Value out of range: -300"),
    ('arch: "resnet"', "arch: resnet", "arch:", "ssd_config.arch: Expected string but found"),
]


def _corrupt(old: str, new: str) -> str:
    assert SSD_TEXT.count(old) >= 1, old
    return SSD_TEXT.replace(old, new, 1)


def _line_of(text: str, marker: str) -> int:
    """The line holding ``marker``, which must occur once."""
    found = [n for n, line in enumerate(text.split("\n"), start=1) if marker in line]
    assert len(found) == 1, (marker, found)
    return found[0]


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    SSD_CORRUPTIONS,
    ids=[case[3][:40] for case in SSD_CORRUPTIONS],
)
def test_corrupted_ssd_spec_gives_one_located_line(tmp_path, old, new, marker, message):
    text = _corrupt(old, new)
    expected_line = _line_of(text, marker)
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_experiment(spec)
    error = str(caught.value)
    assert "\n" not in error
    assert error.startswith(f"{spec}:{expected_line}: "), error
    assert message in error, error
    assert caught.value.line == expected_line


def test_missing_section_names_it_without_a_line():
    start = SSD_TEXT.index("augmentation_config {")
    end = SSD_TEXT.index("dataset_config {")
    with pytest.raises(SpecError) as caught:
        parse_experiment(SSD_TEXT[:start] + SSD_TEXT[end:], path="s.txt")
    assert str(caught.value) == "s.txt: augmentation_config: required section is missing"


def test_missing_field_points_at_its_block():
    text = SSD_TEXT.replace("  batch_size_per_gpu: 16\n", "")
    with pytest.raises(SpecError) as caught:
        parse_experiment(text, path="s.txt")
    assert str(caught.value) == (
        f"s.txt:{_line_of(text, 'training_config')}: training_config.batch_size_per_gpu: "
        "required field is missing"
    )


def test_unterminated_block_names_the_open_block():
    with pytest.raises(SpecError) as caught:
        parse_experiment(SSD_TEXT.rstrip().rstrip("}"), path="s.txt")
    assert str(caught.value) == (
        f"s.txt:{_line_of(SSD_TEXT, 'dataset_config')}: dataset_config: block not closed: "
        "a '}' is missing before the end of the text"
    )


def test_missing_brace_in_the_middle_suggests_it():
    text = SSD_TEXT.replace("  }\n}\neval_config", "}\neval_config")
    assert text != SSD_TEXT
    with pytest.raises(SpecError) as caught:
        parse_experiment(text, path="s.txt")
    assert str(caught.value) == (
        f"s.txt:{_line_of(text, 'eval_config')}: training_config.eval_config: unknown field; "
        "eval_config belongs to an enclosing block: is a '}' missing before it?"
    )


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_experiment(tmp_path / "absent.txt")


def test_cli_exit_code_and_one_line(tmp_path, capsys):
    spec = tmp_path / "bad.txt"
    spec.write_text(_corrupt(", 1.05]", "]"))
    assert run_command(lambda args: load_experiment(spec), None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"tlt: error: {spec}:4: ssd_config.scales: expected 7 values")


def test_cli_exit_code_in_a_fresh_process(tmp_path):
    spec = tmp_path / "bad.txt"
    spec.write_text(_corrupt("  scales:", "  scale:"))
    code = (
        "import sys; from tlt_core.cli import run_command; from tlt_core.networks.ssd.spec import "
        f"load_experiment; sys.exit(run_command(lambda a: load_experiment({str(spec)!r}), None))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"tlt: error: {spec}:4: ssd_config.scale: unknown field; did you mean one of scales, "
        "min_scale, max_scale?"
    ]


# -- derived values --------------------------------------------------------------------------
def _with(old: str, new: str) -> str:
    return _corrupt(old, new)


def test_scales_from_min_max_are_evenly_spaced():
    text = _with(
        '  scales: "[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]"',
        "  min_scale: 0.1\n  max_scale: 0.7",
    )
    scales = parse_experiment(text).anchors.scales
    assert len(scales) == 7
    assert scales[0] == pytest.approx(0.1) and scales[-1] == pytest.approx(0.7)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(scales))


def test_min_scale_alone_is_an_error():
    text = _with('  scales: "[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]"', "  min_scale: 0.1")
    with pytest.raises(SpecError, match=r"ssd_config.max_scale: required with min_scale"):
        parse_experiment(text)


def test_global_aspect_ratios_apply_to_every_layer():
    old = SSD_TEXT.split("\n")[2]
    text = _with(old, '  aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"')
    anchors = parse_experiment(text).anchors
    assert anchors.aspect_ratios == ((1.0, 2.0, 0.5, 3.0, 1 / 3),) * 6


def test_both_aspect_ratio_forms_are_an_error():
    text = _with("  two_boxes_for_ar1", '  aspect_ratios_global: "[1.0]"\n  two_boxes_for_ar1')
    with pytest.raises(SpecError, match=r":5: ssd_config.aspect_ratios_global: give either"):
        parse_experiment(text)


def test_steps_and_offsets_become_pairs():
    text = _with(
        "  clip_boxes: false",
        '  clip_boxes: true\n  steps: "[8, 16, 32, 64, (100, 90), 300]"\n'
        '  offsets: "[0.5, 0.5, 0.5, 0.5, [0.25, 0.75], 0.5]"',
    )
    anchors = parse_experiment(text).anchors
    assert anchors.clip_boxes
    assert anchors.steps == ((8, 8), (16, 16), (32, 32), (64, 64), (100, 90), (300, 300))
    assert anchors.offsets[4] == (0.25, 0.75)
    bad = _with(
        "  clip_boxes: false", '  clip_boxes: false\n  offsets: "[0.5, 0.5, 0.5, 0.5, 1.0, 0.5]"'
    )
    with pytest.raises(SpecError, match=r":7: ssd_config.offsets: element 4 must be in \[0, 1\)"):
        parse_experiment(bad)


def test_anchor_spec_dict_round_trip():
    anchors = load_experiment(SSD_SAMPLE).anchors
    assert AnchorSpec.from_dict(anchors.to_dict()) == anchors
    with_steps = AnchorSpec(
        anchors.scales,
        anchors.aspect_ratios,
        False,
        anchors.variances,
        True,
        ((8.0, 8.0),) * 6,
        ((0.5, 0.5),) * 6,
    )
    assert AnchorSpec.from_dict(with_steps.to_dict()) == with_steps


@pytest.mark.parametrize(
    ("arch", "nlayers", "ok"),
    [
        ("vgg", 16, True),
        ("darknet", 53, True),
        ("resnet", 101, True),
        ("vgg", 18, False),
        ("mobilenet_v2", None, True),
        ("googlenet", 18, False),
        ("efficientnet", None, False),
    ],
)
def test_arch_nlayers_combinations(arch, nlayers, ok):
    text = (
        SSD_TEXT.replace('arch: "resnet"', f'arch: "{arch}"')
        .replace("  nlayers: 18\n", f"  nlayers: {nlayers}\n" if nlayers else "")
        .replace("freeze_blocks: 0", "freeze_blocks: 1")  # a block every family has
    )
    if ok:
        backbone = parse_experiment(text).backbone
        assert (backbone.arch, backbone.nlayers) == (arch, nlayers)
    else:
        with pytest.raises(SpecError, match=r":(8|9): ssd_config\.(arch|nlayers): "):
            parse_experiment(text)


def test_vgg_block_zero_is_not_valid():
    text = SSD_TEXT.replace('arch: "resnet"', 'arch: "vgg"').replace("nlayers: 18", "nlayers: 16")
    with pytest.raises(SpecError, match=r":11: ssd_config.freeze_blocks\[0\]: block 0 is not"):
        parse_experiment(text)


def test_grayscale_needs_l_mean():
    text = _with("output_channel: 3", "output_channel: 1")
    with pytest.raises(
        SpecError, match=r"image_mean\['b'\]: unknown key 'b'; with output_channel 1"
    ):
        parse_experiment(text)
    start, end = text.index("  image_mean {"), text.index("}\ndataset_config")
    gray = text[:start] + "  image_mean {\n    key: 'l'\n    value: 117.0\n  }\n" + text[end:]
    exp = parse_experiment(gray)
    assert exp.input_shape == (300, 300, 1) and exp.image_mean_bgr == (117.0,) * 3


def test_default_image_mean_is_imagenet():
    start, end = SSD_TEXT.index("  image_mean {"), SSD_TEXT.index("}\ndataset_config")
    exp = parse_experiment(SSD_TEXT[:start] + SSD_TEXT[end:])
    assert exp.image_mean_bgr == (103.939, 116.779, 123.68)


def test_relative_paths_are_relative_to_the_spec(tmp_path):
    text = SSD_TEXT.replace('"/path/to/train/labels"', '"data/train/labels"').replace(
        "/path/to/train/images", "../images"
    )
    spec = tmp_path / "exp" / "spec.txt"
    spec.parent.mkdir()
    spec.write_text(text)
    exp = load_experiment(spec)
    assert exp.data_sources[0].label_directory_path == str(spec.parent / "data/train/labels")
    assert exp.data_sources[0].image_directory_path == str(spec.parent / "../images")
    assert 'label_directory_path: "data/train/labels"' in exp.to_text()
    absolute = exp.to_text(absolute_paths=True)
    assert f'label_directory_path: "{spec.parent}/data/train/labels"' in absolute


# -- rewriting ---------------------------------------------------------------------------------
def test_to_text_round_trips():
    exp = load_experiment(SSD_SAMPLE)
    again = parse_experiment(exp.to_text())
    assert again.proto == exp.proto
    assert experiment_to_text(again) == exp.to_text()
    assert again.anchors == exp.anchors and again.augmentation == exp.augmentation


def test_replace_data_sources(tmp_path):
    exp = load_experiment(SSD_SAMPLE)
    moved = exp.replace_data_sources(
        train=[DataSource(tfrecords_path="/data/tfrecords/train-fold-001-of-002*")],
        val=[{"label_directory_path": "/v/labels", "image_directory_path": "/v/images"}],
    )
    assert moved.data_sources == (
        DataSource(tfrecords_path="/data/tfrecords/train-fold-001-of-002*"),
    )
    assert moved.data_sources[0].kind == "tfrecords"
    assert moved.validation_data_sources == (DataSource("/v/labels", "/v/images"),)
    assert exp.data_sources[0].label_directory_path == "/path/to/train/labels"  # unchanged
    saved = moved.save(tmp_path / "spec.txt")
    assert load_experiment(saved).data_sources == moved.data_sources
    with pytest.raises(SpecError, match=r"\(rewritten\): dataset_config.data_sources: at least"):
        exp.replace_data_sources(train=[])
    with pytest.raises(SpecError, match=r"\(rewritten\): not a data source"):
        exp.replace_data_sources(train=[{"images": "/x"}])


def test_with_overrides():
    exp = load_experiment(SSD_SAMPLE)
    small = exp.with_overrides(
        {
            "training_config.num_epochs": 2,
            "augmentation_config.output_width": 128,
            "augmentation_config.output_height": 96,
            "augmentation_config.image_mean": {"r": 1.0, "g": 2.0, "b": 3.0},
            "ssd_config.scales": None,
            "ssd_config.min_scale": 0.2,
            "ssd_config.max_scale": 0.9,
            "eval_config.average_precision_mode": "INTEGRATE",
            "nms_config.top_k": None,
            "ssd_config.freeze_blocks": [0, 1],
        }
    )
    assert small.training.num_epochs == 2
    assert small.input_shape == (96, 128, 3)
    assert small.image_mean_bgr == (3.0, 2.0, 1.0)
    assert small.anchors.scales[0] == pytest.approx(0.2)
    assert small.eval.average_precision_mode == "INTEGRATE"
    assert small.nms.top_k == 200  # cleared: the default applies
    assert small.backbone.freeze_blocks == (0, 1)
    assert small.path == exp.path
    listed = exp.with_overrides({"ssd_config.variances": [0.1, 0.1, 0.3, 0.3]})
    assert listed.anchors.variances == (0.1, 0.1, 0.3, 0.3)
    with pytest.raises(SpecError, match=r"\(rewritten\): training_config.num_epoch: unknown field"):
        exp.with_overrides({"training_config.num_epoch": 1})
    with pytest.raises(SpecError, match=r"training_config.num_epochs: cannot set"):
        exp.with_overrides({"training_config.num_epochs": "many"})
    with pytest.raises(SpecError, match=r"\(rewritten\): nms_config.top_k: must be positive"):
        exp.with_overrides({"nms_config.top_k": 0})


# -- dataset-convert spec ----------------------------------------------------------------------
RANDOM_TEXT = RANDOM_CONVERT.read_text()


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "num_partitions: 2",
            "num_partitions: 3",
            "num_partitions",
            "kitti_config.num_partitions: random partitioning makes 2 partitions",
        ),
        (
            "val_split: 14",
            "val_split: 140",
            "val_split",
            "must be a percentage in [0, 100], got 140",
        ),
        (
            'partition_mode: "random"',
            'partition_mode: "folds"',
            "partition_mode",
            'kitti_config.partition_mode: expected "random" or "sequence", got \'folds\'',
        ),
        (
            "num_shards: 10",
            "num_shards: 0",
            "num_shards",
            "kitti_config.num_shards: must be at least 1",
        ),
        ("val_split: 14", "val_splt: 14", "val_splt", "unknown field; did you mean val_split?"),
        (
            'image_dir_name: "image_2"',
            'image_dir_name = "image_2"',
            "image_dir_name",
            'kitti_config.image_dir_name: Expected ":"',
        ),
        (
            'image_extension: ".png"',
            'image_extension: "png"',
            "image_extension",
            "expected one of .png, .jpg, .jpeg, got 'png'",
        ),
        ("  val_split: 14\n", "", "kitti_config", "kitti_config.val_split: required with"),
    ],
)
def test_corrupted_convert_spec(old, new, marker, message):
    text = RANDOM_TEXT.replace(old, new, 1)
    assert text != RANDOM_TEXT
    with pytest.raises(SpecError) as caught:
        parse_convert_spec(text, path="c.txt")
    assert str(caught.value).startswith(f"c.txt:{_line_of(text, marker)}: "), str(caught.value)
    assert message in str(caught.value)


def test_sequence_mode_rules():
    text = SEQUENCE_CONVERT.read_text()
    no_file = "\n".join(line for line in text.split("\n") if "kitti_sequence_to" not in line)
    with pytest.raises(
        SpecError,
        match=r"c.txt:1: kitti_config.kitti_sequence_to_frames_file: "
        "required with partition_mode",
    ):
        parse_convert_spec(no_file, path="c.txt")
    with_split = text.replace("num_shards: 10", "num_shards: 10\n  val_split: 10")
    with pytest.raises(SpecError, match=r":12: kitti_config.val_split: applies to"):
        parse_convert_spec(with_split, path="c.txt")
    one_fold = parse_convert_spec(text.replace("num_partitions: 5", "num_partitions: 1"))
    assert one_fold.num_partitions == 1


def test_convert_spec_paths_must_be_local():
    text = RANDOM_TEXT.replace('image_directory_path: "/workspace', 'image_directory_path: "s3://b')
    with pytest.raises(SpecError, match=r"c.txt:11: image_directory_path: must be a local path"):
        parse_convert_spec(text, path="c.txt")


def test_convert_relative_root(tmp_path):
    spec = tmp_path / "convert.txt"
    spec.write_text(RANDOM_TEXT.replace("/workspace/tlt-experiments/data/training", "kitti"))
    loaded = load_convert_spec(spec)
    assert loaded.image_dir == tmp_path / "kitti" / "image_2"


# -- fuzzing: whatever the text, a SpecError or an Experiment -----------------------------------
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_spec_raises_only_spec_error(data):
    start = data.draw(st.integers(0, len(SSD_TEXT)))
    length = data.draw(st.integers(0, 12))
    insert = data.draw(st.text(alphabet="{}[]:'\"#,;<>/ \n0123456789.-abcxyz_", max_size=6))
    text = SSD_TEXT[:start] + insert + SSD_TEXT[start + length :]
    try:
        parse_experiment(text, path="f.txt")
    except SpecError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("f.txt")
