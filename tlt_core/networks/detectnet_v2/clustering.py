"""DetectNet_v2 post-processing: coverage grid + coded boxes -> one box per object.

Per image and class (002, "Post processor" and "Specification file for inference"):

1. candidates: the grid cells whose coverage is at least ``coverage_threshold``, with
   their decoded boxes (`coding.decode`);
2. DBSCAN over the distance ``1 - IoU`` of the candidate boxes, ``eps = dbscan_eps``,
   each candidate weighted by its coverage, so ``dbscan_min_samples`` is the coverage
   mass a neighbourhood (the candidate itself included) needs to make a core point (TLT's
   use of the parameter); noise is dropped;
3. one box per cluster: the coverage-weighted mean of its members' corners; its
   confidence is the cluster's coverage mass, the sum of its members' coverage (TLT's
   ``aggregate_cov``; it exceeds 1 for an object seen by several cells). The mass ranks an
   object seen by many cells above a fragment of one or two cells; the highest coverage,
   used before, gave both ~1, so fragments ranked with objects (sample data after 5
   epochs: mAP 0.17 with the highest coverage, 0.35 with the mass, same detections);
4. boxes lower than ``minimum_bounding_box_height`` pixels, or with a confidence under the
   class's ``confidence_threshold`` (the inference cluster file's ``confidence_th``), are
   dropped.

`dbscan_labels` is DBSCAN written with array operations, giving scikit-learn's
``DBSCAN(metric="precomputed")`` labels exactly (same clusters, same numbering, border
points to the same cluster; ``tests/test_detectnet_v2_postprocess.py`` checks it against
scikit-learn on random candidates). It exists because scikit-learn needs the neighbourhood
graph built first and then walks it point by point in Python: 10,000 candidates of one
image took 28 forward steps (``python -m bench --only detectnet_v2``). Here only the pairs
that can be within ``eps`` get an IoU: IoU >= t needs the centres of two boxes within
``(1 - t) * max(width)`` horizontally and ``(1 - t) * max(height)`` vertically, so a k-d
tree over the centres (Chebyshev radius from the largest box side) gives the few pairs to
test, and connected components over the core points' edges make the clusters.

Boxes are pixel corners of the network input; `Detections` per image, score-descending.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from tlt_core.boxes.iou import iou_pairs
from tlt_core.boxes.nms import Detections
from tlt_core.networks.detectnet_v2.coding import decode


def neighbour_pairs(boxes: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: every ordered pair of candidates with ``1 - IoU <= eps``, each candidate
    with itself included (its own neighbour, as in DBSCAN)."""
    n = len(boxes)
    own = np.arange(n)
    if eps >= 1.0:  # every distance 1 - IoU is at most 1: everything is a neighbour
        i, j = np.meshgrid(own, own, indexing="ij")
        return i.reshape(-1), j.reshape(-1)
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    # IoU > 0 needs positive areas; only those boxes can have another box within eps.
    solid = np.flatnonzero((width > 0) & (height > 0))
    first = np.zeros(0, np.int64)
    second = np.zeros(0, np.int64)
    if len(solid) > 1:
        centres = (
            np.stack([boxes[solid, 0] + boxes[solid, 2], boxes[solid, 1] + boxes[solid, 3]], axis=1)
            / 2.0
        )
        # Centre offsets of a pair with IoU >= 1 - eps: at most eps * the larger side. The
        # margin keeps the bound conservative under rounding; IoU decides below.
        reach = eps * float(max(width[solid].max(), height[solid].max())) * (1 + 1e-6) + 1e-9
        pairs = cKDTree(centres).query_pairs(reach, p=np.inf, output_type="ndarray")
        if len(pairs):
            a, b = solid[pairs[:, 0]], solid[pairs[:, 1]]
            near = (1.0 - iou_pairs(boxes[a], boxes[b])) <= eps
            first, second = a[near], b[near]
    return np.concatenate([own, first, second]), np.concatenate([own, second, first])


def dbscan_labels(boxes: np.ndarray, weights: np.ndarray, eps: float) -> np.ndarray:
    """Cluster label per candidate (``-1``: noise) of DBSCAN on ``1 - IoU`` with
    ``eps`` and a core point's neighbourhood weight at least 1: scikit-learn's
    ``DBSCAN(eps, min_samples=1, metric="precomputed").fit(1 - IoU, sample_weight=weights)``
    labels, numbering included."""
    n = len(boxes)
    labels = np.full(n, -1, np.int64)
    if n == 0:
        return labels
    i, j = neighbour_pairs(boxes, eps)
    core = np.bincount(i, weights=weights[j], minlength=n) >= 1.0
    if not core.any():
        return labels
    both = core[i] & core[j]
    graph = csr_matrix((np.ones(int(both.sum()), np.int8), (i[both], j[both])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # scikit-learn numbers clusters in the order of their first core point, and a border
    # point joins the first cluster that reaches it: the lowest-numbered one next to it.
    core_index = np.flatnonzero(core)
    first_core = np.full(n, n, np.int64)
    np.minimum.at(first_core, component[core_index], core_index)
    used = np.flatnonzero(first_core < n)
    number = np.full(n, n, np.int64)
    number[used[np.argsort(first_core[used], kind="stable")]] = np.arange(len(used))
    labels[core] = number[component[core]]
    border = ~core[i] & core[j]
    reached = np.full(n, n, np.int64)
    np.minimum.at(reached, i[border], number[component[j[border]]])
    touched = reached < n
    labels[touched] = reached[touched]
    return labels


def cluster_candidates(
    boxes: np.ndarray, coverage: np.ndarray, eps: float, min_samples: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster boxes [K, 4], confidences [K])`` of candidates ``boxes`` [N, 4] with
    ``coverage`` [N] (weights), by DBSCAN on 1 - IoU."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros((0,))
    # "Neighbourhood coverage >= min_samples" is "neighbourhood coverage / min_samples >= 1"
    # (with 0, every candidate is a core point).
    weights = coverage / min_samples if min_samples > 0 else np.ones_like(coverage)
    labels = dbscan_labels(boxes, weights, eps)
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
    return merged, mass


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
