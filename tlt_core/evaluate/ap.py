"""Average precision of detections against ground truth: the one AP implementation.

Semantics (TLT's ``APEvaluator``, which ``tlt ssd evaluate`` and training validation use):

* **Matching**, per image and class: detections are visited by score, descending (equal
  scores: the order they were given in). Each is matched to the ground truth of its class
  in that image with the highest IoU among those *not matched yet* (equal IoU: the one
  given first), if that IoU is ``>= iou_threshold``; otherwise it is a false positive.
  This is TLT's rule; the VOC devkit instead takes the highest-IoU gt overall and calls the
  detection a false positive when that gt is already taken. The two differ only when a
  detection overlaps two gts of its class by at least the threshold.
* **Difficult** ground truth (KITTI occlusion > 0) is neither rewarded nor penalised: a
  detection matched to it is dropped (neither TP nor FP) and it is not counted in the
  number of positives. It is still consumed by that match (as in TLT). With
  ``include_difficult=True`` difficult objects count like any other.
* **Ranking** for the precision/recall curve, per class over all images: score
  descending; equal scores keep image order, then the per-image order above. (TLT used an
  unstable quicksort here, so its order for ties was arbitrary; ours is deterministic.)
  ``precision = TP / (TP + FP)``, ``recall = TP / positives`` (0 when a class has none).
* **SAMPLE** (VOC2007, 11 points): mean over ``t in numpy.linspace(0, 1, 11)`` of the
  highest precision at a recall ``>= t`` (0 when none). ``linspace``'s 0.3, 0.6 and 0.7
  are a hair above 3/10, 6/10 and 7/10, so a recall of exactly 3/10 does not reach the
  0.3 point: kept as in TLT and the VOC code.
* **INTEGRATE** (VOC2010+): area under the precision envelope, sentinels (0, 0) and
  (1, 0) added, summed where recall changes.
* A class without (counted) ground truth has AP 0, and a class without detections has AP
  0; both are included in the mean (``mAP`` is the plain mean over ``class_names``, as TLT
  prints it for the classes its spec fixes). With ``skip_classes_without_ground_truth``
  (``tlt evaluate-labels``, as the VOC devkit and COCO do) a class with no counted ground
  truth has no AP: it is listed in ``classes_without_ground_truth`` (its detections are all
  false positives) and left out of the mean.

Boxes are continuous corners (width = x2 - x1, no +1); any common unit (pixels of the
original image, usually).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlt_core.boxes.iou import iou_from_columns
from tlt_core.boxes.nms import Detections

AP_MODES = ("SAMPLE", "INTEGRATE")
SAMPLE_POINTS = np.linspace(0.0, 1.0, 11)
# Bound on the (detection, ground truth) pairs whose IoU is computed at once.
_PAIR_CHUNK = 4_000_000


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of one image; ``classes`` index ``class_names``."""

    boxes: np.ndarray  # [N, 4] corners
    classes: np.ndarray  # [N] int
    difficult: np.ndarray  # [N] bool

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    @staticmethod
    def empty() -> GroundTruth:
        return GroundTruth(np.zeros((0, 4)), np.zeros((0,), np.int64), np.zeros((0,), bool))

    @staticmethod
    def from_model_classes(boxes, classes, difficult=None) -> GroundTruth:
        """From a pipeline batch item: model class index 1..C, 0 = padding (dropped)."""
        classes = np.asarray(classes).reshape(-1)
        keep = classes > 0
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[keep]
        diff = (
            np.zeros(keep.sum(), bool)
            if difficult is None
            else np.asarray(difficult, bool).reshape(-1)[keep]
        )
        return GroundTruth(boxes, classes[keep].astype(np.int64) - 1, diff)


@dataclass(frozen=True)
class APResult:
    """Per-class AP, their mean, the precision/recall curves and the counts behind them."""

    class_names: tuple[str, ...]
    per_class_ap: dict[str, float]
    mAP: float
    precision: dict[str, np.ndarray] = field(repr=False)  # per ranked (non-ignored) detection
    recall: dict[str, np.ndarray] = field(repr=False)
    num_ground_truth: dict[str, int]  # counted positives (difficult excluded unless included)
    num_difficult: dict[str, int]  # difficult gts left out of the count
    num_detections: dict[str, int]
    num_true_positives: dict[str, int]
    num_false_positives: dict[str, int]
    num_ignored: dict[str, int]  # detections matched to difficult ground truth
    mode: str
    iou_threshold: float
    include_difficult: bool
    num_images: int
    classes_without_ground_truth: tuple[str, ...] = ()  # no AP, left out of mAP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no curves)."""
        skipped = set(self.classes_without_ground_truth)
        return {
            "mAP": self.mAP,
            "mode": self.mode,
            "iou_threshold": self.iou_threshold,
            "include_difficult": self.include_difficult,
            "num_images": self.num_images,
            "mAP_classes": [n for n in self.class_names if n not in skipped],
            "classes_without_ground_truth": list(self.classes_without_ground_truth),
            "classes": {
                name: {
                    "ap": None if name in skipped else self.per_class_ap[name],
                    "no_ground_truth": name in skipped,
                    "num_ground_truth": self.num_ground_truth[name],
                    "num_difficult": self.num_difficult[name],
                    "num_detections": self.num_detections[name],
                    "num_true_positives": self.num_true_positives[name],
                    "num_false_positives": self.num_false_positives[name],
                    "num_ignored": self.num_ignored[name],
                }
                for name in self.class_names
            },
        }


def average_precision(precision: np.ndarray, recall: np.ndarray, mode: str) -> float:
    """AP of one ranked precision/recall curve (recall non-decreasing)."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    mode = _check_mode(mode)
    if mode == "SAMPLE":
        if precision.size == 0:
            return 0.0
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        first = np.searchsorted(recall, SAMPLE_POINTS, side="left")
        sampled = np.where(
            first < precision.size, envelope[np.minimum(first, precision.size - 1)], 0.0
        )
        # Sum, then divide: TLT adds p / 11 eleven times, which can give 1.0000000000000002.
        return float(np.sum(sampled)) / len(SAMPLE_POINTS)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _check_mode(mode: str) -> str:
    upper = str(mode).upper()
    if upper not in AP_MODES:
        raise ValueError(f"average precision mode must be SAMPLE or INTEGRATE, got {mode!r}")
    return upper


def _stack(items, n_classes: int, kind: str):
    """Concatenate per-image arrays; returns (image index, boxes, classes, extra)."""
    counts = np.array([len(x.classes) for x in items], dtype=np.int64)
    image = np.repeat(np.arange(len(items), dtype=np.int64), counts)
    if counts.sum() == 0:
        return image, np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)
    boxes = np.concatenate([np.asarray(x.boxes, np.float64).reshape(-1, 4) for x in items])
    classes = np.concatenate([np.asarray(x.classes).reshape(-1) for x in items]).astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"{kind} class index outside 0..{n_classes - 1}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{kind} box with a non-finite coordinate")
    if kind == "detection":
        extra = np.concatenate([np.asarray(x.scores, np.float64).reshape(-1) for x in items])
        if not np.isfinite(extra).all():
            raise ValueError("detection with a non-finite score")
    else:
        extra = np.concatenate([np.asarray(x.difficult, bool).reshape(-1) for x in items])
    return image, boxes, classes, extra


def _small_int(values: np.ndarray) -> np.ndarray:
    """Cast non-negative keys to the narrowest integer type: numpy radix-sorts 16-bit keys."""
    top = int(values.max()) if values.size else 0
    return values.astype(np.int16 if top < 2**15 else np.int32 if top < 2**31 else np.int64)


def _candidate_pairs(det_cols, det_gt_start, det_gt_count, gt_cols, iou_threshold):
    """(detection, gt) pairs of the same image and class with IoU >= threshold.

    ``det_cols`` / ``gt_cols``: the four coordinate columns of the detections and gts,
    both sorted by (image, class) so that a detection's gts are the contiguous run
    ``det_gt_start + range(det_gt_count)``. Detections are bucketed by that count, so each
    bucket is one broadcast ``[n, k]`` IoU. Returns ``(det, gt, iou)`` ordered by
    detection, then gt.
    """
    out_det, out_gt, out_iou = [], [], []
    if det_gt_count.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    by_count = np.argsort(_small_int(det_gt_count), kind="stable")
    counts = det_gt_count[by_count]
    bounds = np.flatnonzero(np.r_[True, counts[1:] != counts[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        k = int(counts[lo])
        if k == 0:
            continue
        step = max(1, _PAIR_CHUNK // k)
        for chunk_lo in range(lo, hi, step):
            dets = by_count[chunk_lo : min(hi, chunk_lo + step)]
            gts = det_gt_start[dets][:, None] + np.arange(k)
            iou = iou_from_columns(
                *(c[dets][:, None] for c in det_cols), *(c[gts] for c in gt_cols)
            )
            rows, cols = np.nonzero(iou >= iou_threshold)
            out_det.append(dets[rows])
            out_gt.append(gts[rows, cols])
            out_iou.append(iou[rows, cols])
    if not out_det:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    det, gt, iou = np.concatenate(out_det), np.concatenate(out_gt), np.concatenate(out_iou)
    order = np.argsort(det, kind="stable")  # gts stay ascending within a detection
    return det[order], gt[order], iou[order]


def _greedy_match(det_group, pair_det, pair_gt, pair_iou, n_det, n_gt) -> np.ndarray:
    """For each sorted detection, the sorted-gt index it matches (-1: none).

    Runs the sequential per-image rule for all (image, class) groups at once: step ``s``
    handles the ``s``-th candidate detection of every group, whose gts are disjoint.
    """
    matched_gt = np.full(n_det, -1, dtype=np.int64)
    if pair_det.size == 0:
        return matched_gt
    starts = np.flatnonzero(np.r_[True, pair_det[1:] != pair_det[:-1]])
    n_pairs = np.diff(np.r_[starts, pair_det.size])
    cand = pair_det[starts]  # candidate detections, in sorted (group, rank) order
    n_cand = cand.size
    cand_group = det_group[cand]
    group_first = np.flatnonzero(np.r_[True, cand_group[1:] != cand_group[:-1]])
    rank = np.arange(n_cand) - np.repeat(group_first, np.diff(np.r_[group_first, n_cand]))

    width = int(n_pairs.max())
    row = np.repeat(np.arange(n_cand), n_pairs)
    col = np.arange(pair_det.size) - np.repeat(starts, n_pairs)
    gts = np.full((n_cand, width), -1, dtype=np.int64)
    ious = np.full((n_cand, width), -np.inf)
    gts[row, col] = pair_gt
    ious[row, col] = pair_iou

    taken = np.zeros(n_gt + 1, dtype=bool)  # last slot: the padding index -1
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(rank))]
    for step in range(len(bounds) - 1):
        rows = by_rank[bounds[step] : bounds[step + 1]]
        g = gts[rows]
        v = np.where(taken[g], -np.inf, ious[rows])
        best = np.argmax(v, axis=1)  # first maximum: the gt given first among equal IoUs
        pick = np.arange(rows.size)
        ok = np.isfinite(v[pick, best])
        chosen = g[pick, best][ok]
        taken[chosen] = True
        matched_gt[cand[rows[ok]]] = chosen
    return matched_gt


def _match_stacked(dets, gts, n_classes: int, iou_threshold: float) -> np.ndarray:
    """TLT's matching (module docstring) on stacked arrays: for each detection, in the given
    order, the index of the stacked ground truth it matches (-1: none).

    ``dets``: (image, boxes, classes, scores); ``gts``: (image, boxes, classes).
    """
    d_img, d_box, d_cls, d_score = dets
    g_img, g_box, g_cls = gts
    # One float sort by score (stable: equal scores keep the given, image-major order),
    # then stable integer sorts by (image, class) for matching.
    by_score = np.argsort(-d_score, kind="stable")
    d_group = d_img * n_classes + d_cls
    by_group = by_score[np.argsort(_small_int(d_group[by_score]), kind="stable")]

    g_group = g_img * n_classes + g_cls
    g_order = np.argsort(_small_int(g_group), kind="stable")
    g_group, g_box = g_group[g_order], g_box[g_order]

    sorted_group = d_group[by_group]
    g_start = np.searchsorted(g_group, sorted_group, side="left")
    g_count = np.searchsorted(g_group, sorted_group, side="right") - g_start
    det_cols = [np.ascontiguousarray(d_box[by_group, i]) for i in range(4)]
    gt_cols = [np.ascontiguousarray(g_box[:, i]) for i in range(4)]
    pair_det, pair_gt, pair_iou = _candidate_pairs(
        det_cols, g_start, g_count, gt_cols, iou_threshold
    )
    matched_sorted = _greedy_match(
        sorted_group, pair_det, pair_gt, pair_iou, sorted_group.size, g_group.size
    )
    matched = np.full(d_score.size, -1, dtype=np.int64)
    hit = matched_sorted >= 0
    matched[by_group[hit]] = g_order[matched_sorted[hit]]  # given detection and gt order
    return matched


def match_detections(
    detections: Sequence[Detections],
    ground_truths: Sequence[GroundTruth],
    num_classes: int,
    iou_threshold: float | Sequence[float] = 0.5,
) -> list[np.ndarray]:
    """Per image, for each detection the index of the ground truth (of that image) it is
    matched to, -1 for none: the matching ``compute_ap`` scores (for drawing TP, FP and
    missed objects). Difficult ground truth is matched like any other.

    ``iou_threshold``: one for every class, or one per class (DetectNet_v2's
    ``minimum_detection_ground_truth_overlap``); a class is matched only within itself, so
    each class takes the matching done at its own threshold."""
    d_img, d_box, d_cls, d_score = _stack(detections, num_classes, "detection")
    g_img, g_box, g_cls, _ = _stack(ground_truths, num_classes, "ground truth")
    thresholds = np.broadcast_to(np.asarray(iou_threshold, np.float64), (num_classes,))
    matched = np.full(d_cls.size, -1, np.int64)
    for threshold in np.unique(thresholds):
        at = _match_stacked(
            (d_img, d_box, d_cls, d_score), (g_img, g_box, g_cls), num_classes, float(threshold)
        )
        mine = thresholds[d_cls] == threshold
        matched[mine] = at[mine]
    g_first = np.r_[0, np.cumsum([len(g.classes) for g in ground_truths])]
    d_bounds = np.r_[0, np.cumsum([len(d.classes) for d in detections])]
    out = []
    for i in range(len(detections)):
        local = matched[d_bounds[i] : d_bounds[i + 1]]
        out.append(np.where(local >= 0, local - g_first[i], -1))
    return out


def compute_ap(
    detections: Sequence[Detections],
    ground_truths: Sequence[GroundTruth],
    class_names: Sequence[str] | int,
    iou_threshold: float = 0.5,
    mode: str = "SAMPLE",
    include_difficult: bool = False,
    skip_classes_without_ground_truth: bool = False,
) -> APResult:
    """AP per class and mAP over images; see the module docstring for the exact rules.

    ``detections[i]`` and ``ground_truths[i]`` belong to the same image; class indices
    refer to ``class_names`` (or ``range(class_names)`` when an int is given).
    """
    mode = _check_mode(mode)
    if isinstance(class_names, int):
        class_names = [str(i) for i in range(class_names)]
    names = tuple(class_names)
    n_classes = len(names)
    if len(detections) != len(ground_truths):
        raise ValueError(
            f"{len(detections)} images of detections but {len(ground_truths)} of ground truth"
        )
    d_img, d_box, d_cls, d_score = _stack(detections, n_classes, "detection")
    g_img, g_box, g_cls, g_diff = _stack(ground_truths, n_classes, "ground truth")
    if include_difficult:
        g_diff = np.zeros_like(g_diff, dtype=bool)
    g_diff = g_diff.astype(bool)

    matched = _match_stacked(
        (d_img, d_box, d_cls, d_score), (g_img, g_box, g_cls), n_classes, iou_threshold
    )
    by_score = np.argsort(-d_score, kind="stable")
    by_class = by_score[np.argsort(_small_int(d_cls[by_score]), kind="stable")]

    is_matched = matched >= 0
    ignored = np.zeros_like(is_matched)
    ignored[is_matched] = g_diff[matched[is_matched]]
    tp = is_matched & ~ignored

    # Ranked per class: score descending, ties by image, then per-image order.
    rank = by_class[~ignored[by_class]]
    r_cls, r_tp = d_cls[rank], tp[rank].astype(np.int64)
    class_bounds = np.searchsorted(r_cls, np.arange(n_classes + 1), side="left")

    positives = np.bincount(g_cls[~g_diff], minlength=n_classes)
    difficult = np.bincount(g_cls[g_diff], minlength=n_classes)
    n_det = np.bincount(d_cls, minlength=n_classes)
    n_ign = np.bincount(d_cls[ignored], minlength=n_classes)

    per_ap, precision, recall = {}, {}, {}
    n_tp, n_fp = {}, {}
    for c, name in enumerate(names):
        lo, hi = class_bounds[c], class_bounds[c + 1]
        tp_cum = np.cumsum(r_tp[lo:hi])
        fp_cum = np.arange(1, hi - lo + 1) - tp_cum
        prec = tp_cum / np.maximum(tp_cum + fp_cum, 1)
        rec = tp_cum / positives[c] if positives[c] > 0 else np.zeros(hi - lo)
        per_ap[name] = average_precision(prec, rec, mode)
        precision[name], recall[name] = prec, rec
        n_tp[name] = int(tp_cum[-1]) if hi > lo else 0
        n_fp[name] = int(fp_cum[-1]) if hi > lo else 0

    no_gt = (
        tuple(n for c, n in enumerate(names) if positives[c] == 0)
        if skip_classes_without_ground_truth
        else ()
    )
    averaged = [per_ap[n] for n in names if n not in no_gt]
    mean_ap = float(np.mean(averaged)) if averaged else 0.0
    return APResult(
        class_names=names,
        per_class_ap=per_ap,
        mAP=mean_ap,
        precision=precision,
        recall=recall,
        num_ground_truth={n: int(positives[c]) for c, n in enumerate(names)},
        num_difficult={n: int(difficult[c]) for c, n in enumerate(names)},
        num_detections={n: int(n_det[c]) for c, n in enumerate(names)},
        num_true_positives=n_tp,
        num_false_positives=n_fp,
        num_ignored={n: int(n_ign[c]) for c, n in enumerate(names)},
        mode=mode,
        iou_threshold=float(iou_threshold),
        include_difficult=bool(include_difficult),
        num_images=len(detections),
        classes_without_ground_truth=no_gt,
    )
