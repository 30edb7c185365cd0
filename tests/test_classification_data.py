"""Class-per-directory input: listing, classmap.json, the sample generator, tf.data batches,
preprocess modes, mixup."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tlt_core.errors import DataError
from tlt_core.networks.classification import data
from tlt_core.networks.classification.sample import generate_classification_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls") / "data"
    counts = generate_classification_sample(root, num_train=20, num_val=10, seed=3)
    return root, counts


def test_sample_is_deterministic_and_balanced(sample, tmp_path):
    root, counts = sample
    assert counts["train"] == {n: 4 for n in counts["train"]}
    assert sum(counts["val"].values()) == 10
    again = tmp_path / "again"
    generate_classification_sample(again, num_train=20, num_val=10, seed=3)
    for path in sorted(root.glob("*/*/*.png")):
        assert (again / path.relative_to(root)).read_bytes() == path.read_bytes()
    sizes = {cv2.imread(str(p)).shape[:2] for p in root.glob("train/*/*.png")}
    assert len(sizes) > 5  # images of many sizes
    manifest = json.loads((root / "sample_data.json").read_text())
    assert manifest["class_counts"] == counts


def test_list_class_folders(sample):
    root, _ = sample
    folders = data.list_class_folders(root / "train")
    assert folders.class_names == ("car", "cyclist", "pedestrian", "person_sitting", "van")
    assert len(folders) == 20 and folders.counts() == dict.fromkeys(folders.class_names, 4)
    for path, label in zip(folders.paths, folders.labels, strict=True):
        assert f"/{folders.class_names[label]}/" in path
    # With a model's class list: the same order, a missing folder is fine ...
    model_classes = (*folders.class_names, "zebra")
    mapped = data.list_class_folders(root / "train", class_names=model_classes)
    assert mapped.labels == folders.labels
    # ... an unknown folder is an error naming it.
    with pytest.raises(DataError, match="class directory van not among"):
        data.list_class_folders(root / "train", class_names=folders.class_names[:4])


def test_listing_errors(tmp_path):
    with pytest.raises(DataError, match="dataset directory not found"):
        data.list_class_folders(tmp_path / "missing")
    with pytest.raises(DataError, match="no class directories"):
        data.list_class_folders(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        data.list_class_folders(tmp_path)


def test_classmap_round_trip_and_errors(tmp_path):
    from tlt_core.data import classmap as data

    path = data.write_classmap(tmp_path / "classmap.json", ["b", "a", "c"])
    assert json.loads(path.read_text()) == {"b": 0, "a": 1, "c": 2}
    assert data.read_classmap(path) == ("b", "a", "c")
    path.write_text('{"a": 0, "b": 2}')
    with pytest.raises(DataError, match=r"indices must be 0\.\.1"):
        data.read_classmap(path)
    path.write_text("[1]")
    with pytest.raises(DataError, match="expected"):
        data.read_classmap(path)


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocess_modes_agree_with_numpy(mode):
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, size=(2, 4, 5, 3)).astype(np.float32)
    got = np.asarray(data.preprocess(pixels, mode))
    np.testing.assert_allclose(got, data.preprocess_numpy(pixels, mode), rtol=1e-5, atol=1e-4)
    if mode == "caffe":
        np.testing.assert_allclose(got[..., 0], pixels[..., 2] - 103.939, atol=1e-3)
    if mode == "tf":
        assert got.min() >= -1.0 and got.max() <= 1.0


def test_evaluation_batches_are_centre_crops(sample):
    import tensorflow as tf

    root, _ = sample
    folders = data.list_class_folders(root / "val")
    batches = list(
        data.build_dataset(
            folders, input_hw=(32, 48), preprocess_mode="tf", batch_size=4, training=False
        ).as_numpy_iterator()
    )
    assert [b["image"].shape for b in batches] == [(4, 32, 48, 3)] * 2 + [(2, 32, 48, 3)]
    labels = np.concatenate([b["label"] for b in batches])
    assert labels.tolist() == list(folders.labels)
    # The first image: the central 0.875 of each side, resized (TF's bilinear resize).
    rgb = cv2.cvtColor(cv2.imread(folders.paths[0]), cv2.COLOR_BGR2RGB).astype(np.float32)
    h, w = rgb.shape[:2]
    ch, cw = h * 0.875, w * 0.875
    y0, x0 = (h - ch) / 2, (w - cw) / 2
    expected = tf.image.crop_and_resize(
        rgb[None], [[y0 / (h - 1), x0 / (w - 1), (y0 + ch) / (h - 1), (x0 + cw) / (w - 1)]], [0], (32, 48)
    )  # fmt: skip
    got = (batches[0]["image"][0] + 1.0) * 127.5
    assert np.mean(np.abs(got - expected.numpy()[0])) < 6.0  # sampling grids differ slightly


def test_training_batches_augment_deterministically(sample):
    root, _ = sample
    folders = data.list_class_folders(root / "train")

    def epoch(seed):
        dataset = data.build_dataset(
            folders,
            input_hw=(32, 32),
            preprocess_mode="caffe",
            batch_size=8,
            training=True,
            seed=seed,
            color_augmentation=True,
        )
        return list(dataset.as_numpy_iterator())

    first, again, other = epoch(1), epoch(1), epoch(2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert sorted(np.concatenate([b["label"] for b in first]).tolist()) == sorted(folders.labels)
    assert not np.array_equal(first[0]["path"], other[0]["path"])  # reshuffled by seed


def test_mixup_mixes_images_and_labels_alike():
    import tensorflow as tf

    images = tf.reshape(tf.range(4, dtype=tf.float32), [4, 1, 1, 1]) * tf.ones([4, 2, 2, 3])
    one_hot = tf.one_hot([0, 1, 2, 3], 4)
    mixed, labels = data.mixup(images, one_hot, tf.constant([1, 2], tf.int64), alpha=0.4)
    labels = labels.numpy()
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    # Each image is the label-weighted mix of the originals: value = sum_i w_i * i.
    np.testing.assert_allclose(mixed.numpy()[:, 0, 0, 0], labels @ np.arange(4), rtol=1e-5)
    assert not np.allclose(labels, one_hot.numpy())


def test_sample_data_cli_task_classification(tmp_path):
    from tlt_core.cli import main
    from tlt_core.networks import get_network

    out = tmp_path / "sample"
    assert main(["sample-data", "--task", "classification", "-o", str(out), "--num-train", "10",
                 "--num-val", "5"]) == 0  # fmt: skip
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(
        ("car", "cyclist", "pedestrian", "person_sitting", "van")
    )
    spec = get_network("classification").load_spec(out / "specs" / "classification_train.txt")
    assert spec.train_dataset_path == str(out / "train")
    assert spec.class_names == ("car", "cyclist", "pedestrian", "person_sitting", "van")
    # Regenerating over it is allowed; over a foreign directory it is refused.
    assert (
        main(["sample-data", "--task", "classification", "-o", str(out), "--num-train", "5"]) == 0
    )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    assert main(["sample-data", "--task", "classification", "-o", str(foreign)]) == 2
