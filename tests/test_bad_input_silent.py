"""Issue 16, class 1: bad data is never accepted silently.

A byte-order mark in a label file, an image that does not decode, an unknown class in
``evaluate-labels --classes`` and scores outside [0, 1] each end in an error or a located
warning; images the input pipeline skips are counted in the logs and status.json.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tlt_core.data.convert import ConvertOptions, convert_kitti
from tlt_core.data.kitti import list_frames, read_labels
from tlt_core.errors import DataError, UsageError
from tlt_core.stages.evaluate_labels import evaluate_labels

BOM = "\ufeff"
CAR = "car 0 0 0 10 10 50 50 0 0 0 0 0 0 0"
PERSON = "person 0 0 0 60 10 90 80 0 0 0 0 0 0 0"
DONTCARE = "DontCare -1 -1 -10 1 1 5 5 -1 -1 -1 -1000 -1000 -1000 -10"


def test_bom_is_not_part_of_the_first_class(tmp_path):
    path = tmp_path / "000001.txt"
    path.write_text(BOM + CAR + "\n", encoding="utf-8")
    assert [o.class_name for o in read_labels(path).objects] == ["car"]


def test_bom_before_dontcare_is_not_a_truncation_error(tmp_path):
    path = tmp_path / "000001.txt"
    path.write_text(BOM + DONTCARE + "\n" + CAR + "\n", encoding="utf-8")
    assert [o.class_name for o in read_labels(path).objects] == ["DontCare", "car"]


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes((CAR + "\n").encode() + b"\xff\xfe car\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not UTF-8"):
        read_labels(path)


def _label_dirs(tmp_path: Path, gt_prefix: str = "") -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    for i in range(3):
        (gt / f"{i:06d}.txt").write_text(gt_prefix + CAR + "\n" + PERSON + "\n", encoding="utf-8")
        (pred / f"{i:06d}.txt").write_text(CAR + " 0.9\n" + PERSON + " 0.8\n")
    return gt, pred


def test_bom_ground_truth_scores_perfect_predictions_as_perfect(tmp_path):
    gt, pred = _label_dirs(tmp_path, gt_prefix=BOM)
    outcome = evaluate_labels(gt, pred)
    assert sorted(outcome.result.per_class_ap) == ["car", "person"]
    assert outcome.result.mAP == pytest.approx(1.0)


def test_unknown_class_in_classes_is_an_error(tmp_path):
    gt, pred = _label_dirs(tmp_path)
    with pytest.raises(UsageError, match=r"--classes: bogus in no ground-truth or prediction"):
        evaluate_labels(gt, pred, classes=["bogus", "car"])


def test_unknown_class_cli_exit_code(tmp_path, capsys):
    from tlt_core.cli import main

    gt, pred = _label_dirs(tmp_path)
    code = main(["evaluate-labels", "-g", str(gt), "-p", str(pred), "--classes", "bogus,car"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == UsageError.exit_code and len(err) == 1 and "bogus" in err[0]


def test_score_outside_unit_interval_is_a_located_warning(tmp_path, caplog):
    gt, pred = _label_dirs(tmp_path)
    (pred / "000001.txt").write_text(CAR + " 1.5\n" + PERSON + " -0.25\n")
    with caplog.at_level(logging.WARNING):
        evaluate_labels(gt, pred)
    assert "000001.txt:1: score: 1.5 outside [0, 1]" in caplog.text
    assert "000001.txt:2: score: -0.25 outside [0, 1]" in caplog.text


def _kitti(sample_dataset, root: Path, n: int = 4) -> ConvertOptions:
    images, labels = root / "image_2", root / "label_2"
    images.mkdir(parents=True)
    labels.mkdir()
    for frame in list_frames(sample_dataset.train_image_dir, sample_dataset.train_label_dir)[:n]:
        shutil.copy(frame.image_path, images)
        shutil.copy(frame.label_path, labels)
    return ConvertOptions(image_dir=images, label_dir=labels, num_shards=1, val_split=50)


@pytest.mark.parametrize("damage", ["truncated", "header_only"])
def test_dataset_convert_decodes_every_image(sample_dataset, tmp_path, damage):
    options = _kitti(sample_dataset, tmp_path / "kitti")
    image = sorted(options.image_dir.iterdir())[1]
    data = image.read_bytes()
    # truncated: cut in the pixel data, IEND kept; header_only: signature + IHDR + IEND.
    cut = len(data) // 2 if damage == "truncated" else 33
    image.write_bytes(data[:cut] + data[-12:])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=rf"{image.name}: corrupt or truncated PNG"):
        convert_kitti(options, out / "t")
    assert not out.exists() or list(out.iterdir()) == []


def _corrupt_tfrecord(sample_dataset, path: Path) -> int:
    """A TFRecord of the first 8 training frames, the second one's image truncated."""
    from tlt_core.data.kitti import clip_objects
    from tlt_core.data.tfrecord import RecordWriter, encode_example, image_format_and_size

    frames = list_frames(sample_dataset.train_image_dir, sample_dataset.train_label_dir)[:8]
    with RecordWriter(path) as writer:
        for i, frame in enumerate(frames):
            data = frame.image_path.read_bytes()
            fmt, width, height = image_format_and_size(data)
            objects, _ = clip_objects(read_labels(frame.label_path).objects, width, height)
            if i == 1:
                data = data[: len(data) // 2] + data[-12:]
            writer.write(encode_example(frame.frame_id, data, fmt, width, height, objects))
    return len(frames)


def test_training_and_validation_report_skipped_images(sample_dataset, tmp_path, caplog):
    from train_helpers import write_tiny_spec

    from tlt_core.networks.ssd.spec import load_experiment
    from tlt_core.stages.train import train

    record = tmp_path / "data.tfrecord"
    _corrupt_tfrecord(sample_dataset, record)
    spec = write_tiny_spec(
        sample_dataset.root,
        tmp_path / "spec.txt",
        batch_size=4,
        num_epochs=1,
        validation_period=1,
    )
    source = {"tfrecords_path": str(record)}
    load_experiment(spec).replace_data_sources(train=[source], val=[source]).save(spec)
    with caplog.at_level(logging.WARNING):
        result = train(spec, tmp_path / "results", "key")
    status = json.loads(result.status_path.read_text())
    epoch = status["epochs"][0]
    assert epoch["skipped_images"] == 1
    assert epoch["skipped_validation_images"] == 1
    assert "1 training image(s) skipped" in caplog.text
    assert "evaluation: 1 image(s) skipped" in caplog.text
