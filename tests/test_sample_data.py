import json
from collections import Counter

import numpy as np
import pytest

from tlt_core.cli import build_parser, run_command
from tlt_core.data.kitti import list_frames, read_label_file
from tlt_core.data.sample import CLASSES, _covered_fractions, _Placed, generate_sample_data
from tlt_core.data.tfrecord import image_size_from_header
from tlt_core.errors import UsageError
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.networks.ssd.spec import load_experiment, parse_experiment
from tlt_core.spec import load_convert_spec
from tlt_core.stages.sample_data import generate


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_same_bytes(tmp_path):
    a = generate_sample_data(tmp_path / "a", num_train=3, num_val=1, seed=5)
    b = generate_sample_data(tmp_path / "b", num_train=3, num_val=1, seed=5)
    fa, fb = _files(a.root), _files(b.root)
    assert fa.keys() == fb.keys()
    data = [k for k in fa if k.parts[0] != "specs"]  # spec files name their own directory
    assert len(data) == 2 * 4 + 2 and all(fa[k] == fb[k] for k in data)
    c = generate_sample_data(tmp_path / "c", num_train=3, num_val=1, seed=6)
    assert _files(c.root)[data[0]] != fa[data[0]] or _files(c.root)[data[1]] != fa[data[1]]


def test_labels_are_valid_and_varied(sample_dataset):
    classes, occlusion, sizes = Counter(), Counter(), set()
    truncated = 0
    for image_dir, label_dir in (
        (sample_dataset.train_image_dir, sample_dataset.train_label_dir),
        (sample_dataset.val_image_dir, sample_dataset.val_label_dir),
    ):
        for frame in list_frames(image_dir, label_dir, ".png"):
            width, height = image_size_from_header(frame.image_path.read_bytes())
            sizes.add((width, height))
            assert 320 <= width <= 480
            for obj in read_label_file(frame.label_path):  # strict: every line is valid
                assert 0 <= obj.x1 < obj.x2 <= width and 0 <= obj.y1 < obj.y2 <= height
                classes[obj.class_name] += 1
                if not obj.is_dontcare:
                    occlusion[obj.occlusion] += 1
                    truncated += obj.truncation > 0
    assert set(classes) == {*CLASSES, "DontCare"}
    assert set(occlusion) <= {0, 1, 2} and occlusion[0] and occlusion[1] + occlusion[2]
    assert truncated > 0 and len(sizes) > 5
    counts = sample_dataset.class_counts
    assert Counter(counts["training"]) + Counter(counts["val"]) == classes


def test_sequences_cover_training_frames_once(sample_dataset):
    sequences = json.loads(sample_dataset.sequence_file.read_text())
    frames = [f for seq in sequences.values() for f in seq]
    ids = [p.stem for p in sorted(sample_dataset.train_image_dir.iterdir())]
    assert sorted(frames) == ids and len(sequences) >= 3


def test_spec_files_load(sample_dataset):
    experiment = load_experiment(sample_dataset.experiment_spec)
    assert list(experiment.class_names) == ["car", "cyclist", "pedestrian"]
    assert experiment.input_shape[:2] == (160, 160)
    for path, mode in (
        (sample_dataset.convert_spec_random, "random"),
        (sample_dataset.convert_spec_sequence, "sequence"),
    ):
        spec = load_convert_spec(path)
        assert spec.partition_mode == mode and spec.image_dir == sample_dataset.train_image_dir
    text = sample_experiment_spec(sample_dataset.root, num_epochs=2, output_width=128)
    assert parse_experiment(text).input_shape[1] == 128
    with pytest.raises(TypeError, match="unknown sample spec setting"):
        sample_experiment_spec(sample_dataset.root, epochs=2)


def test_occlusion_is_measured_on_pixels():
    def placed(x1, x2):
        mask = np.zeros((10, 20), np.uint8)
        mask[2:8, x1:x2] = 255
        return _Placed("car", None, {}, mask, 0.0)

    # Drawn in order: the first is covered by the second over half its pixels.
    assert _covered_fractions([placed(0, 10), placed(5, 15), placed(18, 20)]) == [0.5, 0.0, 0.0]


def test_stage_replaces_only_sample_datasets(tmp_path):
    out = tmp_path / "data"
    first = generate(out, num_train=2, num_val=1)
    assert first.root == out.absolute() and len(list(first.train_image_dir.iterdir())) == 2
    again = generate(out, num_train=3, num_val=0)  # an earlier sample dataset is replaced
    assert len(list(again.train_image_dir.iterdir())) == 3
    assert not list(again.val_image_dir.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty and not a sample dataset"):
        generate(other, num_train=1, num_val=0)
    with pytest.raises(UsageError, match="width 50 is below"):
        generate(tmp_path / "small", num_train=1, num_val=0, width=50, height=200)


def test_cli(tmp_path):
    args = build_parser().parse_args(
        ["sample-data", "-o", str(tmp_path / "d"), "--num-train", "2", "--num-val", "1",
         "--seed", "3", "--width", "200", "--height", "120"]
    )  # fmt: skip
    assert run_command(args.func, args) == 0
    for frame in list_frames(
        tmp_path / "d" / "training" / "image_2", tmp_path / "d" / "training" / "label_2"
    ):
        assert image_size_from_header(frame.image_path.read_bytes()) == (200, 120)
