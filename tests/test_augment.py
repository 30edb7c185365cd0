"""The SSD augmentation chain: geometry invariants, disabled steps, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_core.boxes.iou import iou_matrix
from tlt_core.data import render_cv
from tlt_core.networks.ssd import augment as A

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
# 8-bit output of a bilinear resampling to 1/32 pixel: half a level of rounding, plus what
# OpenCV's fixed-point interpolation weights add (they changed between OpenCV 4 and 5: one
# pixel in 18k was 0.5101 off with 5.1).
RENDER_ATOL = 0.53
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
        # The training render works on 8-bit pixels: equal to the float resize up to rounding.
        np.testing.assert_allclose(pixels.numpy(), resized.numpy(), atol=RENDER_ATOL)
        np.testing.assert_array_equal(out_boxes.numpy(), resized_boxes.numpy())
        np.testing.assert_array_equal(kept.numpy(), [0, 1])


def test_render_of_the_whole_image_is_tf_resize_and_boxes_scale():
    image = _random_image(np.random.default_rng(2), 41, 77)
    pixels = A.render(image, A.identity_geometry(image), (64, 96), (0.0, 0.0, 0.0))
    _, boxes = A.resize_example(image, np.array([[7.7, 4, 77, 41]], np.float32), (64, 96))
    reference = tf.image.resize(image, (64, 96), method="bilinear", antialias=False)
    np.testing.assert_allclose(pixels.numpy(), reference.numpy(), atol=RENDER_ATOL)
    np.testing.assert_allclose(boxes.numpy(), [[7.7 * 96 / 77, 4 * 64 / 41, 96, 64]], rtol=1e-6)


def test_flip_mirrors_image_and_boxes_exactly():
    image = _random_image(np.random.default_rng(3), 30, 50)
    boxes = np.array([[0, 0, 10, 30], [12.5, 3, 49, 17]], np.float32)
    flip_always = dataclasses.replace(ALL_OFF, random_flip=1.0)
    pixels, out_boxes, _ = A.augment_example(image, boxes, _seed(0), flip_always)
    resized, resized_boxes = A.resize_example(image, boxes, (64, 96))
    np.testing.assert_allclose(pixels.numpy(), resized.numpy()[:, ::-1], atol=RENDER_ATOL)
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


def test_jitter_draws_follow_the_config():
    drawn = np.stack([A.draw_jitter(_seed(s), FULL).numpy() for s in range(400)])
    brightness, contrast, saturation, hue, contrast_first = drawn.T
    for values, neutral, low, high in (
        (brightness, 0.0, -32.0, 32.0),
        (contrast, 1.0, 0.5, 1.5),
        (saturation, 1.0, 0.5, 1.5),
        (hue, 0.0, -18.0, 18.0),
    ):
        applied = values != neutral
        assert 0.4 < applied.mean() < 0.6  # each step with probability 1/2
        assert np.all((values >= low) & (values <= high))
        assert values[applied].min() < low + 0.2 * (high - low)
        assert values[applied].max() > high - 0.2 * (high - low)
    assert 0.4 < contrast_first.mean() < 0.6 and set(contrast_first) == {0.0, 1.0}
    np.testing.assert_array_equal(A.draw_jitter(_seed(3), FULL), A.draw_jitter(_seed(3), FULL))
    off = dataclasses.replace(FULL, brightness=0, contrast=0.0, saturation=0.0, hue=0)
    for s in range(20):
        np.testing.assert_array_equal(A.draw_jitter(_seed(s), off).numpy()[:4], [0, 1, 1, 0])


def test_colour_jitter_matches_tensorflow_image_ops():
    """Each step against its float TensorFlow definition, up to 8-bit rounding (and 8-bit
    HSV for saturation and hue)."""
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    as_float = tf.constant(image, tf.float32)

    def jitter(**amounts):
        return render_cv.jitter_colours(image.copy(), **amounts).astype(np.float32)

    np.testing.assert_array_equal(jitter(), image)  # neutral amounts: untouched
    np.testing.assert_allclose(jitter(brightness=20.5), np.clip(image + 20.5, 0, 255), atol=0.51)
    expected = np.clip(127.5 + (image.astype(np.float32) - 127.5) * 1.4, 0, 255)
    np.testing.assert_allclose(jitter(contrast=1.4), expected, atol=0.51)
    for factor in (0.5, 1.5):
        reference = tf.image.adjust_saturation(as_float, factor).numpy()
        error = np.abs(jitter(saturation=factor) - reference)
        assert error.mean() < 1.5 and error.max() <= 8, (factor, error.mean(), error.max())
    for degrees in (-18.0, 10.0):
        reference = tf.image.adjust_hue(as_float, degrees / 360.0).numpy()
        error = np.abs(jitter(hue_degrees=degrees) - reference)
        assert error.mean() < 1.5 and error.max() <= 8, (degrees, error.mean(), error.max())
    grey = np.full((4, 4, 3), 77, np.uint8)  # hue and saturation cannot change a grey pixel
    np.testing.assert_array_equal(
        render_cv.jitter_colours(grey, saturation=1.5, hue_degrees=18.0), grey
    )


def test_contrast_order_follows_the_coin():
    image = np.random.default_rng(8).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    first = render_cv.jitter_colours(image, contrast=1.5, saturation=0.6, contrast_first=True)
    last = render_cv.jitter_colours(image, contrast=1.5, saturation=0.6, contrast_first=False)
    assert not np.array_equal(first, last)
    by_hand = render_cv.jitter_colours(
        render_cv.jitter_colours(image, contrast=1.5), saturation=0.6
    )
    np.testing.assert_array_equal(first, by_hand)


def test_photometric_jitter_changes_colours_but_never_the_fill():
    image = np.random.default_rng(9).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    no_boxes = np.zeros((0, 4), np.float32)
    zoom = dataclasses.replace(ALL_OFF, zoom_out_min_scale=3.0, zoom_out_max_scale=3.0)
    jitter = dataclasses.replace(zoom, brightness=32, contrast=0.5, saturation=0.5, hue=18)
    changed = zoomed = 0
    for seed in range(16):
        with_jitter = A.augment_example(image, no_boxes, _seed(seed), jitter)[0].numpy()
        without = A.augment_example(image, no_boxes, _seed(seed), zoom)[0].numpy()
        assert np.all((with_jitter >= 0) & (with_jitter <= 255))
        fill = np.all(without == np.float32(zoom.fill_rgb), axis=-1)
        if not fill.any():  # zoom-out not drawn this time
            continue
        zoomed += 1
        np.testing.assert_array_equal(with_jitter[fill], without[fill])
        changed += not np.allclose(with_jitter[~fill], without[~fill], atol=1)
    assert zoomed >= 4 and changed >= zoomed // 2


def test_model_input_output_is_bgr_minus_the_mean():
    image = np.random.default_rng(10).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    boxes = np.array([[2, 3, 40, 28]], np.float32)
    mean_bgr = (103.9, 116.8, 123.7)
    as_model_input = dataclasses.replace(
        FULL, model_input_mean_bgr=mean_bgr, fill_rgb=mean_bgr[::-1]
    )
    rgb_config = dataclasses.replace(FULL, fill_rgb=mean_bgr[::-1])
    for seed in range(6):
        rgb, rgb_boxes, _ = A.augment_example(image, boxes, _seed(seed), rgb_config)
        model, model_boxes, _ = A.augment_example(image, boxes, _seed(seed), as_model_input)
        np.testing.assert_allclose(model.numpy(), A.model_input(rgb, mean_bgr).numpy(), atol=1e-4)
        np.testing.assert_array_equal(model_boxes.numpy(), rgb_boxes.numpy())
    pixels = tf.constant(np.random.default_rng(11).uniform(0, 255, (5, 6, 3)), tf.float32)
    np.testing.assert_allclose(
        A.model_input(pixels, mean_bgr).numpy(),
        pixels.numpy()[..., ::-1] - np.float32(mean_bgr),
        atol=1e-4,
    )
