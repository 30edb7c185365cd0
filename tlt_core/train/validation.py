"""Detections over a dataset and their AP: used by training validation and ``tlt ssd evaluate``.

A ``ModelRunner`` (``tlt_core.inference_runner``) maps each batch of the evaluation pipeline
(``build_dataset(training=False)``: resized only, difficult objects kept and flagged) to
SSD outputs; ``tlt_core.boxes.nms`` decodes them and ``tlt_core.evaluate.ap`` scores them.
Detections and ground truth are compared in the network's input pixels (IoU does not change
under the per-axis resize to the original image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def nms_settings(experiment):
    """``nms_config`` (defaults resolved by the spec module) as ``boxes.nms.NmsConfig``."""
    from tlt_core.boxes.nms import NmsConfig

    nms = experiment.nms
    return NmsConfig(
        confidence_threshold=float(nms.confidence_threshold),
        clustering_iou_threshold=float(nms.clustering_iou_threshold),
        top_k=int(nms.top_k),
    )


def eval_settings(experiment) -> tuple[str, float, int]:
    """``(ap_mode, matching_iou_threshold, batch_size)`` of ``eval_config``."""
    ev = experiment.eval
    return str(ev.average_precision_mode), float(ev.matching_iou_threshold), int(ev.batch_size)


@dataclass
class CollectedDetections:
    detections: list[Any] = field(default_factory=list)  # boxes.nms.Detections per image
    ground_truths: list[Any] = field(default_factory=list)  # evaluate.ap.GroundTruth
    frame_ids: list[str] = field(default_factory=list)


def collect_detections(
    runner,
    experiment,
    *,
    anchors: np.ndarray,
    sources=None,
    batch_size: int | None = None,
    on_batch=None,
) -> CollectedDetections:
    """Run ``runner`` over the evaluation pipeline; detections + ground truth per image.

    ``on_batch(images, detections, ground_truths, frame_ids, original_sizes)``, when given,
    sees each batch (model input images; (h, w) of the source images) as it goes by: the
    evaluation report picks frames to draw there.
    """
    from tlt_core.boxes.nms import detections_from_outputs
    from tlt_core.data.pipeline import build_dataset
    from tlt_core.evaluate.ap import GroundTruth

    _, _, default_batch = eval_settings(experiment)
    batch_size = batch_size or default_batch
    if runner.max_batch_size:
        batch_size = min(batch_size, runner.max_batch_size)
    nms = nms_settings(experiment)
    height, width = experiment.input_shape[0], experiment.input_shape[1]
    variances = tuple(experiment.anchors.variances)
    dataset = build_dataset(
        experiment, training=False, batch_size=batch_size, sources=sources, shuffle=False
    )
    out = CollectedDetections()
    for batch in dataset.as_numpy_iterator():
        conf, loc = runner.predict(batch["image"])
        n = batch["image"].shape[0]
        detections = detections_from_outputs(
            conf, loc, anchors, variances, nms, [(height, width)] * n
        )
        ground_truths = [
            GroundTruth.from_model_classes(
                batch["boxes"][i], batch["classes"][i], batch["difficult"][i]
            )
            for i in range(n)
        ]
        frame_ids = [batch["frame_id"][i].decode() for i in range(n)]
        if on_batch is not None:
            on_batch(batch["image"], detections, ground_truths, frame_ids, batch["orig_size"])
        out.detections.extend(detections)
        out.ground_truths.extend(ground_truths)
        out.frame_ids.extend(frame_ids)
    return out


def score(collected: CollectedDetections, experiment, *, mode: str | None = None):
    """``APResult`` of collected detections with ``eval_config``'s mode and IoU threshold."""
    from tlt_core.evaluate.ap import compute_ap

    spec_mode, iou, _ = eval_settings(experiment)
    return compute_ap(
        collected.detections,
        collected.ground_truths,
        list(experiment.class_names),
        iou_threshold=iou,
        mode=mode or spec_mode,
    )


def validate_model(model, experiment, *, anchors: np.ndarray, sources=None):
    """mAP of an in-memory Keras model on the spec's validation sources (``APResult``)."""
    from tlt_core.inference_runner import KerasRunner

    collected = collect_detections(KerasRunner(model), experiment, anchors=anchors, sources=sources)
    return score(collected, experiment)
