"""DetectNet_v2 post-processing: coverage grid + coded boxes -> one box per object.

Per image and class (002, "Post processor" and "Specification file for inference"):

1. candidates: the grid cells whose coverage is at least ``coverage_threshold``, with
   their decoded boxes (`coding.decode`);
2. DBSCAN (scikit-learn, ``metric='precomputed'``) over the distance ``1 - IoU`` of the
   candidate boxes, ``eps = dbscan_eps``, each candidate weighted by its coverage
   (``sample_weight``), so ``dbscan_min_samples`` is the coverage mass a neighbourhood
   needs to make a core point (TLT's use of the parameter); noise is dropped;
3. one box per cluster: the coverage-weighted mean of its members' corners, with the
   cluster's highest coverage as confidence;
4. boxes lower than ``minimum_bounding_box_height`` pixels, or with a confidence under the
   class's ``confidence_threshold`` (the inference cluster file's ``confidence_th``), are
   dropped.

Boxes are pixel corners of the network input; `Detections` per image, score-descending.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.cluster import DBSCAN

from tlt_core.boxes.iou import iou_matrix
from tlt_core.boxes.nms import Detections
from tlt_core.networks.detectnet_v2.coding import decode

_TINY = 1e-9


def cluster_candidates(
    boxes: np.ndarray, coverage: np.ndarray, eps: float, min_samples: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster boxes [K, 4], confidences [K])`` of candidates ``boxes`` [N, 4] with
    ``coverage`` [N] (weights), by DBSCAN on 1 - IoU."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros((0,))
    distance = iou_matrix(boxes, boxes)
    np.subtract(1.0, distance, out=distance)
    # Only the pairs within eps matter: a sparse neighbourhood graph spares scikit-learn
    # the dense N x N copy. Stored distances are shifted by _TINY (and eps with them) so
    # that a distance of 0 (identical boxes, each box with itself) stays an entry.
    rows, cols = np.nonzero(distance <= eps)
    graph = csr_matrix(
        (np.maximum(distance[rows, cols], 0.0) + _TINY, (rows, cols)),
        shape=distance.shape,
    )
    del distance
    # scikit-learn takes an integer min_samples: "neighbourhood coverage >= min_samples" is
    # "neighbourhood coverage / min_samples >= 1" (with 0, every candidate is a core point).
    weights = coverage / min_samples if min_samples > 0 else np.ones_like(coverage)
    labels = (
        DBSCAN(eps=eps + _TINY, min_samples=1, metric="precomputed")
        .fit(graph, sample_weight=weights)
        .labels_
    )
    kept = labels >= 0
    if not kept.any():
        return np.zeros((0, 4)), np.zeros((0,))
    labels, boxes, coverage = labels[kept], boxes[kept], coverage[kept]
    n = int(labels.max()) + 1
    mass = np.bincount(labels, weights=coverage, minlength=n)
    merged = (
        np.stack(
            [np.bincount(labels, weights=coverage * boxes[:, k], minlength=n) for k in range(4)],
            axis=1,
        )
        / np.maximum(mass, 1e-12)[:, None]
    )
    confidence = np.full(n, -np.inf)
    np.maximum.at(confidence, labels, coverage)
    return merged, confidence


def cluster_image(
    cov: np.ndarray,
    bbox: np.ndarray,
    settings: Sequence,
    *,
    scale: float,
    offset: float,
) -> Detections:
    """One image: ``cov`` [rows, cols, C], ``bbox`` [rows, cols, 4C] (coded) -> detections.

    ``settings[c]`` has ``coverage_threshold``, ``dbscan_eps``, ``dbscan_min_samples``,
    ``minimum_bounding_box_height`` and ``confidence_threshold``.
    """
    rows, cols, c = cov.shape
    corners = decode(np.asarray(bbox).reshape(rows, cols, c, 4), scale, offset)
    out_boxes, out_classes, out_scores = [], [], []
    for k, setting in enumerate(settings):
        cov_k = cov[..., k].reshape(-1)
        take = cov_k >= max(setting.coverage_threshold, 1e-12)
        boxes, confidence = cluster_candidates(
            corners[..., k, :].reshape(-1, 4)[take].astype(np.float64),
            cov_k[take].astype(np.float64),
            setting.dbscan_eps,
            setting.dbscan_min_samples,
        )
        keep = (boxes[:, 3] - boxes[:, 1] >= setting.minimum_bounding_box_height) & (
            confidence >= setting.confidence_threshold
        )
        out_boxes.append(boxes[keep])
        out_classes.append(np.full(int(keep.sum()), k, np.int64))
        out_scores.append(confidence[keep])
    boxes = np.concatenate(out_boxes)
    classes = np.concatenate(out_classes)
    scores = np.concatenate(out_scores)
    order = np.argsort(-scores, kind="stable")
    return Detections(boxes[order], classes[order], scores[order])


def cluster_batch(cov, bbox, settings, *, scale: float, offset: float) -> list[Detections]:
    """`cluster_image` for each image of a batch (channels-last outputs)."""
    cov = np.asarray(cov)
    bbox = np.asarray(bbox)
    return [
        cluster_image(cov[i], bbox[i], settings, scale=scale, offset=offset)
        for i in range(cov.shape[0])
    ]
