"""Training targets of DetectNet_v2: coverage ellipses and coded boxes per grid cell.

For each object of class ``c`` (pixel corners in the network input, width ``w``, height
``h``), per ``bbox_rasterizer_config.target_class_config[c]``:

- the coverage region is the ellipse centred at ``(x1 + cov_center_x w, y1 +
  cov_center_y h)`` with radii ``max(cov_radius_x w / 2, bbox_min_radius * 16)`` and
  ``max(cov_radius_y h / 2, bbox_min_radius * 16)`` (``cov_radius`` 1 is the ellipse
  inscribed in the box; ``bbox_min_radius`` is in grid cells, so a small object still
  covers the cell it sits in);
- a grid cell whose centre ``((j + 0.5) 16, (i + 0.5) 16)`` lies in the ellipse
  (normalised distance ``d <= 1``) has coverage target 1 for class ``c`` and the box
  target of the object (`coding`); where ellipses of one class overlap, the object with
  the smaller ``d`` owns the cell;
- the dead zone: cells with ``1 < d <= 1 + deadzone_radius`` around an object's ellipse
  (and in no ellipse of that class) are left out of the coverage cost, so the cells at
  the border of an object are neither pushed to 1 nor to 0;
- objects narrower than ``min_bbox_width`` or lower than ``min_bbox_height`` (the
  preprocessing config) are not rasterised.

The result is one tensor ``y_true`` [B, rows, cols, 6 C]: ``[..., :C]`` coverage targets,
``[..., C:5C]`` box targets (class-major, 4 per class), ``[..., 5C:]`` the coverage cost
mask (0 in dead zones, 1 elsewhere). TensorFlow ops, for the tf.data input pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tlt_core.networks.detectnet_v2.coding import STRIDE, encode_ops, reference_points


@dataclass(frozen=True)
class RasterSettings:
    """Everything the rasteriser needs, per class in class_names order."""

    rows: int
    cols: int
    cov_center: np.ndarray  # [C, 2] (x, y)
    cov_radius: np.ndarray  # [C, 2]
    min_radius: np.ndarray  # [C] grid cells
    deadzone: float
    bbox_scale: float
    bbox_offset: float
    min_size: tuple[float, float] = (0.0, 0.0)  # (width, height)

    @property
    def num_classes(self) -> int:
        return int(self.cov_center.shape[0])

    @staticmethod
    def from_experiment(experiment) -> RasterSettings:
        rows, cols = experiment.grid_shape
        raster = experiment.raster
        return RasterSettings(
            rows=rows,
            cols=cols,
            cov_center=np.array([(r.cov_center_x, r.cov_center_y) for r in raster], np.float32),
            cov_radius=np.array([(r.cov_radius_x, r.cov_radius_y) for r in raster], np.float32),
            min_radius=np.array([r.bbox_min_radius for r in raster], np.float32),
            deadzone=float(experiment.deadzone_radius),
            bbox_scale=float(experiment.bbox_scale),
            bbox_offset=float(experiment.bbox_offset),
            min_size=tuple(experiment.min_bbox_size),
        )


def rasterize(boxes, classes, settings: RasterSettings):
    """``boxes`` [B, N, 4] pixel corners, ``classes`` [B, N] (1..C, 0 = padding) ->
    ``y_true`` [B, rows, cols, 6 C] as described in the module docstring."""
    import tensorflow as tf

    c = settings.num_classes
    # One padding object more, so that a batch without objects still has an axis to reduce.
    boxes = tf.pad(tf.cast(boxes, tf.float32), [[0, 0], [0, 1], [0, 0]])
    classes = tf.pad(tf.cast(classes, tf.int32), [[0, 0], [0, 1]])
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    valid = (
        (classes > 0)
        & (classes <= c)
        & (width > 0)
        & (height > 0)
        & (width >= settings.min_size[0])
        & (height >= settings.min_size[1])
    )
    index = tf.clip_by_value(classes - 1, 0, c - 1)  # [B, N]
    centre = tf.gather(tf.constant(settings.cov_center), index)  # [B, N, 2]
    radius = tf.gather(tf.constant(settings.cov_radius), index)
    min_radius = tf.gather(tf.constant(settings.min_radius), index) * STRIDE  # [B, N]
    ecx = boxes[..., 0] + centre[..., 0] * width
    ecy = boxes[..., 1] + centre[..., 1] * height
    rx = tf.maximum(radius[..., 0] * width / 2.0, min_radius)
    ry = tf.maximum(radius[..., 1] * height / 2.0, min_radius)
    rx = tf.maximum(rx, 1e-3)
    ry = tf.maximum(ry, 1e-3)

    cell_x = (np.arange(settings.cols, dtype=np.float32) + 0.5) * STRIDE
    cell_y = (np.arange(settings.rows, dtype=np.float32) + 0.5) * STRIDE
    dx = (cell_x[None, None, None, :] - ecx[..., None, None]) / rx[..., None, None]
    dy = (cell_y[None, None, :, None] - ecy[..., None, None]) / ry[..., None, None]
    dist = tf.sqrt(dx * dx + dy * dy)  # [B, N, rows, cols]

    one_hot = (tf.one_hot(index, c) > 0) & valid[..., None]  # [B, N, C]
    owner_of = one_hot[..., None, None]  # [B, N, C, 1, 1]
    dist_c = dist[:, :, None]  # [B, N, 1, rows, cols]
    inf = tf.constant(np.inf, tf.float32)
    inside = owner_of & (dist_c <= 1.0)
    masked = tf.where(inside, dist_c, inf)  # [B, N, C, rows, cols]
    best = tf.argmin(masked, axis=1, output_type=tf.int32)  # [B, C, rows, cols]
    covered = tf.reduce_any(inside, axis=1)  # [B, C, rows, cols]
    dead = tf.reduce_any(owner_of & (dist_c <= 1.0 + settings.deadzone), axis=1) & ~covered

    owner_boxes = tf.gather(boxes, best, batch_dims=1)  # [B, C, rows, cols, 4]
    ref_x, ref_y = reference_points(settings.rows, settings.cols, settings.bbox_offset)
    coded = encode_ops(
        owner_boxes, ref_x[None, None, None, :], ref_y[None, None, :, None], settings.bbox_scale
    )  # [B, C, rows, cols, 4]
    covered_f = tf.cast(covered, tf.float32)
    coded = coded * covered_f[..., None]

    cov = tf.transpose(covered_f, [0, 2, 3, 1])  # [B, rows, cols, C]
    bbox = tf.transpose(coded, [0, 2, 3, 1, 4])  # [B, rows, cols, C, 4]
    batch = tf.shape(cov)[0]
    bbox = tf.reshape(bbox, [batch, settings.rows, settings.cols, 4 * c])
    mask = 1.0 - tf.transpose(tf.cast(dead, tf.float32), [0, 2, 3, 1])
    return tf.concat([cov, bbox, mask], axis=-1)


def split_targets(y_true, num_classes: int):
    """``(cov [.., C], bbox [.., 4C], mask [.., C])`` of a ``y_true`` tensor (any backend)."""
    c = num_classes
    return y_true[..., :c], y_true[..., c : 5 * c], y_true[..., 5 * c :]
