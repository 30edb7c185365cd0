"""DetectNet_v2 clustering (scikit-learn DBSCAN on 1 - IoU), bucket AP and the model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.boxes.nms import Detections
from tlt_core.networks.detectnet_v2.clustering import (
    cluster_candidates,
    cluster_image,
    dbscan_labels,
)
from tlt_core.networks.detectnet_v2.metrics import (
    FrameTruth,
    evaluate_detections,
    format_table,
)
from tlt_core.networks.detectnet_v2.rasterizer import RasterSettings, rasterize, split_targets
from tlt_core.networks.detectnet_v2.spec import Bucket, ClusteringSpec


def test_two_objects_give_two_clusters_and_noise_is_dropped():
    rng = np.random.default_rng(0)
    a = np.array([10.0, 10.0, 60.0, 50.0]) + rng.normal(0, 1.0, (12, 4))
    b = np.array([100.0, 20.0, 140.0, 90.0]) + rng.normal(0, 1.0, (9, 4))
    lone = np.array([[200.0, 200.0, 210.0, 215.0]])
    boxes = np.concatenate([a, b, lone])
    cov = np.concatenate([np.full(12, 0.8), np.full(9, 0.6), [0.02]])
    merged, confidence = cluster_candidates(boxes, cov, eps=0.3, min_samples=0.1)
    assert len(merged) == 2  # the lone low-coverage box is noise (mass 0.02 < 0.1)
    order = np.argsort(merged[:, 0])
    np.testing.assert_allclose(merged[order[0]], a.mean(0), atol=1e-6)
    np.testing.assert_allclose(merged[order[1]], b.mean(0), atol=1e-6)
    np.testing.assert_allclose(np.sort(confidence), [9 * 0.6, 12 * 0.8])  # coverage mass


def test_min_samples_is_coverage_mass():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [0.5, 0.0, 10.5, 10.0]])
    assert len(cluster_candidates(boxes, np.array([0.3, 0.3]), 0.2, 0.5)[0]) == 1
    assert len(cluster_candidates(boxes, np.array([0.2, 0.2]), 0.2, 0.5)[0]) == 0


def _settings(rows, cols):
    return RasterSettings(
        rows=rows,
        cols=cols,
        cov_center=np.array([[0.5, 0.5]], np.float32),
        cov_radius=np.array([[1.0, 1.0]], np.float32),
        min_radius=np.array([1.0], np.float32),
        deadzone=0.0,
        bbox_scale=35.0,
        bbox_offset=0.5,
    )


def test_rasterised_targets_cluster_back_to_the_boxes():
    boxes = np.array([[[16.0, 20.0, 90.0, 80.0], [130.0, 40.0, 180.0, 120.0]]], np.float32)
    s = _settings(10, 14)
    y_true = rasterize(boxes, np.array([[1, 1]]), s).numpy()
    cov, bbox, _ = split_targets(y_true, 1)
    spec = ClusteringSpec(0.5, 0.2, 0.05, 10.0)
    found = cluster_image(cov[0], bbox[0], [spec], scale=35.0, offset=0.5)
    assert len(found) == 2
    order = np.argsort(found.boxes[:, 0])
    np.testing.assert_allclose(found.boxes[order], boxes[0], atol=1e-3)
    tall = ClusteringSpec(0.5, 0.2, 0.05, 70.0)  # minimum height drops the 60 px box
    assert len(cluster_image(cov[0], bbox[0], [tall], scale=35.0, offset=0.5)) == 1


def test_buckets_ignore_objects_outside_their_ranges():
    truth = FrameTruth(
        boxes=np.array([[0.0, 0.0, 50.0, 60.0], [100.0, 0.0, 120.0, 20.0]]),
        classes=np.array([0, 0]),
        occlusion=np.array([0, 0]),
        truncation=np.array([0.0, 0.0]),
    )
    # Only the tall object is found.
    dets = Detections(np.array([[0.0, 0.0, 50.0, 60.0]]), np.array([0]), np.array([0.9]))
    easy = Bucket(40, 9999, 0, 0, 0.0, 0.15)
    metrics = evaluate_detections([dets], [truth], ["car"], [0.7], {"easy": easy})
    assert metrics.buckets["easy"].mAP == pytest.approx(1.0)  # the 20 px object is not easy
    assert metrics.combined.per_class_ap["car"] == pytest.approx(6 / 11)  # recall 0.5
    # A low false positive is left out of the bucket, but counts in combined.
    low = Detections(
        np.array([[0.0, 0.0, 50.0, 60.0], [300.0, 0.0, 310.0, 10.0]]),
        np.array([0, 0]),
        np.array([0.9, 0.95]),
    )
    metrics = evaluate_detections([low], [truth], ["car"], [0.7], {"easy": easy})
    assert metrics.buckets["easy"].mAP == pytest.approx(1.0)
    table = format_table(metrics)
    assert "combined" in table and "easy" in table


def test_per_class_iou_thresholds():
    truth = FrameTruth(
        boxes=np.array([[0.0, 0.0, 100.0, 100.0], [200.0, 0.0, 300.0, 100.0]]),
        classes=np.array([0, 1]),
        occlusion=np.zeros(2, int),
        truncation=np.zeros(2),
    )
    # IoU 0.6 with each ground truth: a hit at 0.5, a miss at 0.7.
    dets = Detections(
        np.array([[0.0, 0.0, 100.0, 60.0], [200.0, 0.0, 300.0, 60.0]]),
        np.array([0, 1]),
        np.array([0.9, 0.9]),
    )
    metrics = evaluate_detections([dets], [truth], ["car", "pedestrian"], [0.7, 0.5], {})
    assert metrics.combined.per_class_ap == {"car": 0.0, "pedestrian": 1.0}
    assert metrics.mAP == pytest.approx(0.5)


def test_model_heads_names_and_grid():
    from tlt_core.networks.detectnet_v2.model import build_detectnet_v2_model

    model = build_detectnet_v2_model("resnet", 10, input_shape=(64, 96, 3), num_classes=3)
    out = model(np.zeros((1, 64, 96, 3), np.float32))
    assert tuple(out["output_cov"].shape) == (1, 4, 6, 3)
    assert tuple(out["output_bbox"].shape) == (1, 4, 6, 12)
    cov = np.asarray(out["output_cov"])
    assert cov.min() >= 0 and cov.max() <= 1  # sigmoid
    assert model.get_layer("output_cov").get_config()["activation"] == "sigmoid"
    assert model.get_layer("output_bbox").get_config()["activation"] == "linear"
    dark = build_detectnet_v2_model("darknet", 19, input_shape=(64, 64, 3), num_classes=1)
    assert tuple(dark.output["output_cov"].shape[1:3]) == (4, 4)


def _sklearn_labels(boxes, weights, eps):
    """scikit-learn's DBSCAN on the dense 1 - IoU matrix (a box is at distance 0 from
    itself, degenerate ones included)."""
    from sklearn.cluster import DBSCAN

    from tlt_core.boxes.iou import iou_matrix

    dense = 1.0 - iou_matrix(boxes, boxes)
    np.fill_diagonal(dense, 0.0)
    return (
        DBSCAN(eps=eps, min_samples=1, metric="precomputed")
        .fit(dense, sample_weight=weights)
        .labels_
    )


@st.composite
def _candidates(draw):
    """Candidate boxes as a coverage grid gives them: groups of near-identical boxes (one
    per object), stray boxes of every size, some degenerate, exact duplicates."""
    n_groups = draw(st.integers(0, 4))
    coord = st.floats(0, 200, allow_nan=False, width=32)
    side = st.floats(-4, 120, allow_nan=False, width=32)
    boxes = []
    for _ in range(n_groups):
        x, y, w, h = draw(coord), draw(coord), draw(side), draw(side)
        jitter = draw(
            st.lists(st.tuples(*[st.floats(-3, 3, width=32)] * 4), min_size=1, max_size=12)
        )
        boxes += [[x + a, y + b, x + w + c, y + h + d] for a, b, c, d in jitter]
    strays = draw(st.lists(st.tuples(coord, coord, side, side), max_size=12))
    boxes += [[x, y, x + w, y + h] for x, y, w, h in strays]
    if boxes and draw(st.booleans()):
        boxes += boxes[: draw(st.integers(1, len(boxes)))]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    # Coverage in 1/64 steps: sums of weights are exact, so a point's core test cannot flip
    # on the summation order, which differs between the two implementations.
    weights = np.asarray(
        draw(st.lists(st.integers(1, 64), min_size=len(boxes), max_size=len(boxes))), float
    ) / draw(st.sampled_from([16.0, 32.0, 64.0]))
    eps = draw(st.sampled_from([0.001, 0.05, 0.15, 0.3, 0.5, 0.99, 1.0]))
    return boxes, weights, eps


@settings(max_examples=300, deadline=None)
@given(_candidates())
def test_vectorised_dbscan_gives_scikit_learns_labels(candidates):
    boxes, weights, eps = candidates
    expected = _sklearn_labels(boxes, weights, eps) if len(boxes) else np.zeros(0, int)
    np.testing.assert_array_equal(dbscan_labels(boxes, weights, eps), expected)


def test_sparse_neighbourhoods_cluster_as_the_dense_distance_matrix():
    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 300, (6, 2))
    boxes = np.concatenate(
        [np.concatenate([c, c + 40]) + rng.normal(0, 3, (30, 4)) for c in centres]
    )
    boxes = np.concatenate([boxes, boxes[:5]])  # identical boxes: distance 0
    cov = rng.uniform(0.01, 1.0, len(boxes))
    merged, confidence = cluster_candidates(boxes, cov, eps=0.3, min_samples=0.5)
    labels = _sklearn_labels(boxes, cov / 0.5, 0.3)
    assert len(merged) == labels.max() + 1
    expected = sorted(round(float(cov[labels == k].sum()), 9) for k in range(labels.max() + 1))
    assert sorted(round(float(c), 9) for c in confidence) == expected
