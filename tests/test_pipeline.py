"""The tf.data input pipeline: KITTI directories and TFRecords -> model batches."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_core.data import pipeline as P
from tlt_core.data import tfrecord
from tlt_core.data.convert import ConvertOptions, convert_kitti
from tlt_core.data.kitti import KittiObject, write_label_file
from tlt_core.errors import DataError
from tlt_core.networks.ssd.augment import SsdTransform
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.networks.ssd.spec import parse_experiment

OUT_H, OUT_W = 64, 96


def build(experiment, **kwargs):
    """The shared pipeline with SSD's transform (what ``ssd.input_pipeline`` builds)."""
    return P.build_dataset(experiment, transform=SsdTransform.from_spec(experiment), **kwargs)


# The sample spec's mapping: car, van -> car; pedestrian, person_sitting -> pedestrian;
# cyclist. Model indices: car 1, cyclist 2, pedestrian 3.
MODEL_INDEX = {"car": 1, "van": 1, "cyclist": 2, "pedestrian": 3, "person_sitting": 3}
LABEL_CLASSES = ["Car", "VAN", "pedestrian", "Cyclist", "Person_sitting", "DontCare", "Tram"]
NO_AUGMENTATION = {
    "augmentation_config.random_crop_min_scale": 1.0,
    "augmentation_config.random_crop_max_scale": 1.0,
    "augmentation_config.zoom_out_min_scale": 1.0,
    "augmentation_config.zoom_out_max_scale": 1.0,
    "augmentation_config.brightness": 0,
    "augmentation_config.contrast": 0.0,
    "augmentation_config.saturation": 0.0,
    "augmentation_config.hue": 0,
    "augmentation_config.random_flip": 0.0,
}


@pytest.fixture(scope="module")
def experiment():
    return parse_experiment(
        sample_experiment_spec("/unused", output_width=OUT_W, output_height=OUT_H)
    )


def _obj(name: str, box, occlusion: int = 0) -> KittiObject:
    return KittiObject(name, 0.0, occlusion, 0.0, *box)


def _write_frame(root: Path, frame_id: str, image: np.ndarray, objects, ext: str = ".png"):
    (root / "image_2").mkdir(parents=True, exist_ok=True)
    (root / "label_2").mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    (root / "image_2" / f"{frame_id}{ext}").write_bytes(encoded.tobytes())
    write_label_file(root / "label_2" / f"{frame_id}.txt", objects)


def _kitti_source(root: Path) -> P.InputSource:
    return P.InputSource(image_dir=root / "image_2", label_dir=root / "label_2")


def _collect(dataset) -> dict[str, dict]:
    """frame id -> the unpadded per-frame arrays."""
    frames = {}
    for batch in dataset:
        for i, frame_id in enumerate(batch["frame_id"].numpy()):
            n = int(np.sum(batch["classes"][i].numpy() > 0))
            frames[frame_id.decode()] = {
                "boxes": batch["boxes"][i, :n].numpy(),
                "classes": batch["classes"][i, :n].numpy(),
                "difficult": batch["difficult"][i, :n].numpy(),
                "orig_size": tuple(batch["orig_size"][i].numpy()),
                "image": batch["image"][i].numpy(),
                "padding": batch["classes"][i, n:].numpy(),
            }
    return frames


def _expected(objects, height: int, width: int, keep_difficult: bool = True):
    boxes, classes, difficult = [], [], []
    for o in objects:
        index = MODEL_INDEX.get(o.class_name.lower())
        if index is None or (o.occlusion > 0 and not keep_difficult):
            continue
        sx, sy = OUT_W / width, OUT_H / height
        boxes.append([o.x1 * sx, o.y1 * sy, o.x2 * sx, o.y2 * sy])
        classes.append(index)
        difficult.append(o.occlusion > 0)
    return np.asarray(boxes, np.float32).reshape(-1, 4), classes, difficult


@st.composite
def kitti_frames(draw):
    """1-4 frames: tiny images of random sizes and 0-5 objects of mapped, unmapped and
    DontCare classes, boxes inside the image."""
    frames = []
    for _ in range(draw(st.integers(1, 4))):
        height, width = draw(st.integers(6, 40)), draw(st.integers(6, 40))
        objects = []
        for _ in range(draw(st.integers(0, 5))):
            x1 = draw(st.integers(0, width - 2)) + draw(st.sampled_from([0.0, 0.25, 0.5]))
            y1 = draw(st.integers(0, height - 2)) + draw(st.sampled_from([0.0, 0.5]))
            x2 = draw(st.floats(x1 + 0.5, width))
            y2 = draw(st.floats(y1 + 0.5, height))
            objects.append(
                _obj(
                    draw(st.sampled_from(LABEL_CLASSES)), (x1, y1, x2, y2), draw(st.integers(0, 2))
                )
            )
        frames.append((height, width, objects))
    return frames


def _check_round_trip(frames_read: dict, frames) -> None:
    assert set(frames_read) == {f"{i:06d}" for i in range(len(frames))}
    for i, (height, width, objects) in enumerate(frames):
        got = frames_read[f"{i:06d}"]
        boxes, classes, difficult = _expected(objects, height, width)
        assert got["orig_size"] == (height, width)
        np.testing.assert_allclose(got["boxes"], boxes, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(got["classes"], classes)
        np.testing.assert_array_equal(got["difficult"], difficult)
        assert np.all(got["padding"] == 0)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(kitti_frames())
def test_round_trip_kitti_dir_and_tfrecords_give_back_the_labels(experiment, frames):
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "kitti"
        for i, (height, width, objects) in enumerate(frames):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            _write_frame(root, f"{i:06d}", image, objects)
        from_dir = build(experiment, training=False, batch_size=3, sources=[_kitti_source(root)])
        _check_round_trip(_collect(from_dir), frames)

        result = convert_kitti(
            ConvertOptions(root / "image_2", root / "label_2", val_split=0.0, num_shards=2),
            Path(tmp) / "records" / "kitti",
        )
        from_records = build(experiment, training=False, batch_size=3, sources=[result.pattern])
        _check_round_trip(_collect(from_records), frames)


def test_training_drops_difficult_objects_unless_asked(experiment, tmp_path):
    objects = [
        _obj("car", (1, 2, 10, 12), 0),
        _obj("pedestrian", (12, 3, 20, 19), 1),
        _obj("dontcare", (0, 0, 5, 5), -1),
        _obj("cyclist", (2, 2, 9, 9), 2),
    ]
    _write_frame(tmp_path, "000000", np.zeros((20, 30, 3), np.uint8), objects)
    source = [_kitti_source(tmp_path)]
    for include in (False, True):
        exp = experiment.with_overrides(
            {**NO_AUGMENTATION, "dataset_config.include_difficult_in_training": include}
        )
        got = _collect(build(exp, training=True, batch_size=1, sources=source))
        boxes, classes, difficult = _expected(objects, 20, 30, keep_difficult=include)
        np.testing.assert_allclose(got["000000"]["boxes"], boxes, rtol=1e-5)
        np.testing.assert_array_equal(got["000000"]["classes"], classes)
        np.testing.assert_array_equal(got["000000"]["difficult"], difficult)
        # Evaluation keeps difficult objects whatever the setting, flagged.
        got = _collect(build(exp, training=False, batch_size=1, sources=source))
        np.testing.assert_array_equal(got["000000"]["difficult"], [False, True, True])


def test_output_is_bgr_minus_the_configured_mean(experiment, tmp_path):
    rgb = (200, 100, 50)
    _write_frame(tmp_path, "000000", np.full((10, 14, 3), rgb[::-1], np.uint8), [])  # cv2: BGR
    source = [_kitti_source(tmp_path)]
    image = _collect(build(experiment, training=False, batch_size=1, sources=source))["000000"][
        "image"
    ]
    assert image.shape == (OUT_H, OUT_W, 3)
    np.testing.assert_allclose(
        image, np.broadcast_to([50 - 103.9, 100 - 116.8, 200 - 123.7], image.shape), atol=1e-4
    )
    custom = experiment.with_overrides({"augmentation_config.image_mean": {"r": 1, "g": 2, "b": 3}})
    image = _collect(build(custom, training=False, batch_size=1, sources=source))["000000"]["image"]
    np.testing.assert_allclose(image[0, 0], [50 - 3, 100 - 2, 200 - 1], atol=1e-4)


def test_mixed_sizes_jpeg_and_grey_images_and_fixed_padding(experiment, tmp_path):
    _write_frame(
        tmp_path,
        "a",
        np.full((20, 30, 3), 90, np.uint8),
        [_obj("car", (1, 1, 5, 5)), _obj("van", (2, 2, 8, 9))],
        ext=".jpg",
    )
    _write_frame(tmp_path, "b", np.full((33, 17), 30, np.uint8), [_obj("cyclist", (0, 0, 17, 33))])
    dataset = build(
        experiment, training=True, batch_size=2, max_objects=5, sources=[_kitti_source(tmp_path)]
    )
    batch = next(iter(dataset))
    assert batch["image"].shape == (2, OUT_H, OUT_W, 3)
    assert batch["boxes"].shape == (2, 5, 4) and batch["classes"].dtype == tf.int32
    assert batch["difficult"].dtype == tf.bool and batch["frame_id"].dtype == tf.string
    sizes = dict(zip(batch["frame_id"].numpy(), batch["orig_size"].numpy().tolist(), strict=True))
    assert sizes == {b"a": [20, 30], b"b": [33, 17]}


def test_shuffle_and_augmentation_are_deterministic_per_seed(experiment, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(6):
        _write_frame(
            tmp_path,
            f"{i:06d}",
            rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
            [_obj("car", (2, 3, 20, 20)), _obj("pedestrian", (10, 1, 30, 23))],
        )
    source = [_kitti_source(tmp_path)]

    def first_epochs(seed):
        dataset = build(
            experiment, training=True, batch_size=3, sources=source, repeat=True, seed=seed
        )
        return [b for b in dataset.take(4)]

    a, b, c = first_epochs(5), first_epochs(5), first_epochs(6)
    for x, y in zip(a, b, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key].numpy(), y[key].numpy())
    epoch1 = [f for batch in a[:2] for f in batch["frame_id"].numpy()]
    epoch2 = [f for batch in a[2:] for f in batch["frame_id"].numpy()]
    assert sorted(epoch1) == sorted(epoch2) == [f"{i:06d}".encode() for i in range(6)]
    assert not np.array_equal(a[0]["image"].numpy(), c[0]["image"].numpy())


def test_corrupt_image_in_a_directory_is_named_up_front(experiment, tmp_path):
    _write_frame(tmp_path, "000000", np.zeros((8, 8, 3), np.uint8), [])
    _write_frame(tmp_path, "000001", np.zeros((8, 8, 3), np.uint8), [])
    bad = tmp_path / "image_2" / "000001.png"
    bad.write_bytes(bad.read_bytes()[:-20])  # truncated
    with pytest.raises(DataError, match=r"000001\.png: truncated PNG"):
        build(experiment, training=True, batch_size=1, sources=[_kitti_source(tmp_path)])
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"000001\.png: not a PNG or JPEG"):
        build(experiment, training=True, batch_size=1, sources=[_kitti_source(tmp_path)])


def test_corrupt_image_inside_tfrecords_is_skipped_and_counted(experiment, tmp_path):
    good = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    objects = [_obj("car", (1, 1, 4, 4))]
    path = tmp_path / "frames.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tfrecord.serialize_example("ok1", good, "png", 8, 8, objects))
        writer.write(tfrecord.serialize_example("bad", good[:40], "png", 8, 8, objects))
        writer.write(tfrecord.serialize_example("ok2", good, "png", 8, 8, objects))
    stats = P.InputStats()
    dataset = build(experiment, training=True, batch_size=2, sources=[str(path)], stats=stats)
    assert stats.read == 3  # the records of the file, known before the pass
    frames = _collect(dataset)
    stats.deliver(len(frames))  # the consumer counts what it got
    assert set(frames) == {"ok1", "ok2"}
    assert stats.skipped == 1


def test_dataset_size_and_steps(experiment, tmp_path):
    for i in range(5):
        _write_frame(tmp_path / "kitti", f"{i:06d}", np.zeros((8, 8, 3), np.uint8), [])
    result = convert_kitti(
        ConvertOptions(
            tmp_path / "kitti/image_2", tmp_path / "kitti/label_2", val_split=0.0, num_shards=2
        ),
        tmp_path / "records" / "x",
    )
    source = _kitti_source(tmp_path / "kitti")
    assert P.dataset_size(experiment, training=True, sources=[source]) == 5
    assert P.dataset_size(experiment, training=True, sources=[result.pattern, source]) == 10
    assert P.steps_per_epoch(10, 4) == 3
    with pytest.raises(DataError, match="no TFRecord file matches"):
        P.dataset_size(experiment, training=True, sources=[str(tmp_path / "none-*")])


def test_spec_sources_are_used_by_default(sample_dataset):
    from tlt_core.networks.ssd.spec import load_experiment

    experiment = load_experiment(sample_dataset.experiment_spec)
    assert P.dataset_size(experiment, training=True) == 24
    batch = next(iter(build(experiment, training=False, batch_size=4)))
    h, w, _ = experiment.input_shape
    assert batch["image"].shape == (4, h, w, 3)
    assert np.all(batch["classes"].numpy() <= len(experiment.class_names))


def test_directory_boxes_are_clipped_to_the_image_like_dataset_convert(experiment, tmp_path):
    _write_frame(
        tmp_path, "000000", np.zeros((20, 30, 3), np.uint8), [_obj("car", (-3, 2, 40, 10))]
    )
    got = _collect(
        build(experiment, training=False, batch_size=1, sources=[_kitti_source(tmp_path)])
    )
    np.testing.assert_allclose(
        got["000000"]["boxes"], [[0, 2 * OUT_H / 20, OUT_W, 10 * OUT_H / 20]], rtol=1e-5
    )
