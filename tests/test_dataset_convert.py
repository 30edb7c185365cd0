import json
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tlt_core.cli import build_parser, run_command
from tlt_core.data.convert import (
    ConvertOptions,
    _map_read_ahead,
    convert_kitti,
    partition_random,
    partition_sequences,
    shard_path,
)
from tlt_core.data.kitti import list_frames, read_label_file
from tlt_core.data.tfrecord import parse_example, serialize_example
from tlt_core.errors import DataError, UsageError
from tlt_core.stages.dataset_convert import dataset_convert


def read_records(pattern: str) -> dict[str, dict]:
    files = sorted(str(p) for p in Path(pattern).parent.glob(Path(pattern).name))
    out = {}
    for rec in tf.data.TFRecordDataset(files).map(parse_example):
        frame_id = rec["frame/id"].numpy().decode()
        assert frame_id not in out, f"{frame_id} written twice"
        out[frame_id] = {k: v.numpy() for k, v in rec.items()}
    return out


def assert_records_match_labels(records: dict, label_dir: Path) -> None:
    for frame_id, rec in records.items():
        labels = read_label_file(label_dir / f"{frame_id}.txt")
        assert [c.decode() for c in rec["target/object_class"]] == [o.class_name for o in labels]
        np.testing.assert_allclose(
            rec["target/boxes"].reshape(-1, 4), np.array([o.box for o in labels]).reshape(-1, 4)
        )
        assert rec["target/occlusion"].tolist() == [o.occlusion for o in labels]


def test_random_mode_on_sample(sample_dataset, tmp_path):
    prefix = tmp_path / "tf" / "train"
    result = dataset_convert(sample_dataset.convert_spec_random, prefix)
    frames = list_frames(sample_dataset.train_image_dir, sample_dataset.train_label_dir)
    n = len(frames)
    assert result.fold_frame_counts == [int(n * 0.2), n - int(n * 0.2)]
    assert [p.name for p in result.shards] == [
        f"train-fold-{f:03d}-of-002-shard-{s:05d}-of-00002" for f in range(2) for s in range(2)
    ]
    assert sorted(p.name for p in prefix.parent.iterdir()) == [p.name for p in result.shards]
    folds = [read_records(result.fold_pattern(f)) for f in range(2)]
    assert [set(f) for f in folds] == [set(ids) for ids in result.fold_frame_ids]
    assert set(folds[0]) | set(folds[1]) == {f.frame_id for f in frames}
    for fold in folds:
        assert_records_match_labels(fold, sample_dataset.train_label_dir)
    # Image bytes are the files' bytes, unchanged.
    some = frames[0]
    rec = next(f[some.frame_id] for f in folds if some.frame_id in f)
    assert rec["frame/encoded"] == some.image_path.read_bytes()
    assert rec["frame/format"] == b"png"
    h, w = cv2.imread(str(some.image_path)).shape[:2]
    assert (rec["frame/width"], rec["frame/height"]) == (w, h)
    # Class counts: per fold and in total, as in the labels.
    for fold, counts in zip(folds, result.fold_class_counts, strict=True):
        assert counts == Counter(
            c.decode() for r in fold.values() for c in r["target/object_class"]
        )
    assert result.class_counts == sample_dataset.class_counts["training"]
    # The same input gives the same split (seeded).
    again = dataset_convert(sample_dataset.convert_spec_random, tmp_path / "again")
    assert again.fold_frame_ids == result.fold_frame_ids


def test_sequence_mode_on_sample(sample_dataset, tmp_path):
    result = dataset_convert(
        sample_dataset.convert_spec_sequence, tmp_path / "seq", validation_fold=2
    )
    sequences = json.loads(sample_dataset.sequence_file.read_text())
    assert len(result.shards) == 3 * 2 and result.validation_fold == 2
    folds = [set(read_records(result.fold_pattern(f))) for f in range(3)]
    assert folds == [set(ids) for ids in result.fold_frame_ids]
    for frames in sequences.values():
        assert sum(bool(set(frames) & fold) for fold in folds) == 1  # no sequence spans folds
    assert sum(map(len, folds)) == sum(map(len, sequences.values()))
    with pytest.raises(UsageError, match=r"validation fold 3 not in 0\.\.2"):
        dataset_convert(sample_dataset.convert_spec_sequence, tmp_path / "x", validation_fold=3)
    with pytest.raises(UsageError, match="random split validates on fold 0"):
        dataset_convert(sample_dataset.convert_spec_random, tmp_path / "x", validation_fold=1)


def test_partition_helpers():
    ids = [f"{i:03d}" for i in range(10)]
    val, train = partition_random(ids, 30)
    assert len(val) == 3 and sorted(val + train) == ids
    assert partition_random(list(reversed(ids)), 30) == [val, train]  # input order irrelevant
    seqs = {"a": ids[:5], "b": ids[5:7], "c": ids[7:9], "d": ids[9:]}
    assert partition_sequences(ids, seqs, 2) == [ids[:5], ids[5:7] + ids[7:9] + ids[9:]]
    with pytest.raises(DataError, match=r"1 frame\(s\) in no sequence: 009"):
        partition_sequences(ids, {"a": ids[:9]}, 1)
    with pytest.raises(DataError, match="frame '001' is in sequences 'a' and 'b'"):
        partition_sequences(ids, {"a": ids, "b": ["001"]}, 1)
    with pytest.raises(DataError, match="cannot fill 3 folds"):
        partition_sequences(ids, {"a": ids[:5], "b": ids[5:]}, 3)


def small_kitti(sample_dataset, root: Path, n: int = 6) -> ConvertOptions:
    images, labels = root / "image_2", root / "label_2"
    images.mkdir(parents=True)
    labels.mkdir()
    for frame in list_frames(sample_dataset.train_image_dir, sample_dataset.train_label_dir)[:n]:
        shutil.copy(frame.image_path, images)
        shutil.copy(frame.label_path, labels)
    return ConvertOptions(image_dir=images, label_dir=labels, num_shards=3, val_split=50)


def test_failure_leaves_no_output(sample_dataset, tmp_path):
    options = small_kitti(sample_dataset, tmp_path / "kitti")
    out = tmp_path / "out"
    out.mkdir()
    old = shard_path(out / "t", 0, 2, 0, 1)
    old.write_bytes(b"previous run")
    last = sorted(options.label_dir.iterdir())[-1]
    last.write_text(last.read_text() + "car 0 0 0 1 2 abc 4 0 0 0 0 0 0 0\n")
    n_lines = len(last.read_text().splitlines())
    with pytest.raises(DataError, match=rf"{last.name}:{n_lines}: bbox x2: not a number 'abc'"):
        convert_kitti(options, out / "t")
    assert list(out.iterdir()) == [old]  # nothing new, no temporary left, old run untouched
    # Skipping bad lines converts, counts the line, and replaces the older run's shards.
    result = convert_kitti(options, out / "t", strict=False)
    assert result.n_skipped == 1
    assert sorted(out.iterdir()) == sorted(result.shards) and old not in result.shards


def test_clipping_jpeg_and_empty_frames(sample_dataset, tmp_path):
    options = small_kitti(sample_dataset, tmp_path / "kitti", n=2)
    first = sorted(options.image_dir.iterdir())[0]
    img = cv2.imread(str(first))
    _h, w = img.shape[:2]
    first.unlink()
    jpeg = first.with_suffix(".jpg")
    cv2.imwrite(str(jpeg), img)
    (options.label_dir / f"{first.stem}.txt").write_text(
        f"car 0 0 0 -10 5 {w + 20} 30 0 0 0 0 0 0 0\n"
    )
    (options.label_dir / f"{sorted(options.image_dir.iterdir())[1].stem}.txt").write_text("")
    result = convert_kitti(options, tmp_path / "o" / "t")
    assert result.n_clipped == 1
    records = read_records(f"{tmp_path}/o/t-fold-*")
    rec = records[first.stem]
    assert rec["frame/format"] == b"jpeg" and rec["frame/encoded"] == jpeg.read_bytes()
    np.testing.assert_allclose(rec["target/boxes"], [[0, 5, w, 30]])
    assert sum(len(r["target/object_class"]) for r in records.values()) == 1


def test_box_outside_image_and_corrupt_image(sample_dataset, tmp_path):
    options = small_kitti(sample_dataset, tmp_path / "kitti", n=1)
    label = next(options.label_dir.iterdir())
    label.write_text("car 0 0 0 5000 5 5100 30 0 0 0 0 0 0 0\n")
    with pytest.raises(DataError, match=rf"{label.name}:1: bbox: box 5000 5 5100 30 lies outside"):
        convert_kitti(options, tmp_path / "o" / "t")
    assert convert_kitti(options, tmp_path / "o" / "t", strict=False).n_skipped == 1
    image = next(options.image_dir.iterdir())
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match=rf"{image.name}: corrupt PNG"):
        convert_kitti(options, tmp_path / "o" / "t")


def _cli(*args: str) -> int:
    """Run ``tlt dataset-convert ARGS`` in-process (the dispatcher's error handling included)."""
    parsed = build_parser().parse_args(["dataset-convert", *args])
    return run_command(parsed.func, parsed)


def test_cli_bad_label_exits_3_with_one_line(sample_dataset, tmp_path, capsys):
    options = small_kitti(sample_dataset, tmp_path / "kitti", n=2)
    label = sorted(options.label_dir.iterdir())[0]
    label.write_text("car 0 0 0 1 2 abc 4 0 0 0 0 0 0 0\n")
    spec = tmp_path / "spec.txt"
    spec.write_text(
        'kitti_config {\n  root_directory_path: "kitti"\n  image_dir_name: "image_2"\n'
        '  label_dir_name: "label_2"\n  image_extension: ".png"\n'
        '  partition_mode: "random"\n  num_partitions: 2\n  val_split: 50\n  num_shards: 1\n}\n'
    )
    capsys.readouterr()
    assert _cli("-d", str(spec), "-o", str(tmp_path / "out" / "t")) == 3
    err = capsys.readouterr().err
    # Progress may be logged before the bad frame is reached; the error itself is one line,
    # the last, and there is no traceback.
    assert err.splitlines()[-1] == f"tlt: error: {label}:1: bbox x2: not a number 'abc'"
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # The TLT long option names and --skip_bad_labels.
    assert _cli("--dataset_export_spec", str(spec), "--output_filename", str(tmp_path / "o2" / "t"),
                "--validation_fold", "0", "--skip_bad_labels") == 0  # fmt: skip
    assert len(list((tmp_path / "o2").iterdir())) == 2
    # A random split validates on fold 0: a usage error (exit 2), one line.
    capsys.readouterr()
    assert _cli("-d", str(spec), "-o", str(tmp_path / "o3" / "t"), "-f", "1") == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tlt: error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err


def test_output_is_deterministic_tfrecord_bytes(sample_dataset, tmp_path):
    options = small_kitti(sample_dataset, tmp_path / "kitti", n=7)
    first = convert_kitti(options, tmp_path / "a" / "t")
    second = convert_kitti(options, tmp_path / "b" / "t")
    assert [p.read_bytes() for p in first.shards] == [p.read_bytes() for p in second.shards]
    # Each shard is what tf.io.TFRecordWriter writes for the frames' records, in fold order.
    frames = {f.frame_id: f for f in list_frames(options.image_dir, options.label_dir)}
    shard_frames = [
        chunk for ids in first.fold_frame_ids for chunk in _chunks(ids, options.num_shards)
    ]
    for shard, frame_ids in zip(first.shards, shard_frames, strict=True):
        expected = tmp_path / "expected.tfrecord"
        with tf.io.TFRecordWriter(str(expected)) as writer:
            for frame_id in frame_ids:
                writer.write(_expected_record(frames[frame_id]))
        assert shard.read_bytes() == expected.read_bytes()


def _chunks(ids: list[str], n: int) -> list[list[str]]:
    base, extra = divmod(len(ids), n)
    sizes = [base + (1 if i < extra else 0) for i in range(n)]
    return [ids[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(n)]


def _expected_record(frame) -> bytes:
    image = frame.image_path.read_bytes()
    h, w = cv2.imread(str(frame.image_path)).shape[:2]
    return serialize_example(frame.frame_id, image, "png", w, h, read_label_file(frame.label_path))


def test_read_ahead_keeps_order_bounds_work_and_raises_in_turn():
    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.001 * (7 - i % 7))  # later items often finish first
        if i == 12:
            raise DataError("bad frame", f"f{i}.txt")
        return i * i

    results = _map_read_ahead(work, range(40), workers=2, read_ahead=4)
    got = [next(results) for _ in range(5)]
    assert got == [i * i for i in range(5)]
    assert max(started) < 5 + 4 - 1  # at most read_ahead - 1 items beyond those consumed
    got += [next(results) for _ in range(7)]
    with pytest.raises(DataError, match=r"f12\.txt: bad frame"):
        next(results)
    assert got == [i * i for i in range(12)]  # every earlier item, in order, before the error
    results.close()
    # Item 12's turn came with 13..15 already submitted (read_ahead - 1 beyond it); under
    # load they may all have started before the error cancelled the rest.
    assert max(started) <= 12 + 4 - 1 and len(started) == len(set(started))
