"""AP speed: vectorised ``compute_ap`` vs a per-detection Python loop (TLT's algorithm).

Target: 5,000 images x 100 detections in <= 1 s (best of 3 runs; the baseline runs once). The baseline is a straightforward port of
TLT's ``APEvaluator`` (loop over images, then over detections, then over each class's
precision/recall points), written here so both run on the same data in one process; the
tests also use it as an independent reference for the semantics.
"""

from __future__ import annotations

import time

import numpy as np

from bench import BenchRow
from tlt_core.boxes.nms import Detections
from tlt_core.evaluate.ap import SAMPLE_POINTS, GroundTruth, compute_ap


def synthetic_dataset(
    n_images: int, dets_per_image: int, n_classes: int = 3, gts_per_image: int = 12, seed: int = 0
) -> tuple[list[Detections], list[GroundTruth]]:
    """Random scenes: gts, and detections that are jittered gts (TPs or duplicates) or noise."""
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n_images):
        n_gt = int(rng.integers(0, 2 * gts_per_image + 1))
        xy = rng.uniform(0, 1000, (n_gt, 2))
        wh = rng.uniform(10, 200, (n_gt, 2))
        gt_boxes = np.concatenate([xy, xy + wh], axis=1)
        gt_cls = rng.integers(0, n_classes, n_gt)
        gt_diff = rng.random(n_gt) < 0.15
        gts.append(GroundTruth(gt_boxes, gt_cls, gt_diff))
        n_near = min(dets_per_image, 2 * n_gt) if n_gt else 0
        src = rng.integers(0, n_gt, n_near) if n_gt else np.zeros(0, np.int64)
        near = gt_boxes[src] + rng.normal(0, 8, (n_near, 4))
        near[:, 2:] = np.maximum(near[:, 2:], near[:, :2] + 1)
        near_cls = np.where(
            rng.random(n_near) < 0.9, gt_cls[src], rng.integers(0, n_classes, n_near)
        )
        n_far = dets_per_image - n_near
        fxy = rng.uniform(0, 1000, (n_far, 2))
        far = np.concatenate([fxy, fxy + rng.uniform(10, 200, (n_far, 2))], axis=1)
        boxes = np.concatenate([near, far])
        cls = np.concatenate([near_cls, rng.integers(0, n_classes, n_far)])
        # Scores rounded to 3 decimals, so ties occur as they do in real output.
        scores = np.round(
            np.concatenate([rng.uniform(0.3, 1, n_near), rng.uniform(0, 0.7, n_far)]), 3
        )
        dets.append(Detections(boxes, cls, scores))
    return dets, gts


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.maximum(0, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    ih = np.maximum(0, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = iw * ih
    union = (
        (box[2] - box[0]) * (box[3] - box[1])
        + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        - inter
    )
    return inter / union


def reference_ap(
    detections, ground_truths, n_classes, iou_threshold=0.5, mode="SAMPLE", include_difficult=False
) -> list[float]:
    """Per-class AP by TLT's loop: per image, per detection, then per ranked point."""
    hits: list[list[tuple[float, int, int, int]]] = [[] for _ in range(n_classes)]
    positives = [0] * n_classes
    for image, (det, gt) in enumerate(zip(detections, ground_truths, strict=True)):
        diff = np.zeros(len(gt), bool) if include_difficult else np.asarray(gt.difficult, bool)
        for c in gt.classes[~diff]:
            positives[int(c)] += 1
        used = np.zeros(len(gt), bool)
        order = sorted(range(len(det)), key=lambda i: (-det.scores[i], i))
        for rank, i in enumerate(order):
            c = int(det.classes[i])
            same = np.flatnonzero(gt.classes == c)
            if same.size == 0:
                hits[c].append((-det.scores[i], image, rank, 0))
                continue
            overlaps = _iou_one(det.boxes[i], gt.boxes[same]) * ~used[same]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou_threshold:
                used[same[best]] = True
                if not diff[same[best]]:
                    hits[c].append((-det.scores[i], image, rank, 1))
            else:
                hits[c].append((-det.scores[i], image, rank, 0))
    aps = []
    for c in range(n_classes):
        tp = fp = 0
        prec, rec = [], []
        for *_, is_tp in sorted(hits[c]):
            tp += is_tp
            fp += 1 - is_tp
            prec.append(tp / (tp + fp))
            rec.append(tp / positives[c] if positives[c] else 0.0)
        prec_a, rec_a = np.array(prec), np.array(rec)
        if mode == "SAMPLE":
            ap = 0.0
            for t in SAMPLE_POINTS:
                p = np.max(prec_a[rec_a >= t]) if np.sum(rec_a >= t) else 0
                ap += p / len(SAMPLE_POINTS)
        else:
            mrec = np.concatenate(([0.0], rec_a, [1.0]))
            mpre = np.concatenate(([0.0], prec_a, [0.0]))
            for i in range(mpre.size - 1, 0, -1):
                mpre[i - 1] = max(mpre[i - 1], mpre[i])
            i = np.where(mrec[1:] != mrec[:-1])[0]
            ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
        aps.append(float(ap))
    return aps


def run(quick: bool) -> list[BenchRow]:
    n_images = 500 if quick else 5000
    dets, gts = synthetic_dataset(n_images, 100)
    rows = []
    for mode in ("SAMPLE", "INTEGRATE"):
        # Best of 3 for the fast path: the machine is shared, the minimum is the figure.
        fast = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            result = compute_ap(dets, gts, 3, mode=mode)
            fast = min(fast, time.perf_counter() - start)
        start = time.perf_counter()
        reference = reference_ap(dets, gts, 3, mode=mode)
        slow = time.perf_counter() - start
        agree = np.allclose([result.per_class_ap[str(c)] for c in range(3)], reference, atol=1e-12)
        rows.append(
            BenchRow(
                benchmark=f"AP {mode} {n_images} images x 100 dets"
                + ("" if agree else " (DISAGREES with baseline)"),
                value=fast,
                unit="s",
                baseline="per-detection Python loop",
                baseline_value=slow,
                ratio=fast / slow,
                target="<= 1 s" if not quick else "",
                ok=(fast <= 1.0 and agree) if not quick else agree,
            )
        )
    return rows
