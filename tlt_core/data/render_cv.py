"""The pixel work of the training augmentation, in OpenCV: one resampling of a window of the
decoded image to the output size, then SSD's colour jitter, on 8-bit pixels.

Plain numpy in, numpy out (no TensorFlow): :mod:`tlt_core.networks.ssd.augment` decides the window
and draws the jitter in the graph and calls :func:`render_window` through
``tf.numpy_function``. OpenCV releases the GIL while it works, so the input pipeline's
parallel calls run on every core; the same work as TensorFlow ops on the float image cost
about five times as much CPU (1.5 against 8 ms per KITTI frame on this project's 2-core
machine; ``python -m bench --only input`` measures the whole pipeline).

Conventions (the same as :func:`tlt_core.networks.ssd.augment.render`): pixel centres at half
pixels (TensorFlow's resize), a window is the canvas size, where the source image sits on
it and whether it is mirrored; output pixels off the source image take the fill colour and
no jitter. The resampling is bilinear with sample positions rounded to OpenCV's 1/32 pixel
and values rounded to 8 bits: a plain resize matches ``tf.image.resize`` to half a level.

Colour jitter (each amount already drawn; a neutral value means "not applied"): brightness
``+b`` and contrast ``127.5 + (x - 127.5) * c`` are 256-entry lookup tables; saturation
``* s`` and hue ``+ h`` degrees act on OpenCV's full-range 8-bit HSV through one lookup
table per channel. Order: brightness, then contrast, saturation, hue or saturation, hue,
contrast.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

CONTRAST_CENTRE = 127.5
_LEVELS = np.arange(256, dtype=np.float32)
_IDENTITY = np.arange(256, dtype=np.uint8)
HUE_LEVELS = 256  # OpenCV's full-range 8-bit hue: 256 steps per turn


def _axis(out_size: int, canvas: float, origin: float, src_size: int, mirrored: bool):
    """Along one axis: ``(a, b)`` of the affine map from output pixel index to source pixel
    index (centres at integers, as OpenCV counts), and the range ``[first, stop)`` of
    output pixels whose centre lies on the source image."""
    step = canvas / out_size
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * step
    if mirrored:
        a, b = -step, canvas - 0.5 * step - origin - 0.5
        src = canvas - centres - origin
    else:
        a, b = step, 0.5 * step - origin - 0.5
        src = centres - origin
    on = np.flatnonzero((src >= 0.0) & (src < src_size))
    first, stop = (int(on[0]), int(on[-1]) + 1) if on.size else (0, 0)
    return a, b, first, stop


def _lut(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _brightness_contrast_lut(brightness: float, contrast: float | None) -> np.ndarray:
    values = np.clip(_LEVELS + brightness, 0.0, 255.0)
    if contrast is not None:
        values = CONTRAST_CENTRE + (values - CONTRAST_CENTRE) * contrast
    return _lut(values)


def _contrast_lut(contrast: float) -> np.ndarray:
    return _lut(CONTRAST_CENTRE + (_LEVELS - CONTRAST_CENTRE) * contrast)


def _saturation_hue(pixels: np.ndarray, saturation: float, hue_degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV_FULL)
    shift = round(hue_degrees / 360.0 * HUE_LEVELS)
    table = np.stack(
        [
            ((_IDENTITY.astype(np.int32) + shift) % HUE_LEVELS).astype(np.uint8),
            _lut(_LEVELS * saturation),
            _IDENTITY,
        ],
        axis=-1,
    )[:, None, :]
    return cv2.cvtColor(cv2.LUT(hsv, table), cv2.COLOR_HSV2RGB_FULL)


def jitter_colours(
    pixels: np.ndarray,
    brightness: float = 0.0,
    contrast: float = 1.0,
    saturation: float = 1.0,
    hue_degrees: float = 0.0,
    contrast_first: bool = True,
) -> np.ndarray:
    """SSD's photometric distortion of an 8-bit RGB image ``[H, W, 3]`` (see module doc)."""
    contrast_on = contrast != 1.0
    colour_on = saturation != 1.0 or hue_degrees != 0.0
    early_contrast = contrast if contrast_on and (contrast_first or not colour_on) else None
    if brightness != 0.0 or early_contrast is not None:
        pixels = cv2.LUT(pixels, _brightness_contrast_lut(brightness, early_contrast))
    if colour_on:
        pixels = _saturation_hue(pixels, saturation, hue_degrees)
        if contrast_on and not contrast_first:
            pixels = cv2.LUT(pixels, _contrast_lut(contrast))
    return pixels


def render_window(
    image: np.ndarray,
    canvas_hw: np.ndarray,
    origin_yx: np.ndarray,
    flip: bool,
    output_hw: np.ndarray,
    fill_rgb: np.ndarray,
    jitter: np.ndarray,
    model_input_mean_bgr: np.ndarray,
) -> np.ndarray:
    """Resample the window of ``image`` (uint8 RGB ``[H, W, 3]``) to ``output_hw`` and jitter
    its colours; float32 RGB 0..255, off-image pixels exactly ``fill_rgb``.

    ``jitter``: ``[brightness, contrast, saturation, hue_degrees, contrast_first]`` (neutral
    ``[0, 1, 1, 0, 1]``). ``model_input_mean_bgr``: empty, or 3 values: then the result is
    the model's input instead, BGR minus this mean (done here on 8-bit pixels because the
    same two steps as TensorFlow ops on the float image cost more than the resampling).
    """
    out_h, out_w = int(output_hw[0]), int(output_hw[1])
    src_h, src_w = image.shape[:2]
    ay, by, row0, row1 = _axis(out_h, float(canvas_hw[0]), float(origin_yx[0]), src_h, False)
    ax, bx, col0, col1 = _axis(out_w, float(canvas_hw[1]), float(origin_yx[1]), src_w, bool(flip))
    fill = np.asarray(fill_rgb, np.float32)
    mean = np.asarray(model_input_mean_bgr, np.float32)
    if mean.size:
        fill = fill[::-1] - mean
    if row1 <= row0 or col1 <= col0:
        return np.tile(fill, (out_h, out_w, 1))
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    # Only the output rectangle that lies on the image is resampled (the rest is fill), from
    # only the source pixels it reads, given a 1-pixel edge border: samples within half a
    # pixel of the image edge then take the edge pixel (as tf.image.resize does) on OpenCV's
    # fast in-bounds path (its own border modes cost 3x more).
    x0, x1 = _source_span(ax, bx, col0, col1, src_w)
    y0, y1 = _source_span(ay, by, row0, row1, src_h)
    source = cv2.copyMakeBorder(image[y0:y1, x0:x1], 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    matrix = np.array(
        [[ax, 0.0, bx + ax * col0 - x0 + 1.0], [0.0, ay, by + ay * row0 - y0 + 1.0]], np.float64
    )
    pixels = cv2.warpAffine(
        source,
        matrix,
        (col1 - col0, row1 - row0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    brightness, contrast, saturation, hue, contrast_first = (float(v) for v in jitter)
    pixels = jitter_colours(pixels, brightness, contrast, saturation, hue, contrast_first > 0.5)
    if mean.size:
        inner = cv2.subtract(
            cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
            (*mean.astype(np.float64).tolist(), 0.0),
            dtype=cv2.CV_32F,
        )
    else:
        inner = pixels.astype(np.float32)
    return cv2.copyMakeBorder(
        inner,
        row0,
        out_h - row1,
        col0,
        out_w - col1,
        cv2.BORDER_CONSTANT,
        value=fill.astype(np.float64).tolist(),
    )


def _source_span(a: float, b: float, first: int, stop: int, size: int) -> tuple[int, int]:
    """Source pixels ``[start, end)`` that bilinear samples at ``a * j + b`` for output pixels
    ``first <= j < stop`` read (with one pixel to spare), within ``[0, size)``."""
    ends = (a * first + b, a * (stop - 1) + b)
    low, high = math.floor(min(ends)) - 1, math.floor(max(ends)) + 3
    return max(low, 0), min(high, size)
