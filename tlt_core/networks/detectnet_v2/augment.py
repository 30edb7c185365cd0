"""DetectNet_v2 training augmentation (002, "Augmentation module") as the shared input
pipeline's ``DetectionTransform``.

Per example, drawn from its seed (stateless, so the same seed gives the same output):

- zoom: a factor ``z`` uniform in ``[zoom_min, zoom_max]``; the output shows a window of
  ``1 / z`` times the image size (``z > 1`` enlarges, ``z < 1`` shows the image smaller,
  filled around with the image mean), centred, then
- translation: the window moves by up to ``translate_max_x`` / ``translate_max_y`` output
  pixels each way (uniform);
- horizontal flip with ``hflip_probability``;
- colour: hue rotated by up to ``hue_rotation_max`` degrees, saturation scaled by
  ``1 +- saturation_shift_max``, contrast by ``1 +- contrast_scale_max``, brightness
  shifted by a normal draw of ``color_shift_stddev`` (of the 0..255 range).

The pixels are touched once, by the shared OpenCV renderer
(`tlt_core.data.render_cv.render_window`: one bilinear resampling of the window, the colour
jitter on 8-bit pixels, BGR minus the mean). Boxes are moved with the window, clipped to the
output and dropped when nothing of them is left. Evaluation resizes only.
"""

from __future__ import annotations

import tensorflow as tf

from tlt_core.data.render_cv import render_window

NEUTRAL_JITTER = (0.0, 1.0, 1.0, 0.0, 1.0)


class DetectNetTransform:
    """``train`` / ``evaluate`` for `tlt_core.data.pipeline.build_dataset`."""

    def __init__(self, augmentation, mean_bgr) -> None:
        self.config = augmentation
        self.mean_bgr = tuple(float(v) for v in mean_bgr)
        self.output_size = (int(augmentation.output_height), int(augmentation.output_width))

    @classmethod
    def from_spec(cls, spec) -> DetectNetTransform:
        return cls(spec.augmentation, spec.image_mean_bgr)

    def _render(self, image, canvas_hw, origin_yx, flip, jitter):
        fill_rgb = (self.mean_bgr[2], self.mean_bgr[1], self.mean_bgr[0])
        pixels = tf.numpy_function(
            render_window,
            [
                image,
                canvas_hw,
                origin_yx,
                flip,
                tf.constant(self.output_size, tf.int32),
                tf.constant(fill_rgb, tf.float32),
                jitter,
                tf.constant(self.mean_bgr, tf.float32),
            ],
            tf.float32,
            stateful=False,
            name="render_window",
        )
        pixels.set_shape([self.output_size[0], self.output_size[1], 3])
        return pixels

    def train(self, image, boxes, seed):
        c = self.config
        image = tf.convert_to_tensor(image)
        if image.dtype != tf.uint8:
            image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        u = tf.random.stateless_uniform([8], seed=tf.cast(seed, tf.int64))
        normal = tf.random.stateless_normal([1], seed=tf.cast(seed, tf.int64) + 1)[0]
        out_h, out_w = (float(v) for v in self.output_size)
        src_hw = tf.cast(tf.shape(image)[:2], tf.float32)
        zoom = c.zoom_min + (c.zoom_max - c.zoom_min) * u[0]
        canvas_hw = src_hw / zoom  # the window, in source pixels
        # Window top-left in source pixels: centred, then translated (output px -> source px).
        shift_y = (2.0 * u[1] - 1.0) * c.translate_max_y * canvas_hw[0] / out_h
        shift_x = (2.0 * u[2] - 1.0) * c.translate_max_x * canvas_hw[1] / out_w
        top = (src_hw[0] - canvas_hw[0]) / 2.0 + shift_y
        left = (src_hw[1] - canvas_hw[1]) / 2.0 + shift_x
        flip = u[3] < c.hflip_probability
        jitter = tf.stack(
            [
                normal * c.color_shift_stddev * 255.0,
                1.0 + (2.0 * u[4] - 1.0) * c.contrast_scale_max,
                1.0 + (2.0 * u[5] - 1.0) * c.saturation_shift_max,
                (2.0 * u[6] - 1.0) * c.hue_rotation_max,
                1.0,
            ]
        )
        pixels = self._render(image, canvas_hw, -tf.stack([top, left]), flip, jitter)

        x1 = boxes[:, 0] - left
        x2 = boxes[:, 2] - left
        x1, x2 = (
            tf.where(flip, canvas_hw[1] - x2, x1),
            tf.where(flip, canvas_hw[1] - x1, x2),
        )
        sx, sy = out_w / canvas_hw[1], out_h / canvas_hw[0]
        moved = tf.stack(
            [
                tf.clip_by_value(x1 * sx, 0.0, out_w),
                tf.clip_by_value((boxes[:, 1] - top) * sy, 0.0, out_h),
                tf.clip_by_value(x2 * sx, 0.0, out_w),
                tf.clip_by_value((boxes[:, 3] - top) * sy, 0.0, out_h),
            ],
            axis=1,
        )
        alive = tf.reshape(
            tf.where((moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])), [-1]
        )
        alive = tf.cast(alive, tf.int32)
        return pixels, tf.gather(moved, alive), alive

    def evaluate(self, image, boxes):
        image = tf.convert_to_tensor(image)
        if image.dtype != tf.uint8:
            image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        src_hw = tf.cast(tf.shape(image)[:2], tf.float32)
        pixels = self._render(
            image,
            src_hw,
            tf.zeros([2], tf.float32),
            tf.constant(False),
            tf.constant(NEUTRAL_JITTER, tf.float32),
        )
        scale = tf.stack(
            [
                self.output_size[1] / src_hw[1],
                self.output_size[0] / src_hw[0],
                self.output_size[1] / src_hw[1],
                self.output_size[0] / src_hw[0],
            ]
        )
        return pixels, tf.convert_to_tensor(boxes, tf.float32) * scale
