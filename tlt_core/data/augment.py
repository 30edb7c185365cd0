"""The SSD training augmentation chain, as TensorFlow ops on one image and its boxes.

The chain of the SSD paper (sections 2.2 and 3.6), configured by TLT 3.0's
``augmentation_config`` (000): zoom-out, IoU-constrained random crop, horizontal flip,
resize to the output size, and photometric distortion (brightness, contrast, saturation,
hue, in SSD's random order). Evaluation only resizes (:func:`resize_example`).

Images are RGB, values 0..255 (uint8 as decoded, or float). Boxes are pixel corners
``[x1, y1, x2, y2]`` of the image they travel with, continuous (width = x2 - x1).

How it is made fast: the geometric steps (zoom-out, crop, flip) only move a *window*
(:class:`Geometry`: the current canvas size, where the source image sits on it, whether
it is mirrored) and the boxes; one bilinear resampling (:func:`render`) then reads the
output pixels straight from the decoded image, so the zoomed-out canvas (up to 4x4 times
the image) is never built. Output pixels that fall outside the source image take the fill
colour (the image mean, as SSD fills its expanded canvas). The photometric distortion is
applied after the resampling, to the output pixels that come from the image (not the fill):
it is per pixel, so this equals distorting first up to the interpolation of a handful of
border pixels, at a fraction of the cost (TLT's own DALI pipeline orders it the same way).

Every random draw is stateless, from a ``seed`` (int ``[2]`` tensor) split per step, so the
same seed gives the same output. A step is removed from the graph, not just made neutral,
when it is disabled as 000 says: ``random_crop_min_scale = random_crop_max_scale = 1``,
``zoom_out_min_scale = zoom_out_max_scale = 1``, a colour delta of 0, ``random_flip = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf

from tlt_core.boxes.iou import iou_matrix_ops

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
# Mid-grey: the contrast factor stretches values away from it (SSD-Keras/TLT convention).
CONTRAST_CENTRE = 127.5


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


def _axis_samples(
    out_size: int,
    canvas: tf.Tensor,
    origin: tf.Tensor,
    src_size: tf.Tensor,
    mirrored: tf.Tensor | bool = False,
):
    """Along one axis: the source pixel-centre index sampled by the first and the last output
    pixel (sampling is linear in between), and which output pixels lie on the source image."""
    centres = (tf.range(out_size, dtype=tf.float32) + 0.5) * (canvas / out_size)
    centres = tf.where(mirrored, canvas - centres, centres)
    src = centres - origin  # continuous source coordinate of each output pixel centre
    on_image = (src >= 0.0) & (src < src_size)
    return src[0] - 0.5, src[-1] - 0.5, on_image


def _edge_border(image: tf.Tensor) -> tf.Tensor:
    """The image with its edge rows and columns repeated once (concat: ~7x cheaper than a
    SYMMETRIC tf.pad on the CPU)."""
    image = tf.concat([image[:1], image, image[-1:]], axis=0)
    return tf.concat([image[:, :1], image, image[:, -1:]], axis=1)


def render(
    image: tf.Tensor, geometry: Geometry, output_size: tuple[int, int], fill_rgb
) -> tuple[tf.Tensor, tf.Tensor]:
    """Resample the window ``geometry`` of ``image`` to ``output_size`` (bilinear).

    Pixel centres follow TF's half-pixel convention, so the identity geometry gives
    ``tf.image.resize(image, output_size)`` (bilinear, no antialias). Output pixels off the
    source image take ``fill_rgb``. Returns ``(image float32 [H, W, 3], on_image bool
    [H, W, 1])``.

    One fused ``crop_and_resize`` does the sampling (a mirrored window is a box with
    x1 > x2). Its sample positions run corner to corner, so the window is given by the
    positions of the first and last output pixel centres; the image gets a 1-pixel edge
    border first so that samples within half a pixel of its edge are clamped to the edge
    (as ``tf.image.resize`` does) rather than extrapolated.
    """
    out_h, out_w = output_size
    src_hw = tf.cast(tf.shape(image)[:2], tf.float32)
    y_first, y_last, on_y = _axis_samples(
        out_h, geometry.canvas_hw[0], geometry.origin_yx[0], src_hw[0]
    )
    x_first, x_last, on_x = _axis_samples(
        out_w, geometry.canvas_hw[1], geometry.origin_yx[1], src_hw[1], geometry.flip
    )
    padded = _edge_border(image)
    # Normalised by (padded size - 1): crop_and_resize's coordinate of the last pixel centre.
    y_scale, x_scale = src_hw[0] + 1.0, src_hw[1] + 1.0
    box = tf.stack(
        [
            (y_first + 1.0) / y_scale,
            (x_first + 1.0) / x_scale,
            (y_last + 1.0) / y_scale,
            (x_last + 1.0) / x_scale,
        ]
    )
    pixels = tf.image.crop_and_resize(
        padded[None], box[None], [0], [out_h, out_w], method="bilinear", extrapolation_value=0.0
    )[0]
    on_image = (on_y[:, None] & on_x[None, :])[..., None]
    fill = tf.constant(fill_rgb, tf.float32)
    return tf.where(on_image, pixels, fill), on_image


def boxes_to_output(boxes: tf.Tensor, geometry: Geometry, output_size: tuple[int, int]):
    """Boxes on the canvas scaled to the output image."""
    sy = output_size[0] / geometry.canvas_hw[0]
    sx = output_size[1] / geometry.canvas_hw[1]
    return boxes * tf.stack([sx, sy, sx, sy])


def _brightness(image, seed, delta):
    s_apply, s_value = _split(seed, 2)
    shift = tf.where(
        _uniform(s_apply, []) < PHOTOMETRIC_STEP_PROBABILITY,
        _uniform(s_value, [], -delta, delta),
        0.0,
    )
    return tf.clip_by_value(image + shift, 0.0, 255.0)


def _contrast(image, seed, delta):
    s_apply, s_value = _split(seed, 2)
    factor = tf.where(
        _uniform(s_apply, []) < PHOTOMETRIC_STEP_PROBABILITY,
        _uniform(s_value, [], 1.0 - delta, 1.0 + delta),
        1.0,
    )
    return tf.clip_by_value(CONTRAST_CENTRE + (image - CONTRAST_CENTRE) * factor, 0.0, 255.0)


def scale_saturation(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """HSV saturation times ``factor`` (clipped to 1), hue and value kept, computed in RGB.

    With v = max and s = (v - min) / v, scaling s moves every channel towards or away from
    v: c' = v - (v - c) * min(factor, v / (v - min)). Equals ``tf.image.adjust_saturation``
    at a third of its cost (no HSV round trip).
    """
    value = tf.reduce_max(image, axis=-1, keepdims=True)
    chroma = value - tf.reduce_min(image, axis=-1, keepdims=True)
    scale = tf.minimum(factor, value / tf.maximum(chroma, 1e-6))
    # Rounding can leave the smallest channel a hair below 0; keep the 0..255 range exact.
    return tf.clip_by_value(value - (value - image) * scale, 0.0, 255.0)


def _saturation_hue(image, seed, saturation, hue_degrees):
    """Saturation then hue (SSD applies them back to back), each with probability 1/2."""
    s_sat_apply, s_sat, s_hue_apply, s_hue = _split(seed, 4)
    if saturation > 0:
        factor = _uniform(s_sat, [], 1.0 - saturation, 1.0 + saturation)
        image = tf.cond(
            _uniform(s_sat_apply, []) < PHOTOMETRIC_STEP_PROBABILITY,
            lambda: scale_saturation(image, factor),
            lambda: image,
        )
    if hue_degrees > 0:
        shift = _uniform(s_hue, [], -hue_degrees, hue_degrees) / 360.0
        # TF's fused AdjustHue kernel does the HSV round trip per pixel; it is scale-free,
        # so it works on 0..255 values directly.
        image = tf.cond(
            _uniform(s_hue_apply, []) < PHOTOMETRIC_STEP_PROBABILITY,
            lambda: tf.clip_by_value(tf.image.adjust_hue(image, shift), 0.0, 255.0),
            lambda: image,
        )
    return image


def photometric_distort(image: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """SSD's colour jitter on a float RGB image (0..255); each step with probability 1/2.

    Order as the SSD reference: brightness, then either contrast, saturation, hue or
    saturation, hue, contrast (a coin decides). Disabled steps (delta 0) are left out.
    """
    seed = _as_seed(seed)
    s_bright, s_contrast, s_sat_hue, s_order = _split(seed, 4)
    if config.brightness > 0:
        image = _brightness(image, s_bright, float(config.brightness))

    def contrast(img):
        return _contrast(img, s_contrast, float(config.contrast)) if config.contrast > 0 else img

    def saturation_hue(img):
        if config.saturation > 0 or config.hue > 0:
            return _saturation_hue(img, s_sat_hue, float(config.saturation), float(config.hue))
        return img

    if config.contrast > 0 and (config.saturation > 0 or config.hue > 0):
        contrast_first = _uniform(s_order, []) < 0.5
        return tf.cond(
            contrast_first,
            lambda: saturation_hue(contrast(image)),
            lambda: contrast(saturation_hue(image)),
        )
    return saturation_hue(contrast(image))


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
    pixels, on_image = render(image, geometry, config.output_size, config.fill_rgb)
    if config.photometric_enabled:
        pixels = tf.where(on_image, photometric_distort(pixels, s_colour, config), pixels)
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
