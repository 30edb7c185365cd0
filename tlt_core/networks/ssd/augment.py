"""The SSD training augmentation chain on one image and its boxes (a tf.data map step).

The chain of the SSD paper (sections 2.2 and 3.6), configured by TLT 3.0's
``augmentation_config`` (000): zoom-out, IoU-constrained random crop, horizontal flip,
resize to the output size, and photometric distortion (brightness, contrast, saturation,
hue, in SSD's random order). Evaluation only resizes (:func:`resize_example`).

Images are RGB, values 0..255 (uint8 as decoded, or float). Boxes are pixel corners
``[x1, y1, x2, y2]`` of the image they travel with, continuous (width = x2 - x1).

How it is made fast: the geometric steps (zoom-out, crop, flip) are TensorFlow ops that
only move a *window* (:class:`Geometry`: the current canvas size, where the source image
sits on it, whether it is mirrored) and the boxes; the colour jitter is drawn as five
numbers (:func:`draw_jitter`). The pixels are then touched once, by :func:`render`
(OpenCV through ``tf.numpy_function``, :mod:`tlt_core.data.render_cv`): one bilinear
resampling straight from the decoded image, so the zoomed-out canvas (up to 4x4 times the
image) is never built, then the jitter on 8-bit pixels, and optionally the model's BGR
minus mean layout. Output pixels that fall outside the source image take the fill colour
(the image mean, as SSD fills its expanded canvas). The photometric distortion is applied
after the resampling, to the output pixels that come from the image (not the fill): it is
per pixel, so this equals distorting first up to the interpolation of a handful of border
pixels, at a fraction of the cost (TLT's own DALI pipeline orders it the same way).

Every random draw is stateless, from a ``seed`` (int ``[2]`` tensor) split per step, so the
same seed gives the same output. A step is left out, not just made neutral, when it is
disabled as 000 says: ``random_crop_min_scale = random_crop_max_scale = 1``,
``zoom_out_min_scale = zoom_out_max_scale = 1``, a colour delta of 0, ``random_flip = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf

from tlt_core.boxes.iou import iou_matrix_ops
from tlt_core.data.render_cv import render_window

# SSD applies each of zoom-out and the photometric steps to half of the images.
ZOOM_OUT_PROBABILITY = 0.5
PHOTOMETRIC_STEP_PROBABILITY = 0.5
# Random-crop modes of SSD, drawn uniformly: keep the whole image, a patch whose IoU with
# at least one box is >= 0.1 / 0.3 / 0.5 / 0.7 / 0.9, or any patch.
CROP_NO_CROP = -2.0
CROP_ANY_PATCH = -1.0
CROP_MIN_IOU_CHOICES = (CROP_NO_CROP, 0.1, 0.3, 0.5, 0.7, 0.9, CROP_ANY_PATCH)
# Candidate patches drawn (at once, vectorised) per image before giving up on a crop.
CROP_ATTEMPTS = 50


@dataclass(frozen=True)
class AugmentConfig:
    """The resolved ``augmentation_config``; the defaults are 000's."""

    output_height: int = 300
    output_width: int = 300
    random_crop_min_scale: float = 0.3
    random_crop_max_scale: float = 1.0
    random_crop_min_ar: float = 0.5
    random_crop_max_ar: float = 2.0
    zoom_out_min_scale: float = 1.0
    zoom_out_max_scale: float = 4.0
    brightness: float = 32.0  # pixel values (0..255)
    contrast: float = 0.5  # factor drawn from [1 - c, 1 + c]
    saturation: float = 0.5  # factor drawn from [1 - s, 1 + s]
    hue: float = 18.0  # degrees, delta drawn from [-h, h]
    random_flip: float = 0.5  # probability
    fill_rgb: tuple[float, float, float] = (123.7, 116.8, 103.9)  # zoom-out canvas colour
    # None: the chain returns RGB 0..255. Set: it returns the model's input, BGR minus this
    # mean (see :func:`model_input`), made with the pixels in one pass.
    model_input_mean_bgr: tuple[float, float, float] | None = None
    # 1: the model's input is grey (output_channel 1); only with model_input_mean_bgr.
    output_channel: int = 3

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.output_height, self.output_width)

    @property
    def crop_enabled(self) -> bool:
        return not (self.random_crop_min_scale == 1.0 and self.random_crop_max_scale == 1.0)

    @property
    def zoom_out_enabled(self) -> bool:
        return not (self.zoom_out_min_scale == 1.0 and self.zoom_out_max_scale == 1.0)

    @property
    def flip_enabled(self) -> bool:
        return self.random_flip > 0.0

    @property
    def photometric_enabled(self) -> bool:
        return any(d > 0 for d in (self.brightness, self.contrast, self.saturation, self.hue))


class Geometry(NamedTuple):
    """Where the output window lies relative to the source image (all float32 tensors).

    ``canvas_hw``: the current canvas size (h, w) in source pixels; ``origin_yx``: where
    the source image's top-left corner sits on the canvas; ``flip``: mirror horizontally.
    """

    canvas_hw: tf.Tensor
    origin_yx: tf.Tensor
    flip: tf.Tensor


def identity_geometry(image: tf.Tensor) -> Geometry:
    """The whole image, unmoved."""
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    return Geometry(hw, tf.zeros([2], tf.float32), tf.constant(False))


def _uniform(seed: tf.Tensor, shape, minval=0.0, maxval=1.0) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def _split(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num))


def _as_seed(seed) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    return tf.cast(seed, tf.int64) if seed.dtype != tf.int32 else seed


def zoom_out(
    geometry: Geometry, boxes: tf.Tensor, seed: tf.Tensor, min_scale: float, max_scale: float
) -> tuple[Geometry, tf.Tensor]:
    """SSD's expand: with probability 1/2, put the canvas at a random place on one
    ``scale`` (uniform in [min, max]) times larger, filled with the mean."""
    s_apply, s_scale, s_place = _split(seed, 3)
    applied = _uniform(s_apply, []) < ZOOM_OUT_PROBABILITY
    scale = tf.where(applied, _uniform(s_scale, [], min_scale, max_scale), 1.0)
    new_hw = geometry.canvas_hw * scale
    offset_yx = _uniform(s_place, [2]) * (new_hw - geometry.canvas_hw)
    shift = tf.stack([offset_yx[1], offset_yx[0], offset_yx[1], offset_yx[0]])
    return (
        Geometry(new_hw, geometry.origin_yx + offset_yx, geometry.flip),
        boxes + shift,
    )


def random_crop(
    geometry: Geometry,
    boxes: tf.Tensor,
    seed: tf.Tensor,
    *,
    min_scale: float,
    max_scale: float,
    min_ar: float,
    max_ar: float,
    attempts: int = CROP_ATTEMPTS,
    min_iou_choices: tuple[float, ...] = CROP_MIN_IOU_CHOICES,
) -> tuple[Geometry, tf.Tensor, tf.Tensor]:
    """SSD's IoU-constrained random crop of the canvas.

    A mode is drawn from ``min_iou_choices`` (:data:`CROP_MIN_IOU_CHOICES`). ``attempts`` candidate patches are
    drawn at once: height and width each ``scale`` (uniform in [min, max]) times the
    canvas', aspect ratio (w/h relative to the canvas) in [min_ar, max_ar]. The first
    candidate that has IoU >= the mode's minimum with at least one box and contains at
    least one box centre is taken; when none does (or the mode is "no crop") the canvas is
    kept. Boxes whose centre lies outside the patch are dropped, the rest clipped to it.

    Returns ``(geometry, boxes, kept)``: ``kept`` are the indices of the surviving boxes.
    """
    s_mode, s_scale, s_place = _split(seed, 3)
    choices = tf.constant(min_iou_choices, tf.float32)
    min_iou = tf.gather(
        choices,
        tf.random.stateless_uniform(
            [], seed=s_mode, minval=0, maxval=len(min_iou_choices), dtype=tf.int32
        ),
    )
    scales = _uniform(s_scale, [attempts, 2], min_scale, max_scale)  # (h, w) fractions
    relative_ar = scales[:, 1] / scales[:, 0]
    ar_ok = (relative_ar >= min_ar) & (relative_ar <= max_ar)
    patch_hw = scales * geometry.canvas_hw
    patch_yx = _uniform(s_place, [attempts, 2]) * (geometry.canvas_hw - patch_hw)
    patches = tf.concat(  # [T, 4] x1, y1, x2, y2
        [
            patch_yx[:, 1:2],
            patch_yx[:, 0:1],
            patch_yx[:, 1:2] + patch_hw[:, 1:2],
            patch_yx[:, 0:1] + patch_hw[:, 0:1],
        ],
        axis=1,
    )

    n_boxes = tf.shape(boxes)[0]
    centres = tf.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0], axis=1
    )
    inside = (  # [T, N]: box centre within the patch
        (centres[None, :, 0] > patches[:, None, 0])
        & (centres[None, :, 0] < patches[:, None, 2])
        & (centres[None, :, 1] > patches[:, None, 1])
        & (centres[None, :, 1] < patches[:, None, 3])
    )
    iou_ok = tf.reduce_any(iou_matrix_ops(patches, boxes) >= min_iou, axis=1) | (min_iou < 0.0)
    centre_ok = tf.reduce_any(inside, axis=1) | tf.equal(n_boxes, 0)
    valid = ar_ok & iou_ok & centre_ok & (min_iou != CROP_NO_CROP)
    found = tf.reduce_any(valid)
    first = tf.argmax(tf.cast(valid, tf.int32), output_type=tf.int32)

    full_canvas = tf.concat([[0.0, 0.0], geometry.canvas_hw[::-1]], axis=0)
    patch = tf.where(found, patches[first], full_canvas)
    keep = tf.cond(found, lambda: inside[first], lambda: tf.ones([n_boxes], tf.bool))
    kept = tf.cast(tf.reshape(tf.where(keep), [-1]), tf.int32)

    origin = tf.stack([patch[1], patch[0]])
    new_hw = tf.stack([patch[3] - patch[1], patch[2] - patch[0]])
    shifted = tf.gather(boxes, kept) - tf.stack([patch[0], patch[1], patch[0], patch[1]])
    limits = tf.stack([new_hw[1], new_hw[0], new_hw[1], new_hw[0]])
    clipped = tf.clip_by_value(shifted, 0.0, limits)
    return Geometry(new_hw, geometry.origin_yx - origin, geometry.flip), clipped, kept


def random_flip(
    geometry: Geometry, boxes: tf.Tensor, seed: tf.Tensor, probability: float
) -> tuple[Geometry, tf.Tensor]:
    """Mirror the canvas left-right with ``probability``; boxes are mirrored with it."""
    flipped = _uniform(seed, []) < probability
    width = geometry.canvas_hw[1]
    mirrored = tf.stack(
        [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1
    )
    boxes = tf.where(flipped, mirrored, boxes)
    return Geometry(
        geometry.canvas_hw, geometry.origin_yx, tf.math.logical_xor(geometry.flip, flipped)
    ), boxes


def draw_jitter(seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """SSD's photometric distortion, drawn: float32 ``[brightness, contrast, saturation,
    hue_degrees, contrast_first]`` for :func:`tlt_core.data.render_cv.jitter_colours`.

    Each step is applied with probability 1/2 (otherwise, and when its delta is 0, it is
    neutral: 0, 1, 1, 0); a coin orders contrast before or after saturation and hue.
    """
    u = _uniform(_as_seed(seed), [9])
    applied = u[0::2][:4] < PHOTOMETRIC_STEP_PROBABILITY  # brightness, contrast, sat, hue

    def amount(i: int, delta: float, low: float, high: float, neutral: float) -> tf.Tensor:
        if delta <= 0:
            return tf.constant(neutral, tf.float32)
        return tf.where(applied[i], low + (high - low) * u[2 * i + 1], neutral)

    b, c, s, h = (
        float(config.brightness),
        float(config.contrast),
        float(config.saturation),
        float(config.hue),
    )
    return tf.stack(
        [
            amount(0, b, -b, b, 0.0),
            amount(1, c, 1.0 - c, 1.0 + c, 1.0),
            amount(2, s, 1.0 - s, 1.0 + s, 1.0),
            amount(3, h, -h, h, 0.0),
            tf.cast(u[8] < 0.5, tf.float32),
        ]
    )


NEUTRAL_JITTER = (0.0, 1.0, 1.0, 0.0, 1.0)


def render(
    image: tf.Tensor,
    geometry: Geometry,
    output_size: tuple[int, int],
    fill_rgb,
    jitter: tf.Tensor | None = None,
    model_input_mean_bgr: tuple[float, float, float] | None = None,
) -> tf.Tensor:
    """Resample the window ``geometry`` of ``image`` to ``output_size`` (bilinear, half-pixel
    centres as ``tf.image.resize``) and apply the drawn colour ``jitter``
    (:func:`draw_jitter`; none by default). Output pixels off the source image are exactly
    ``fill_rgb`` and not jittered. Returns float32 RGB ``[H, W, 3]``, 0..255, or with
    ``model_input_mean_bgr`` the model's input (:func:`model_input` of that).

    The pixel work is :func:`tlt_core.data.render_cv.render_window` (OpenCV, 8-bit).
    """
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    pixels = tf.numpy_function(
        render_window,
        [
            image,
            geometry.canvas_hw,
            geometry.origin_yx,
            geometry.flip,
            tf.constant(output_size, tf.int32),
            tf.constant(fill_rgb, tf.float32),
            tf.constant(NEUTRAL_JITTER, tf.float32) if jitter is None else jitter,
            tf.constant(model_input_mean_bgr or (), tf.float32),
        ],
        tf.float32,
        stateful=False,  # a pure function of its inputs: the seed is one of them
        name="render_window",
    )
    pixels.set_shape([output_size[0], output_size[1], 3])
    return pixels


def model_input(pixels: tf.Tensor, mean_bgr) -> tf.Tensor:
    """RGB float pixels ``[..., 3]`` (0..255) -> the SSD model's input: BGR minus the
    spec's ``image_mean`` (given in BGR order, as 000 documents).

    A channel permutation by matrix product plus ``bias_add``: TensorFlow's reversing
    slice over a 3-wide last axis costs three times as much on the CPU.
    """
    permute = tf.constant([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], tf.float32)
    pixels = tf.convert_to_tensor(pixels, tf.float32)
    bgr = tf.reshape(tf.reshape(pixels, [-1, 3]) @ permute, tf.shape(pixels))
    return tf.nn.bias_add(bgr, -tf.constant(mean_bgr, tf.float32))


# ITU-R BT.601 luma weights (OpenCV's BGR2GRAY), in BGR order; they sum to 1, so the grey
# of (BGR minus a mean l on every channel) is the grey of BGR minus l.
GREY_WEIGHTS_BGR = (0.114, 0.587, 0.299)


def model_channels(inputs: tf.Tensor, channels: int) -> tf.Tensor:
    """The model's input ``[..., 3]`` (BGR minus the mean) with ``channels`` channels: as it
    is for 3, its grey ``[..., 1]`` for 1 (``output_channel: 1``; the spec's ``l`` mean is
    on every channel of ``image_mean_bgr``). The one place a grey input is made."""
    if channels == 3:
        return inputs
    weights = tf.constant(GREY_WEIGHTS_BGR, tf.float32)
    return tf.reduce_sum(tf.convert_to_tensor(inputs, tf.float32) * weights, -1, keepdims=True)


def boxes_to_output(boxes: tf.Tensor, geometry: Geometry, output_size: tuple[int, int]):
    """Boxes on the canvas scaled to the output image."""
    sy = output_size[0] / geometry.canvas_hw[0]
    sx = output_size[1] / geometry.canvas_hw[1]
    return boxes * tf.stack([sx, sy, sx, sy])


def augment_example(
    image: tf.Tensor, boxes: tf.Tensor, seed, config: AugmentConfig
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The training chain on one example.

    ``image``: RGB ``[H, W, 3]`` (uint8 or float, 0..255); ``boxes``: float32 ``[N, 4]``
    pixel corners; ``seed``: int ``[2]``. Returns ``(image float32 [out_h, out_w, 3] RGB
    0..255, boxes float32 [M, 4] pixel corners in the output image, kept int32 [M])``:
    ``kept`` indexes the input boxes that survive (gather per-box labels with it).
    """
    seed = _as_seed(seed)
    s_zoom, s_crop, s_flip, s_colour = _split(seed, 4)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    kept = tf.range(tf.shape(boxes)[0], dtype=tf.int32)
    geometry = identity_geometry(image)
    if config.zoom_out_enabled:
        geometry, boxes = zoom_out(
            geometry, boxes, s_zoom, config.zoom_out_min_scale, config.zoom_out_max_scale
        )
    if config.crop_enabled:
        geometry, boxes, crop_kept = random_crop(
            geometry,
            boxes,
            s_crop,
            min_scale=config.random_crop_min_scale,
            max_scale=config.random_crop_max_scale,
            min_ar=config.random_crop_min_ar,
            max_ar=config.random_crop_max_ar,
        )
        kept = tf.gather(kept, crop_kept)
    if config.flip_enabled:
        geometry, boxes = random_flip(geometry, boxes, s_flip, config.random_flip)
    jitter = draw_jitter(s_colour, config) if config.photometric_enabled else None
    pixels = render(
        image, geometry, config.output_size, config.fill_rgb, jitter, config.model_input_mean_bgr
    )
    if config.model_input_mean_bgr is not None:
        pixels = model_channels(pixels, config.output_channel)
    boxes = boxes_to_output(boxes, geometry, config.output_size)
    # A box can vanish (zero width or height) only if it was degenerate or clipped away.
    alive = tf.reshape(tf.where((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])), [-1])
    return pixels, tf.gather(boxes, alive), tf.gather(kept, tf.cast(alive, tf.int32))


def resize_example(
    image: tf.Tensor, boxes: tf.Tensor, output_size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Evaluation: resize only (bilinear, half-pixel centres, no antialias: what
    :func:`render` does for the identity geometry, by TF's faster dedicated kernel); boxes
    scaled with the image, none dropped."""
    pixels = tf.image.resize(image, output_size, method="bilinear", antialias=False)
    geometry = identity_geometry(image)
    boxes = boxes_to_output(tf.convert_to_tensor(boxes, tf.float32), geometry, output_size)
    return pixels, boxes


def augment_config(experiment) -> AugmentConfig:
    """The experiment's resolved augmentation settings as an :class:`AugmentConfig`."""
    resolved = experiment.augmentation
    mean_bgr = tuple(float(v) for v in experiment.image_mean_bgr)
    height, width = experiment.input_shape[:2]
    return AugmentConfig(
        output_height=int(height),
        output_width=int(width),
        random_crop_min_scale=float(resolved.random_crop_min_scale),
        random_crop_max_scale=float(resolved.random_crop_max_scale),
        random_crop_min_ar=float(resolved.random_crop_min_ar),
        random_crop_max_ar=float(resolved.random_crop_max_ar),
        zoom_out_min_scale=float(resolved.zoom_out_min_scale),
        zoom_out_max_scale=float(resolved.zoom_out_max_scale),
        brightness=float(resolved.brightness),
        contrast=float(resolved.contrast),
        saturation=float(resolved.saturation),
        hue=float(resolved.hue),
        random_flip=float(resolved.random_flip),
        fill_rgb=(mean_bgr[2], mean_bgr[1], mean_bgr[0]),
        model_input_mean_bgr=mean_bgr,
        output_channel=int(experiment.input_shape[2]),
    )


class SsdTransform:
    """The SSD chain as the shared input pipeline's ``DetectionTransform``."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        self.output_size = config.output_size
        self.channels = config.output_channel if config.model_input_mean_bgr else 3

    @classmethod
    def from_spec(cls, experiment) -> SsdTransform:
        return cls(augment_config(experiment))

    def train(self, image, boxes, seed):
        return augment_example(image, boxes, seed, self.config)

    def evaluate(self, image, boxes):
        pixels, boxes = resize_example(image, boxes, self.config.output_size)
        inputs = model_input(pixels, self.config.model_input_mean_bgr)
        return model_channels(inputs, self.config.output_channel), boxes
