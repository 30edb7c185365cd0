"""SSD decode + NMS: raw outputs -> per-image `Detections` (the rules: ``boxes.nms``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tlt_core.boxes.nms import Detections, nms_multiclass
from tlt_core.networks.ssd.box_coding import decode, to_pixels


def detections_from_outputs(
    conf_probs: np.ndarray,
    loc: np.ndarray,
    anchors: np.ndarray,
    variances: Sequence[float],
    nms,
    image_sizes: Sequence[Sequence[float]],
) -> list[Detections]:
    """Decode + NMS a batch of SSD outputs into per-image detections in original pixels.

    Args:
        conf_probs: ``[B, A, C+1]`` class probabilities (softmax of the ``conf`` output).
        loc: ``[B, A, 4]`` encoded offsets (the ``loc`` output).
        anchors: ``[A, 4]`` normalised ``(cx, cy, w, h)``.
        variances: the 4 ``ssd_config.variances``.
        nms: ``nms_config`` (``confidence_threshold``, ``clustering_iou_threshold``, ``top_k``).
        image_sizes: ``(H, W)`` of each original image, to scale the boxes to.
    """
    conf_probs = np.asarray(conf_probs)
    loc = np.asarray(loc)
    if conf_probs.shape[0] != len(image_sizes) or loc.shape[0] != len(image_sizes):
        raise ValueError(
            f"batch of {conf_probs.shape[0]} outputs, {loc.shape[0]} locs and "
            f"{len(image_sizes)} image sizes"
        )
    corners = decode(loc.astype(np.float64), np.asarray(anchors, np.float64), variances)
    results = []
    for b, (height, width) in enumerate(image_sizes):
        anchor, cls, score = nms_multiclass(corners[b], conf_probs[b], nms)
        boxes = to_pixels(corners[b][anchor], (height, width))
        boxes = np.clip(boxes, 0.0, np.array([width, height, width, height], dtype=np.float64))
        results.append(Detections(boxes, cls, score))
    return results
