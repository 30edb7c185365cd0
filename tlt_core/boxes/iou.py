"""Pairwise intersection-over-union of corner boxes ``[x1, y1, x2, y2]``.

Boxes are continuous (area = (x2 - x1) * (y2 - y1), no +1). A pair whose union is empty
(two degenerate boxes) has IoU 0. IoU does not change when x and y are scaled by different
factors, so it may be computed on normalised or pixel boxes alike.

``iou_matrix`` is numpy (evaluation, NMS); ``iou_matrix_ops`` is the same formula in
``keras.ops`` for the box encoder, which runs inside ``tf.data`` (TF backend) or eagerly
(JAX backend).
"""

from __future__ import annotations

import numpy as np


def iou_from_columns(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2) -> np.ndarray:
    """IoU of boxes given as broadcastable coordinate arrays (float64).

    The one numpy formula: ``inter / (area_a + area_b - inter)``, 0 where the union is empty.
    """
    # In place where the full [N, M] arrays are made: for thousands of boxes (DetectNet_v2
    # clustering) temporaries, not arithmetic, cost the time. Same operations, same order.
    inter = np.asarray(np.minimum(ax2, bx2) - np.maximum(ax1, bx1))
    np.maximum(inter, 0.0, out=inter)
    ih = np.asarray(np.minimum(ay2, by2) - np.maximum(ay1, by1))
    np.maximum(ih, 0.0, out=ih)
    inter *= ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    out = np.zeros(union.shape)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU ``[..., N, M]`` of ``boxes_a [..., N, 4]`` against ``boxes_b [..., M, 4]`` (float64)."""
    a = np.asarray(boxes_a, dtype=np.float64)[..., :, None, :]
    b = np.asarray(boxes_b, dtype=np.float64)[..., None, :, :]
    return iou_from_columns(*(a[..., i] for i in range(4)), *(b[..., i] for i in range(4)))


def iou_pairs(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of ``boxes_a [K, 4]`` and ``boxes_b [K, 4]`` (float64 ``[K]``)."""
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    return iou_from_columns(*(a[:, i] for i in range(4)), *(b[:, i] for i in range(4)))


def iou_matrix_ops(boxes_a, boxes_b):
    """``keras.ops`` IoU ``[..., N, M]`` of ``boxes_a [..., N, 4]`` and ``boxes_b [..., M, 4]``."""
    from keras import ops

    a = ops.expand_dims(boxes_a, -2)
    b = ops.expand_dims(boxes_b, -3)
    iw = ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0])
    ih = ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1])
    inter = ops.maximum(iw, 0.0) * ops.maximum(ih, 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    positive = union > 0
    return ops.where(positive, inter / ops.where(positive, union, ops.ones_like(union)), 0.0)
