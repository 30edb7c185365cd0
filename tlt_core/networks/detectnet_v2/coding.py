"""DetectNet_v2 box coding: corners <-> per-cell scaled offsets (the one place for it).

A grid cell ``(row i, column j)`` at stride 16 has the reference point
``(j * 16 + offset, i * 16 + offset)`` in input pixels, and a box ``[x1, y1, x2, y2]`` is
coded as::

    ((ref_x - x1) / scale, (ref_y - y1) / scale, (x2 - ref_x) / scale, (y2 - ref_y) / scale)

with ``scale`` / ``offset`` from ``model_config.objective_set.bbox`` (35 and 0.5 in 002).
This is the coding DeepStream's built-in DetectNet_v2 parser decodes (its grid centres are
``(j * stride + 0.5) / 35``, boxes ``x1 = (centre - out) * 35``, ``x2 = (out + centre) *
35``), so an exported model needs no custom parser when scale is 35 and offset 0.5.

`encode_ops` (TensorFlow, input pipeline) and `decode` (NumPy, post-processing) are the
two directions.
"""

from __future__ import annotations

import numpy as np

STRIDE = 16


def reference_points(rows: int, cols: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """``(ref_x [cols], ref_y [rows])`` in input pixels."""
    return (
        np.arange(cols, dtype=np.float32) * STRIDE + offset,
        np.arange(rows, dtype=np.float32) * STRIDE + offset,
    )


def decode(bbox: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """``bbox`` [..., rows, cols, C, 4] coded -> corners [..., rows, cols, C, 4] in pixels."""
    bbox = np.asarray(bbox, dtype=np.float32)
    rows, cols = bbox.shape[-4], bbox.shape[-3]
    ref_x, ref_y = reference_points(rows, cols, offset)
    ref_x = ref_x[None, :, None]
    ref_y = ref_y[:, None, None]
    return np.stack(
        [
            ref_x - bbox[..., 0] * scale,
            ref_y - bbox[..., 1] * scale,
            ref_x + bbox[..., 2] * scale,
            ref_y + bbox[..., 3] * scale,
        ],
        axis=-1,
    )


def encode_ops(boxes, ref_x, ref_y, scale: float):
    """TF: ``boxes`` [..., 4] corners at cells with reference points broadcast to them."""
    import tensorflow as tf

    return tf.stack(
        [
            (ref_x - boxes[..., 0]) / scale,
            (ref_y - boxes[..., 1]) / scale,
            (boxes[..., 2] - ref_x) / scale,
            (boxes[..., 3] - ref_y) / scale,
        ],
        axis=-1,
    )
