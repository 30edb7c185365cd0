import numpy as np
import pytest

from tlt_core.boxes.nms import (
    Detections,
    NmsConfig,
    nms_multiclass,
    nms_single_class,
)
from tlt_core.networks.ssd.box_coding import corners_to_centroids, encode_numpy
from tlt_core.networks.ssd.postprocess import detections_from_outputs

VARIANCES = [0.1, 0.1, 0.2, 0.2]


def py_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def brute_force(boxes, scores, conf, iou_thr, top_k):
    """Plain-Python reference of the documented semantics."""
    kept = []
    for c in range(1, scores.shape[1]):
        cands = [i for i in range(len(boxes)) if scores[i, c] > conf]
        cands.sort(key=lambda i: (-scores[i, c], i))
        chosen = []
        for i in cands:
            if len(chosen) == top_k:
                break
            if all(py_iou(boxes[i], boxes[j]) <= iou_thr for j in chosen):
                chosen.append(i)
        kept += [(-float(scores[i, c]), c - 1, i) for i in chosen]
    kept.sort()
    kept = kept[:top_k]
    return [k[2] for k in kept], [k[1] for k in kept], [-k[0] for k in kept]


@pytest.mark.parametrize("seed", range(12))
def test_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, n_cls = 60, 4
    xy = rng.uniform(0, 0.7, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, (n, 2))], axis=1)
    # Scores rounded to 2 decimals so equal scores (tie order) occur.
    scores = np.round(rng.dirichlet(np.ones(n_cls), n), 2)
    nms = NmsConfig(
        confidence_threshold=0.1, clustering_iou_threshold=0.4, top_k=int(rng.integers(3, 40))
    )
    anchor, cls, score = nms_multiclass(boxes, scores, nms)
    ref_anchor, ref_cls, ref_score = brute_force(boxes, scores, 0.1, 0.4, nms.top_k)
    assert anchor.tolist() == ref_anchor
    assert cls.tolist() == ref_cls
    np.testing.assert_allclose(score, ref_score)


def test_thresholds_are_strict():
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [5, 5, 6, 6]], np.float64)
    # IoU(box0, box1) = 0.5 exactly: kept at threshold 0.5, suppressed at 0.49.
    scores = np.array([0.9, 0.8, 0.25])
    assert nms_single_class(boxes, scores, 0.5).tolist() == [0, 1, 2]
    assert nms_single_class(boxes, scores, 0.49).tolist() == [0, 2]
    probs = np.stack([1 - scores, scores], axis=1).astype(np.float32)
    anchor, _, _ = nms_multiclass(boxes, probs, NmsConfig(np.float32(0.25), 0.5, 10))
    assert anchor.tolist() == [0, 1]  # score == threshold is dropped


def test_top_k_per_class_and_overall_and_tie_order():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], np.float64)
    scores = np.array([[0.0, 0.5, 0.5], [0.0, 0.7, 0.3], [0.0, 0.5, 0.5]])
    anchor, cls, score = nms_multiclass(boxes, scores, NmsConfig(0.01, 0.5, 4))
    # 0.7 first; then the 0.5 ties by class (0 before 1), then anchor index.
    assert list(zip(anchor.tolist(), cls.tolist(), strict=True)) == [(1, 0), (0, 0), (2, 0), (0, 1)]
    np.testing.assert_allclose(score, [0.7, 0.5, 0.5, 0.5])
    assert len(nms_single_class(boxes, scores[:, 1], 0.5, max_output=2)) == 2


def test_detections_from_outputs_decodes_to_original_pixels_and_clips():
    anchors = corners_to_centroids(
        np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.6, 0.0, 1.0, 0.3]], np.float64)
    )
    truth = np.array([[0.12, 0.1, 0.42, 0.38], [0.5, 0.55, 0.95, 0.9], [0.7, -0.1, 1.1, 0.25]])
    loc = encode_numpy(truth, anchors, VARIANCES)[None].astype(np.float32)
    probs = np.array([[[0.1, 0.9, 0.0], [0.2, 0.0, 0.8], [0.995, 0.005, 0.0]]], np.float32)
    (det,) = detections_from_outputs(probs, loc, anchors, VARIANCES, NmsConfig(), [(200, 400)])
    assert isinstance(det, Detections) and len(det) == 2
    assert det.classes.tolist() == [0, 1]
    np.testing.assert_allclose(
        det.boxes[0], np.array([0.12, 0.1, 0.42, 0.38]) * [400, 200, 400, 200], atol=1e-3
    )
    np.testing.assert_allclose(
        det.boxes[1], np.array([0.5, 0.55, 0.95, 0.9]) * [400, 200, 400, 200], atol=1e-3
    )
    probs[0, 2] = [0.0, 1.0, 0.0]  # now the box sticking out of the image is kept: clipped
    (det,) = detections_from_outputs(probs, loc, anchors, VARIANCES, NmsConfig(), [(200, 400)])
    assert (
        det.boxes.min() >= 0
        and det.boxes[:, [0, 2]].max() <= 400
        and det.boxes[:, [1, 3]].max() <= 200
    )
    with pytest.raises(ValueError):
        detections_from_outputs(probs, loc, anchors, VARIANCES, NmsConfig(), [(1, 1), (1, 1)])
