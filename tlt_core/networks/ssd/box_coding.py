"""SSD box coding: match ground truth to anchors, encode offsets, decode predictions.

Matching (as TLT's SSD input encoder, from the Keras SSD port):

1. *Bipartite*: every ground-truth box gets one anchor. Conflicts are resolved greedily by
   IoU: repeatedly take the highest-IoU (gt, anchor) pair among the gts and anchors not
   matched yet (ties: lower gt index, then the anchor ``top_k`` returns first). A gt that
   overlaps no anchor at all still gets one (IoU 0).
2. *Multi*: every other anchor whose best IoU with any gt is ``>= pos_iou_threshold``
   (default 0.5) is positive for that gt (ties: lower gt index).
3. Remaining anchors whose best IoU is ``>= neg_iou_limit`` are *ignored* (class target
   -1); all others are background (0). TLT sets both thresholds to 0.5 (its
   ``ssd_config.pos_iou_thresh`` / ``neg_iou_thresh`` default), so by default there is no
   ignore band: every anchor is positive or background.

Ground truth slots with class 0 (padding), a class above ``num_classes`` (when given) or a
degenerate box (w or h <= 0) take no part.

Encoding (centre-size with variances ``v``; anchor ``a``, ground truth ``g``)::

    ((g.cx - a.cx) / a.w / v0, (g.cy - a.cy) / a.h / v1, log(g.w / a.w) / v2, log(g.h / a.h) / v3)

Loc targets of non-positive anchors are 0. Decoding inverts it and returns corners.
All boxes here are normalised to the network input (x / W, y / H); ``to_normalized`` and
``to_pixels`` convert at the edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tlt_core.boxes.iou import iou_matrix_ops

DEFAULT_POS_IOU_THRESHOLD = 0.5
DEFAULT_NEG_IOU_LIMIT = 0.5


def centroids_to_corners(boxes: np.ndarray) -> np.ndarray:
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)`` (numpy, any leading shape)."""
    b = np.asarray(boxes)
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def corners_to_centroids(boxes: np.ndarray) -> np.ndarray:
    """``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)`` (numpy, any leading shape)."""
    b = np.asarray(boxes)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def to_normalized(boxes_px: np.ndarray, image_size: Sequence[float]) -> np.ndarray:
    """Pixel corners -> corners normalised by ``image_size = (H, W)``."""
    h, w = float(image_size[0]), float(image_size[1])
    return np.asarray(boxes_px, dtype=np.float64) / np.array([w, h, w, h])


def to_pixels(boxes_norm: np.ndarray, image_size: Sequence[float]) -> np.ndarray:
    """Normalised corners -> pixel corners of an image of ``image_size = (H, W)``."""
    h, w = float(image_size[0]), float(image_size[1])
    return np.asarray(boxes_norm, dtype=np.float64) * np.array([w, h, w, h])


def _decode_with(xp, loc, anchors, variances):
    """The decoding formula, written once for numpy and ``keras.ops`` (``xp``)."""
    v = [float(x) for x in variances]
    cx = loc[..., 0] * v[0] * anchors[..., 2] + anchors[..., 0]
    cy = loc[..., 1] * v[1] * anchors[..., 3] + anchors[..., 1]
    w = xp.exp(loc[..., 2] * v[2]) * anchors[..., 2]
    h = xp.exp(loc[..., 3] * v[3]) * anchors[..., 3]
    return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def decode(loc: np.ndarray, anchors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Encoded offsets ``[..., A, 4]`` -> normalised corners ``[..., A, 4]`` (numpy)."""
    return _decode_with(np, np.asarray(loc), np.asarray(anchors, dtype=loc.dtype), variances)


def decode_ops(loc, anchors: np.ndarray, variances: Sequence[float]):
    """:func:`decode` in ``keras.ops`` (for in-graph use: export, the Keras model)."""
    from keras import ops

    anchors_t = ops.convert_to_tensor(np.asarray(anchors, dtype=np.float32))
    return _decode_with(ops, loc, anchors_t, variances)


def encode_numpy(boxes_norm: np.ndarray, anchors: np.ndarray, variances: Sequence[float]):
    """Encode normalised corners ``[..., A, 4]`` against ``anchors [A, 4]`` (numpy)."""
    g = corners_to_centroids(np.asarray(boxes_norm, dtype=np.float64))
    a = np.asarray(anchors, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    xy = (g[..., :2] - a[..., :2]) / a[..., 2:] / v[:2]
    wh = np.log(g[..., 2:] / a[..., 2:]) / v[2:]
    return np.concatenate([xy, wh], axis=-1)


def encode_batch(
    gt_boxes,
    gt_classes,
    anchors: np.ndarray,
    variances: Sequence[float],
    num_classes: int | None = None,
    *,
    pos_iou_threshold: float = DEFAULT_POS_IOU_THRESHOLD,
    neg_iou_limit: float = DEFAULT_NEG_IOU_LIMIT,
):
    """Training targets for a batch, in ``keras.ops`` (tf.data map under TF; eager under JAX).

    Args:
        gt_boxes: ``[B, N, 4]`` normalised corners.
        gt_classes: ``[B, N]`` int, model class index 1..C, 0 = padding.
        anchors: ``[A, 4]`` normalised ``(cx, cy, w, h)`` (:func:`generate_anchors`).
        variances: the 4 ``ssd_config.variances``.
        num_classes: C; when given, slots with a class above it are treated as padding.

    Returns:
        ``(cls_targets [B, A] int32, loc_targets [B, A, 4] float32)``: class 1..C of the
        matched gt, 0 background, -1 ignored (see the module docstring).
    """
    from keras import ops

    if neg_iou_limit > pos_iou_threshold:
        raise ValueError(
            f"neg_iou_limit {neg_iou_limit} must not exceed pos_iou_threshold {pos_iou_threshold}"
        )
    anchors = np.asarray(anchors, dtype=np.float32)
    num_anchors = anchors.shape[0]
    anchor_c = ops.convert_to_tensor(anchors)
    anchor_corners = ops.convert_to_tensor(centroids_to_corners(anchors).astype(np.float32))

    boxes = ops.cast(ops.convert_to_tensor(gt_boxes), "float32")
    classes = ops.cast(ops.convert_to_tensor(gt_classes), "int32")
    batch = ops.shape(boxes)[0]
    # One always-invalid slot at the end: every argmax below then has a row to land on,
    # also for images (or batches) without any ground truth.
    boxes = ops.concatenate([boxes, ops.zeros((batch, 1, 4), "float32")], axis=1)
    classes = ops.concatenate([classes, ops.zeros((batch, 1), "int32")], axis=1)
    n_slots = ops.shape(boxes)[1]

    valid = (classes > 0) & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    if num_classes is not None:
        valid = valid & (classes <= num_classes)

    sim = iou_matrix_ops(boxes, anchor_corners)  # [B, N+1, A]
    sim = ops.where(ops.expand_dims(valid, -1), sim, -1.0)

    # Greedy bipartite matching. Each gt can lose at most N-1 anchors to the other gts, so
    # its match is among its N+1 best anchors: the loop works on that top-k slice only.
    # (A dynamic slot count under tf.data: TF's top_k takes k as a tensor.)
    k = min(n_slots, num_anchors) if isinstance(n_slots, int) else ops.minimum(n_slots, num_anchors)
    top_vals, top_idx = ops.top_k(sim, k=k)  # [B, N+1, k]
    top_idx = ops.cast(top_idx, "int32")
    flat_idx = ops.reshape(top_idx, (batch, -1))

    def bipartite_step(_, state):
        vals, match = state
        flat = ops.reshape(vals, (batch, -1))
        pos = ops.cast(ops.argmax(flat, axis=1), "int32")
        best = ops.max(flat, axis=1)
        ok = best >= 0.0
        gt = pos // k
        anchor = ops.take_along_axis(flat_idx, ops.expand_dims(pos, 1), axis=1)[:, 0]
        row_hit = (ops.arange(n_slots, dtype="int32")[None, :] == gt[:, None]) & ok[:, None]
        match = ops.where(row_hit, anchor[:, None], match)
        taken = (top_idx == anchor[:, None, None]) & ok[:, None, None]
        vals = ops.where(row_hit[:, :, None] | taken, -1.0, vals)
        return vals, match

    match0 = ops.full((batch, n_slots), -1, dtype="int32")
    _, match = ops.fori_loop(0, n_slots, bipartite_step, (top_vals, match0))

    # Scatter the bipartite matches into [B, A] as gt index + 1 (0: unclaimed). Anchors are
    # claimed at most once per image; unmatched slots land in a spare column A, cut off.
    spare = ops.where(match >= 0, match, num_anchors)
    rows = ops.broadcast_to(ops.arange(batch, dtype="int32")[:, None], ops.shape(match))
    indices = ops.reshape(ops.stack([rows, spare], axis=-1), (-1, 2))
    slot_ids = ops.broadcast_to(
        ops.arange(1, n_slots + 1, dtype="int32")[None, :], ops.shape(match)
    )
    claimed = ops.scatter(indices, ops.reshape(slot_ids, (-1,)), (batch, num_anchors + 1))
    claimed = claimed[:, :num_anchors]
    bip_any = claimed > 0
    bip_gt = claimed - 1
    best_iou = ops.max(sim, axis=1)
    best_gt = ops.cast(ops.argmax(sim, axis=1), "int32")
    positive = bip_any | (best_iou >= pos_iou_threshold)
    assigned = ops.where(bip_any, bip_gt, best_gt)  # [B, A]
    ignore = ops.logical_not(positive) & (best_iou >= neg_iou_limit)

    cls = ops.take_along_axis(classes, assigned, axis=1)
    cls_targets = ops.where(positive, cls, ops.where(ignore, -1, 0))
    cls_targets = ops.cast(cls_targets, "int32")

    idx4 = ops.repeat(ops.expand_dims(assigned, -1), 4, axis=-1)
    matched = ops.take_along_axis(boxes, idx4, axis=1)  # [B, A, 4] corners
    g_cx = (matched[..., 0] + matched[..., 2]) / 2
    g_cy = (matched[..., 1] + matched[..., 3]) / 2
    g_w = matched[..., 2] - matched[..., 0]
    g_h = matched[..., 3] - matched[..., 1]
    # Non-positive anchors encode themselves (all-zero offsets, no log(0)).
    g_cx = ops.where(positive, g_cx, anchor_c[:, 0])
    g_cy = ops.where(positive, g_cy, anchor_c[:, 1])
    g_w = ops.where(positive, g_w, anchor_c[:, 2])
    g_h = ops.where(positive, g_h, anchor_c[:, 3])
    v = [float(x) for x in variances]
    loc_targets = ops.stack(
        [
            (g_cx - anchor_c[:, 0]) / anchor_c[:, 2] / v[0],
            (g_cy - anchor_c[:, 1]) / anchor_c[:, 3] / v[1],
            ops.log(g_w / anchor_c[:, 2]) / v[2],
            ops.log(g_h / anchor_c[:, 3]) / v[3],
        ],
        axis=-1,
    )
    return cls_targets, ops.cast(loc_targets, "float32")
