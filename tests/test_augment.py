"""The SSD augmentation chain: geometry invariants, disabled steps, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_core.boxes.iou import iou_matrix
from tlt_core.data import augment as A

FULL = A.AugmentConfig(output_height=64, output_width=96)
GEOMETRY_ONLY = dataclasses.replace(FULL, brightness=0, contrast=0.0, saturation=0.0, hue=0)
ALL_OFF = dataclasses.replace(
    GEOMETRY_ONLY,
    random_crop_min_scale=1.0,
    random_crop_max_scale=1.0,
    zoom_out_min_scale=1.0,
    zoom_out_max_scale=1.0,
    random_flip=0.0,
)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seed(value: int) -> tf.Tensor:
    return tf.constant([7, value], tf.int64)


def _random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@st.composite
def examples(draw):
    """A small random image and 0-6 boxes inside it."""
    height = draw(st.integers(8, 60))
    width = draw(st.integers(8, 90))
    n = draw(st.integers(0, 6))
    boxes = []
    for _ in range(n):
        x1 = draw(st.floats(0, width - 2))
        y1 = draw(st.floats(0, height - 2))
        x2 = draw(st.floats(x1 + 1, width))
        y2 = draw(st.floats(y1 + 1, height))
        boxes.append([x1, y1, x2, y2])
    image = _random_image(np.random.default_rng(draw(st.integers(0, 1000))), height, width)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), draw(st.integers(0, 2**31))


@SETTINGS
@given(examples())
def test_boxes_stay_inside_the_output_image(example):
    image, boxes, seed = example
    pixels, out_boxes, kept = A.augment_example(image, boxes, _seed(seed), FULL)
    assert pixels.shape == (64, 96, 3)
    assert np.all((pixels.numpy() >= 0) & (pixels.numpy() <= 255))
    b = out_boxes.numpy()
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0)
    assert np.all(b[:, 2] <= 96 + 1e-3) and np.all(b[:, 3] <= 64 + 1e-3)
    assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
    k = kept.numpy()
    assert len(k) == len(b) and np.all(np.diff(k) > 0) and np.all((k >= 0) & (k < len(boxes)))


def test_box_content_travels_with_the_box():
    """A rectangle painted in its own colour is still that colour inside its output box."""
    background, colour = np.array([10, 20, 30]), np.array([200, 100, 50])
    image = np.broadcast_to(background, (60, 80, 3)).astype(np.uint8).copy()
    image[20:44, 30:62] = colour
    boxes = np.array([[30, 20, 62, 44]], np.float32)
    seen_crops = 0
    for seed in range(40):
        pixels, out_boxes, kept = A.augment_example(image, boxes, _seed(seed), GEOMETRY_ONLY)
        pixels = pixels.numpy()
        if len(kept) == 0:
            continue
        x1, y1, x2, y2 = out_boxes.numpy()[0]
        seen_crops += x2 - x1 < 95
        inner = pixels[
            int(np.ceil(y1 + 1)) : int(np.floor(y2 - 1)),
            int(np.ceil(x1 + 1)) : int(np.floor(x2 - 1)),
        ]
        np.testing.assert_allclose(
            inner.reshape(-1, 3),
            np.broadcast_to(colour, (inner.size // 3, 3)),
            atol=1e-3,
            err_msg=f"seed {seed}",
        )
        # Pixels two or more pixels outside the box are never the object's colour.
        mask = np.ones(pixels.shape[:2], bool)
        mask[max(int(y1) - 2, 0) : int(y2) + 3, max(int(x1) - 2, 0) : int(x2) + 3] = False
        assert not np.any(np.all(np.abs(pixels[mask] - colour) < 1, axis=-1)), f"seed {seed}"
    assert seen_crops > 0


def test_all_steps_disabled_is_a_plain_resize():
    image = _random_image(np.random.default_rng(1), 37, 53)
    boxes = np.array([[3, 4, 20, 30], [10, 1, 52, 36]], np.float32)
    for seed in range(5):
        pixels, out_boxes, kept = A.augment_example(image, boxes, _seed(seed), ALL_OFF)
        resized, resized_boxes = A.resize_example(image, boxes, (64, 96))
        np.testing.assert_allclose(pixels.numpy(), resized.numpy(), atol=5e-3)  # of 0..255
        np.testing.assert_array_equal(out_boxes.numpy(), resized_boxes.numpy())
        np.testing.assert_array_equal(kept.numpy(), [0, 1])


def test_render_of_the_whole_image_is_tf_resize_and_boxes_scale():
    image = _random_image(np.random.default_rng(2), 41, 77)
    pixels, _ = A.render(image, A.identity_geometry(image), (64, 96), (0.0, 0.0, 0.0))
    _, boxes = A.resize_example(image, np.array([[7.7, 4, 77, 41]], np.float32), (64, 96))
    reference = tf.image.resize(image, (64, 96), method="bilinear", antialias=False)
    np.testing.assert_allclose(pixels.numpy(), reference.numpy(), atol=5e-3)  # of 0..255
    np.testing.assert_allclose(boxes.numpy(), [[7.7 * 96 / 77, 4 * 64 / 41, 96, 64]], rtol=1e-6)


def test_flip_mirrors_image_and_boxes_exactly():
    image = _random_image(np.random.default_rng(3), 30, 50)
    boxes = np.array([[0, 0, 10, 30], [12.5, 3, 49, 17]], np.float32)
    flip_always = dataclasses.replace(ALL_OFF, random_flip=1.0)
    pixels, out_boxes, _ = A.augment_example(image, boxes, _seed(0), flip_always)
    resized, resized_boxes = A.resize_example(image, boxes, (64, 96))
    np.testing.assert_allclose(pixels.numpy(), resized.numpy()[:, ::-1], atol=5e-3)
    r = resized_boxes.numpy()
    np.testing.assert_allclose(
        out_boxes.numpy(), np.stack([96 - r[:, 2], r[:, 1], 96 - r[:, 0], r[:, 3]], 1), atol=1e-4
    )


def test_flip_probability_is_respected():
    image = _random_image(np.random.default_rng(4), 16, 16)
    boxes = np.array([[0, 0, 4, 16]], np.float32)
    half = dataclasses.replace(ALL_OFF, random_flip=0.5)
    first_x1 = tf.function(lambda seed: A.augment_example(image, boxes, seed, half)[1][0, 0])
    flipped = sum(float(first_x1(_seed(s))) > 40 for s in range(200))
    assert 70 < flipped < 130


def test_same_seed_same_output_other_seed_differs():
    image = _random_image(np.random.default_rng(5), 48, 64)
    boxes = np.array([[5, 5, 30, 40], [20, 10, 60, 47]], np.float32)
    a = A.augment_example(image, boxes, _seed(11), FULL)
    b = A.augment_example(image, boxes, _seed(11), FULL)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    others = [A.augment_example(image, boxes, _seed(s), FULL)[0].numpy() for s in range(12, 16)]
    assert any(not np.array_equal(a[0].numpy(), o) for o in others)


@pytest.mark.parametrize("min_iou", [0.3, 0.7])
def test_crop_keeps_the_iou_scale_and_aspect_constraints(min_iou):
    boxes = tf.constant([[10, 10, 40, 50], [60, 20, 95, 70], [5, 60, 30, 78]], tf.float32)
    canvas = A.Geometry(tf.constant([80.0, 100.0]), tf.zeros([2]), tf.constant(False))
    crops = 0
    for seed in range(60):
        geometry, out_boxes, kept = A.random_crop(
            canvas,
            boxes,
            _seed(seed),
            min_scale=0.3,
            max_scale=1.0,
            min_ar=0.5,
            max_ar=2.0,
            min_iou_choices=(min_iou,),
        )
        h, w = geometry.canvas_hw.numpy()
        top, left = -geometry.origin_yx.numpy()
        if (h, w) == (80.0, 100.0):  # no candidate met the constraints: image kept whole
            np.testing.assert_array_equal(kept.numpy(), [0, 1, 2])
            continue
        crops += 1
        assert 0.3 * 80 - 1e-3 <= h <= 80 + 1e-3 and 0.3 * 100 - 1e-3 <= w <= 100 + 1e-3
        assert 0.5 - 1e-5 <= (w / 100) / (h / 80) <= 2.0 + 1e-5
        patch = np.array([[left, top, left + w, top + h]])
        assert iou_matrix(patch, boxes.numpy()).max() >= min_iou - 1e-6
        centres = (boxes.numpy()[:, :2] + boxes.numpy()[:, 2:]) / 2
        inside = (
            (centres[:, 0] > left)
            & (centres[:, 0] < left + w)
            & (centres[:, 1] > top)
            & (centres[:, 1] < top + h)
        )
        np.testing.assert_array_equal(kept.numpy(), np.flatnonzero(inside))
        expected = np.clip(boxes.numpy()[inside] - [left, top, left, top], 0, [w, h, w, h])
        np.testing.assert_allclose(out_boxes.numpy(), expected, atol=1e-4)
    assert crops > 3


def test_crop_mode_no_crop_keeps_everything():
    boxes = tf.constant([[10, 10, 40, 50]], tf.float32)
    canvas = A.Geometry(tf.constant([80.0, 100.0]), tf.zeros([2]), tf.constant(False))
    geometry, out_boxes, kept = A.random_crop(
        canvas,
        boxes,
        _seed(0),
        min_scale=0.3,
        max_scale=1.0,
        min_ar=0.5,
        max_ar=2.0,
        min_iou_choices=(A.CROP_NO_CROP,),
    )
    np.testing.assert_array_equal(geometry.canvas_hw.numpy(), [80, 100])
    np.testing.assert_array_equal(out_boxes.numpy(), boxes.numpy())
    np.testing.assert_array_equal(kept.numpy(), [0])


def test_zoom_out_fills_with_the_mean_and_shifts_boxes():
    image = np.full((20, 30, 3), 255, np.uint8)
    boxes = np.array([[0, 0, 30, 20]], np.float32)
    zoom_only = dataclasses.replace(
        ALL_OFF, zoom_out_min_scale=3.0, zoom_out_max_scale=3.0, fill_rgb=(1.0, 2.0, 3.0)
    )
    zoomed = 0
    for seed in range(10):
        pixels, out_boxes, _ = A.augment_example(image, boxes, _seed(seed), zoom_only)
        pixels, (x1, y1, x2, y2) = pixels.numpy(), out_boxes.numpy()[0]
        if x2 - x1 > 95:  # not zoomed this time
            continue
        zoomed += 1
        np.testing.assert_allclose([x2 - x1, y2 - y1], [96 / 3, 64 / 3], rtol=1e-5)
        assert np.all(pixels[int(y1) + 1 : int(y2) - 1, int(x1) + 1 : int(x2) - 1] == 255)
        outside = np.ones(pixels.shape[:2], bool)
        outside[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = False
        np.testing.assert_array_equal(
            pixels[outside], np.broadcast_to([1, 2, 3], (outside.sum(), 3))
        )
    assert zoomed > 0


def test_photometric_steps_disabled_are_identity_and_enabled_change_colours():
    rng = np.random.default_rng(6)
    image = tf.constant(rng.uniform(0, 255, (16, 16, 3)), tf.float32)
    off = dataclasses.replace(FULL, brightness=0, contrast=0.0, saturation=0.0, hue=0)
    assert not off.photometric_enabled
    changed = 0
    for seed in range(8):
        out = A.photometric_distort(image, _seed(seed), FULL).numpy()
        assert np.all((out >= 0) & (out <= 255))
        changed += not np.allclose(out, image.numpy(), atol=1e-3)
    assert changed >= 4
    hue_only = dataclasses.replace(off, hue=18)
    grey = tf.fill([4, 4, 3], 77.0)  # hue cannot change a grey pixel
    for seed in range(4):
        np.testing.assert_allclose(
            A.photometric_distort(grey, _seed(seed), hue_only).numpy(), 77.0, atol=1e-3
        )


def test_rgb_saturation_equals_tf_adjust_saturation():
    image = tf.constant(np.random.default_rng(7).uniform(0, 255, (20, 20, 3)), tf.float32)
    for factor in (0.0, 0.5, 1.0, 1.5, 3.0):
        np.testing.assert_allclose(
            A.scale_saturation(image, tf.constant(factor)).numpy(),
            tf.image.adjust_saturation(image, factor).numpy(),
            atol=5e-3,
        )
