"""DetectNet_v2 evaluation (002, 6.2 and "Evaluation"): AP per class, combined and per
difficulty bucket, with per-class IoU thresholds, on the shared AP (`tlt_core.evaluate.ap`).

- ``combined``: every ground-truth object of the evaluated classes; difficult objects
  (KITTI occlusion > 0) are neither rewarded nor penalised, as everywhere in the project
  (so ``tlt evaluate-labels`` on the inference labels gives the same figure when the IoU
  thresholds agree).
- a bucket (``evaluation_bucket_config``: height, occlusion and truncation ranges): ground
  truth outside the ranges is ignored (a detection matched to it counts neither way), and
  detections whose height is outside the bucket's height range are left out, as KITTI's
  benchmark does for its easy/moderate/hard levels.
- IoU threshold per class: ``minimum_detection_ground_truth_overlap`` (0.5 when absent).

Bucket heights are in pixels of the original image: boxes may be in the network input's
pixels (IoU does not change under a per-axis resize) with ``FrameTruth.height_scale``
converting their heights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlt_core.boxes.nms import Detections
from tlt_core.evaluate.ap import APResult, GroundTruth, compute_ap

COMBINED = "combined"


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one image with the fields the buckets read."""

    boxes: np.ndarray  # [N, 4] pixels (the detections' pixels)
    classes: np.ndarray  # [N] 0-based
    occlusion: np.ndarray  # [N] int
    truncation: np.ndarray  # [N] float
    height_scale: float = 1.0  # original-image pixels per box pixel, vertically

    @property
    def difficult(self) -> np.ndarray:
        """Objects neither rewarded nor penalised in the combined AP (occlusion > 0): what
        ``evaluate.ap.GroundTruth`` calls difficult (the evaluation report's frames)."""
        return np.asarray(self.occlusion) > 0


@dataclass(frozen=True)
class DetectNetMetrics:
    class_names: tuple[str, ...]
    combined: APResult  # per-class thresholds merged into one result
    buckets: dict[str, APResult]

    @property
    def mAP(self) -> float:
        return self.combined.mAP

    def table(self) -> dict[str, dict[str, float]]:
        """class -> {"combined": AP, bucket: AP, ...}"""
        out = {}
        for name in self.class_names:
            row = {COMBINED: self.combined.per_class_ap[name]}
            for bucket, result in sorted(self.buckets.items()):
                row[bucket] = result.per_class_ap[name]
            out[name] = row
        return out

    def to_dict(self) -> dict:
        return {
            "mAP": self.mAP,
            "combined": self.combined.to_dict(),
            "buckets": {k: v.to_dict() for k, v in sorted(self.buckets.items())},
            "per_class": self.table(),
        }


def format_table(metrics: DetectNetMetrics) -> str:
    """The AP table of 002 6.2 (percent); ``evaluate`` puts the validation cost above it."""
    buckets = sorted(metrics.buckets)
    header = ["class mAP", COMBINED, *buckets]
    rule = "  ".join("=" * max(len(h), 9) for h in header)
    lines = ["AP:", rule, "  ".join(f"{h:<9}" for h in header), rule]
    for name, row in metrics.table().items():
        cells = [f"{name:<9}"] + [f"{100 * row[h]:<9.2f}" for h in header[1:]]
        lines.append("  ".join(cells))
    lines.append(rule)
    means = [f"{100 * metrics.combined.mAP:<9.2f}"] + [
        f"{100 * metrics.buckets[b].mAP:<9.2f}" for b in buckets
    ]
    lines.append("  ".join([f"{'mAP':<9}", *means]))
    return "\n".join(lines)


def _in_bucket(truth: FrameTruth, bucket) -> np.ndarray:
    height = (truth.boxes[:, 3] - truth.boxes[:, 1]) * truth.height_scale
    return (
        (height >= bucket.minimum_height)
        & (height <= bucket.maximum_height)
        & (truth.occlusion >= bucket.minimum_occlusion)
        & (truth.occlusion <= bucket.maximum_occlusion)
        & (truth.truncation >= bucket.minimum_truncation - 1e-6)
        & (truth.truncation <= bucket.maximum_truncation + 1e-6)
    )


def _per_class_thresholds(
    detections: Sequence[Detections],
    truths: Sequence[GroundTruth],
    class_names: Sequence[str],
    thresholds: Sequence[float],
    mode: str,
) -> APResult:
    """One APResult whose class ``c`` is computed at ``thresholds[c]``."""
    results = {
        t: compute_ap(detections, truths, class_names, iou_threshold=t, mode=mode)
        for t in sorted(set(thresholds))
    }
    first = results[thresholds[0]]
    if len(results) == 1:
        return first
    merged = {}
    for field in (
        "per_class_ap",
        "precision",
        "recall",
        "num_ground_truth",
        "num_difficult",
        "num_detections",
        "num_true_positives",
        "num_false_positives",
        "num_ignored",
    ):
        merged[field] = {
            name: getattr(results[t], field)[name]
            for name, t in zip(class_names, thresholds, strict=True)
        }
    per_class = merged["per_class_ap"]
    return dataclasses.replace(
        first,
        **merged,
        mAP=float(np.mean([per_class[n] for n in class_names])),
        iou_threshold=min(thresholds),
    )


def evaluate_detections(
    detections: Sequence[Detections],
    truths: Sequence[FrameTruth],
    class_names: Sequence[str],
    iou_thresholds: Sequence[float],
    buckets: dict,
    mode: str = "SAMPLE",
) -> DetectNetMetrics:
    """AP combined and per bucket (see the module docstring)."""
    names = tuple(class_names)
    thresholds = [float(t) for t in iou_thresholds]
    combined_gt = [GroundTruth(t.boxes, t.classes, t.difficult) for t in truths]
    combined = _per_class_thresholds(detections, combined_gt, names, thresholds, mode)
    per_bucket = {}
    for key, bucket in buckets.items():
        gts = [GroundTruth(t.boxes, t.classes, ~_in_bucket(t, bucket)) for t in truths]
        dets = []
        for d, truth in zip(detections, truths, strict=True):
            height = (d.boxes[:, 3] - d.boxes[:, 1]) * truth.height_scale
            keep = (height >= bucket.minimum_height) & (height <= bucket.maximum_height)
            dets.append(Detections(d.boxes[keep], d.classes[keep], d.scores[keep]))
        per_bucket[key] = _per_class_thresholds(dets, gts, names, thresholds, mode)
    return DetectNetMetrics(names, combined, per_bucket)
