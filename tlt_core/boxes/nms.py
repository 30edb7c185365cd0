"""Per-class non-maximum suppression and the `Detections` every detector returns.

Exact semantics (what the ONNX export must reproduce; ONNX Runtime's ``NonMaxSuppression``
and TF's ``combined_non_max_suppression``, which TLT used, behave this way):

1. Boxes: normalised corners (e.g. SSD's decoded ``loc``), *not* clipped, for NMS.
2. Per foreground class c (model index 1..C; column 0 is background and never output):
   candidates are the anchors with ``score > confidence_threshold`` (strictly greater)
   and a finite decoded box (NaN or infinite boxes, only seen from a diverged model, are
   never output; an exported graph may differ there).
3. Candidates are visited by score, descending; equal scores by anchor index, ascending.
   A candidate is kept unless its IoU with an already kept box of the same class is
   ``> clustering_iou_threshold`` (strictly greater: IoU exactly at the threshold is
   kept). At most ``top_k`` boxes are kept per class.
4. The kept boxes of all classes are ordered by score, descending (equal scores: class
   ascending, then anchor index ascending), and the first ``top_k`` are returned.
5. Output boxes are scaled to pixels of the *original* image ``(H, W)`` and then clipped to
   ``[0, W] x [0, H]``.
6. ``score_bits`` 1..10 (SSD's ``infer_nms_score_bits``): steps 3 and 4 order candidates by
   the score rounded to FP16 and cut to its exponent and top ``score_bits`` mantissa bits
   (:func:`score_sort_key`), as TensorRT OSS's NMS plugin sorts; equal keys keep the
   orders above. The threshold and the scores returned are the exact scores. 0: no cut.

IoU here is float64; an ONNX graph computes it in float32, so a pair within float32
rounding of the threshold may go either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tlt_core.boxes.iou import iou_matrix


@dataclass(frozen=True)
class NmsConfig:
    """``nms_config`` of the spec; any object with these three attributes will do."""

    confidence_threshold: float = 0.01
    clustering_iou_threshold: float = 0.6
    top_k: int = 200
    score_bits: int = 0  # 1..10: sort on FP16 scores cut to that many mantissa bits


FP16_MANTISSA_BITS = 10


def score_sort_key(scores: np.ndarray, score_bits: int) -> np.ndarray:
    """The key candidates are ordered by (higher first): the scores themselves, or with
    ``score_bits`` in 1..10 the FP16 score's bits above its lowest ``10 - score_bits``
    mantissa bits (exponent and top mantissa bits: for scores >= 0 an order-preserving
    integer, what TensorRT OSS's NMS plugin radix-sorts on)."""
    if not score_bits:
        return np.asarray(scores, np.float64)
    half = np.asarray(scores, np.float16).view(np.uint16).astype(np.int64)
    return half >> (FP16_MANTISSA_BITS - int(score_bits))


@dataclass(frozen=True)
class Detections:
    """Detections of one image, ordered by score (descending).

    ``classes`` index ``class_names`` (model output index minus one: background excluded).
    """

    boxes: np.ndarray  # [K, 4] float64 pixel corners
    classes: np.ndarray  # [K] int64
    scores: np.ndarray  # [K] float64

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros((0,), np.int64), np.zeros((0,)))


def nms_single_class(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    max_output: int | None = None,
    score_bits: int = 0,
) -> np.ndarray:
    """Greedy NMS of one class: indices kept, in visiting order (see the module docstring).

    ``boxes [N, 4]`` corners, ``scores [N]``; no score threshold here.
    """
    order = np.argsort(-score_sort_key(scores, score_bits), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64)
    limit = len(order) if max_output is None else max(int(max_output), 0)
    kept: list[int] = []
    remaining = order
    while remaining.size and len(kept) < limit:
        best, remaining = remaining[0], remaining[1:]
        kept.append(int(best))
        if remaining.size:
            overlaps = iou_matrix(boxes[best : best + 1], boxes[remaining])[0]
            remaining = remaining[~(overlaps > iou_threshold)]
    return np.asarray(kept, dtype=np.int64)


def nms_multiclass(boxes: np.ndarray, scores: np.ndarray, nms) -> tuple[np.ndarray, ...]:
    """NMS of one image: ``boxes [A, 4]`` normalised corners, ``scores [A, C+1]`` probabilities.

    Returns ``(anchor_index [K], class_index [K] (0-based, background excluded), score [K])``
    after steps 2-4 of the module docstring.
    """
    # Compare in the scores' own precision, as an exported graph does.
    threshold = np.asarray(
        nms.confidence_threshold, dtype=np.promote_types(scores.dtype, np.float32)
    )
    iou_threshold = float(nms.clustering_iou_threshold)
    top_k = int(nms.top_k)
    score_bits = int(getattr(nms, "score_bits", 0) or 0)
    sel_anchor, sel_class, sel_score = [], [], []
    finite = np.isfinite(boxes).all(axis=1)
    for c in range(1, scores.shape[1]):
        candidates = np.flatnonzero((scores[:, c] > threshold) & finite)
        if candidates.size == 0:
            continue
        keep = candidates[
            nms_single_class(
                boxes[candidates], scores[candidates, c], iou_threshold, top_k, score_bits
            )
        ]
        sel_anchor.append(keep)
        sel_class.append(np.full(keep.shape, c - 1, dtype=np.int64))
        sel_score.append(scores[keep, c].astype(np.float64))
    if not sel_anchor:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    anchor = np.concatenate(sel_anchor)
    cls = np.concatenate(sel_class)
    score = np.concatenate(sel_score)
    key = score_sort_key(scores[anchor, cls + 1], score_bits)
    order = np.lexsort((anchor, cls, -key))[:top_k]
    return anchor[order], cls[order], score[order]
