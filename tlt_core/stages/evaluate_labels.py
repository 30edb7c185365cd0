"""Stage: AP of KITTI prediction labels against KITTI ground-truth labels.

Frames are label files ``<frame>.txt`` directly inside each directory, matched by name.
A prediction file without a ground-truth file is an error (it names the file); a
ground-truth frame without a prediction file has no detections. Predictions must carry a
score (the 16th field). Class names are compared case-insensitively; ``DontCare`` objects
are ignored on both sides; objects of classes outside the evaluated list are ignored.
Ground truth with occlusion > 0 is *difficult* (see :mod:`tlt_core.evaluate.ap`) unless
``include_difficult``. A class without (counted) ground truth has no AP: it is reported as
such, with its false positives, and left out of mAP (as the VOC devkit and COCO do), whether
the classes were found or given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlt_core.boxes.nms import Detections
from tlt_core.data.kitti import KittiObject, read_label_file
from tlt_core.errors import DataError, UsageError, located
from tlt_core.evaluate.ap import AP_MODES, APResult, GroundTruth, compute_ap
from tlt_core.evaluate.report import format_ap_table, plot_pr_curves, write_json

log = logging.getLogger(__name__)
MAX_SCORE_WARNINGS = 5  # located warnings for scores outside [0, 1]; then a count

LABEL_SUFFIX = ".txt"


@dataclass(frozen=True)
class EvaluateLabelsResult:
    result: APResult
    table: str  # the printed AP table
    num_frames: int  # ground-truth frames evaluated
    num_prediction_files: int  # of those, frames that had a prediction file
    json_path: Path | None = None
    pr_curves: list[Path] = field(default_factory=list)


def _label_files(directory: Path, role: str) -> dict[str, Path]:
    if not directory.is_dir():
        raise DataError(f"{role} label directory not found", directory)
    return {
        p.stem: p for p in sorted(directory.iterdir()) if p.suffix == LABEL_SUFFIX and p.is_file()
    }


def _normalise_classes(classes: Sequence[str]) -> list[str]:
    names: list[str] = []
    for raw in classes:
        name = raw.strip().lower()
        if not name:
            raise UsageError(f"empty class name in --classes {','.join(classes)!r}")
        if name not in names:
            names.append(name)
    return names


def _kept(objects: list[KittiObject]) -> list[KittiObject]:
    return [o for o in objects if not o.is_dontcare]


def evaluate_labels(
    gt_dir: str | Path,
    pred_dir: str | Path,
    *,
    mode: str = "SAMPLE",
    iou_threshold: float = 0.5,
    include_difficult: bool = False,
    classes: Sequence[str] | None = None,
    json_path: str | Path | None = None,
    pr_curve_dir: str | Path | None = None,
) -> EvaluateLabelsResult:
    """Compute per-class AP and mAP; optionally write JSON and per-class PR curves.

    ``classes``: the classes to evaluate (in this order); default: every class found in
    the ground truth or the predictions, sorted.
    """
    mode = str(mode).upper()
    if mode not in AP_MODES:
        raise UsageError(f"AP mode must be SAMPLE or INTEGRATE, got {mode!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise UsageError(f"IoU threshold must be in (0, 1], got {iou_threshold:g}")
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    gt_files = _label_files(gt_dir, "ground-truth")
    pred_files = _label_files(pred_dir, "prediction")
    if not gt_files:
        raise DataError(f"no *{LABEL_SUFFIX} label files", gt_dir)
    for frame, path in pred_files.items():
        if frame not in gt_files:
            raise DataError(f"prediction file has no ground-truth file {gt_dir / path.name}", path)

    frames = list(gt_files)
    gt_objects = {f: _kept(read_label_file(gt_files[f])) for f in frames}
    pred_objects: dict[str, list[KittiObject]] = {}
    # Scores only rank detections; DetectNet_v2's (a cluster's coverage mass, as TLT's)
    # exceed 1: the first few are named, then one line counts them.
    outside: list[str] = []
    for frame in frames:
        path = pred_files.get(frame)
        objects = _kept(read_label_file(path)) if path is not None else []
        for obj in objects:
            if obj.score is None:
                raise DataError("prediction without a score (16th field)", path, obj.line, "score")
            if not 0.0 <= obj.score <= 1.0:
                outside.append(located(f"{obj.score:g} outside [0, 1]", path, obj.line, "score"))
        pred_objects[frame] = objects
    for line in outside[:MAX_SCORE_WARNINGS]:
        log.warning("%s", line)
    if len(outside) > MAX_SCORE_WARNINGS:
        log.warning("%d prediction scores outside [0, 1] in all", len(outside))

    found = {o.class_name.lower() for objs in gt_objects.values() for o in objs}
    found |= {o.class_name.lower() for objs in pred_objects.values() for o in objs}
    if classes:
        names = _normalise_classes(classes)
        unknown = [name for name in names if name not in found]
        if unknown:  # a typo would otherwise average in an AP of 0
            raise UsageError(
                f"--classes: {', '.join(unknown)} in no ground-truth or prediction label "
                f"(found: {', '.join(sorted(found)) or 'none'})"
            )
    else:
        names = sorted(found)
        if not names:
            raise DataError(
                "no objects (other than DontCare) in ground truth or predictions", gt_dir
            )
    index = {name: i for i, name in enumerate(names)}

    detections, ground_truths = [], []
    for frame in frames:
        gts = [o for o in gt_objects[frame] if o.class_name.lower() in index]
        preds = [o for o in pred_objects[frame] if o.class_name.lower() in index]
        ground_truths.append(
            GroundTruth(
                np.array([o.box for o in gts], dtype=np.float64).reshape(-1, 4),
                np.array([index[o.class_name.lower()] for o in gts], dtype=np.int64),
                np.array([o.difficult for o in gts], dtype=bool),
            )
        )
        detections.append(
            Detections(
                np.array([o.box for o in preds], dtype=np.float64).reshape(-1, 4),
                np.array([index[o.class_name.lower()] for o in preds], dtype=np.int64),
                np.array([o.score for o in preds], dtype=np.float64),
            )
        )
    result = compute_ap(
        detections,
        ground_truths,
        names,
        iou_threshold=iou_threshold,
        mode=mode,
        include_difficult=include_difficult,
        skip_classes_without_ground_truth=True,
    )
    if result.classes_without_ground_truth:
        log.warning(
            "no ground truth for %s: left out of mAP (their detections are false positives)",
            ", ".join(result.classes_without_ground_truth),
        )
    log.info(
        "evaluated %d frames (%d with predictions), %d classes, %s AP at IoU %g",
        len(frames),
        sum(f in pred_files for f in frames),
        len(names),
        mode,
        iou_threshold,
    )
    written_json = write_json(result, json_path) if json_path is not None else None
    curves = plot_pr_curves(result, pr_curve_dir) if pr_curve_dir is not None else []
    return EvaluateLabelsResult(
        result=result,
        table=format_ap_table(result),
        num_frames=len(frames),
        num_prediction_files=sum(f in pred_files for f in frames),
        json_path=written_json,
        pr_curves=curves,
    )
