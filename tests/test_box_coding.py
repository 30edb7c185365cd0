import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_anchors import Spec  # the anchor settings generate_anchors reads

from tlt_core.boxes.iou import iou_matrix
from tlt_core.networks.ssd.anchors import generate_anchors
from tlt_core.networks.ssd.box_coding import (
    centroids_to_corners,
    corners_to_centroids,
    decode,
    decode_ops,
    encode_batch,
    encode_numpy,
    to_normalized,
    to_pixels,
)

VARIANCES = [0.1, 0.1, 0.2, 0.2]


SMALL_ANCHORS = generate_anchors(
    Spec(scales=[0.2, 0.45, 0.8], aspect_ratios=[[1.0, 2.0, 0.5], [1.0, 2.0]]),
    [(4, 4), (2, 2)],
    (64, 64),
)


def iou32(a, b):
    """IoU in float32, in the encoder's operation order, so exact ties break alike."""
    a = np.asarray(a, np.float32)[:, None, :]
    b = np.asarray(b, np.float32)[None, :, :]
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(iw, np.float32(0)) * np.maximum(ih, np.float32(0))
    union = (
        (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
        + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        - inter
    )
    return np.where(union > 0, inter / np.where(union > 0, union, np.float32(1)), np.float32(0))


def reference_match(gt_corners, gt_classes, anchors, pos=0.5, neg=0.5):
    """Brute-force greedy bipartite + multi matching, one image (the documented rules)."""
    valid = [i for i, c in enumerate(gt_classes) if c > 0]
    sim = iou32(gt_corners, centroids_to_corners(anchors))
    cls = np.zeros(len(anchors), np.int64)
    assigned = np.full(len(anchors), -1)
    free_gt, free_anchor = set(valid), set(range(len(anchors)))
    while free_gt:
        best = max((sim[g, a], -g, -a) for g in sorted(free_gt) for a in free_anchor)
        g, a = -best[1], -best[2]
        assigned[a] = g
        free_gt.discard(g)
        free_anchor.discard(a)
    for a in range(len(anchors)):
        if assigned[a] >= 0 or not valid:
            continue
        g = valid[int(np.argmax(sim[valid, a]))]
        if sim[g, a] >= pos:
            assigned[a] = g
    for a in range(len(anchors)):
        if assigned[a] >= 0:
            cls[a] = gt_classes[assigned[a]]
        elif valid and sim[valid, a].max() >= neg:
            cls[a] = -1
    return cls, assigned


boxes_strategy = st.lists(
    st.tuples(
        st.floats(0.0, 0.8),
        st.floats(0.0, 0.8),
        st.floats(0.05, 0.6),
        st.floats(0.05, 0.6),
        st.integers(1, 3),
    ),
    min_size=0,
    max_size=5,
)


def _as_batch(items, n_slots=5):
    boxes = np.zeros((1, n_slots, 4), np.float32)
    classes = np.zeros((1, n_slots), np.int32)
    for i, (x, y, w, h, c) in enumerate(items):
        boxes[0, i] = [x, y, min(x + w, 1.0), min(y + h, 1.0)]
        classes[0, i] = c
    return boxes, classes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boxes_strategy)
def test_matching_agrees_with_brute_force_and_every_gt_gets_an_anchor(items):
    boxes, classes = _as_batch(items)
    cls_t, loc_t = encode_batch(boxes, classes, SMALL_ANCHORS, VARIANCES, num_classes=3)
    cls_t, loc_t = np.asarray(cls_t)[0], np.asarray(loc_t)[0]
    ref_cls, assigned = reference_match(boxes[0], classes[0], SMALL_ANCHORS)
    # Positive/background/ignore labels agree with the brute-force reference. (Which gt an
    # anchor goes to can differ only on exact float ties, so compare via the loc targets.)
    np.testing.assert_array_equal(cls_t, ref_cls)
    for g in range(len(items)):
        assert (assigned == g).sum() >= 1  # every gt has at least one positive anchor
    positive = cls_t > 0
    decoded = decode(loc_t[positive].astype(np.float64), SMALL_ANCHORS[positive], VARIANCES)
    expected = boxes[0][assigned[positive]]
    np.testing.assert_allclose(decoded, expected, atol=1e-4)
    assert np.all(loc_t[~positive] == 0)


def test_greedy_bipartite_resolves_a_conflict_by_highest_iou():
    # Three anchors; gt A and gt B both prefer anchor 0, A overlaps it more.
    anchors = corners_to_centroids(
        np.array([[0.0, 0.0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0.0, 0.05, 0.4, 0.45]])
    ).astype(np.float32)
    gts = np.array([[[0.0, 0.0, 0.4, 0.41], [0.0, 0.0, 0.4, 0.44]]], np.float32)
    sim = iou_matrix(gts[0], centroids_to_corners(anchors))
    assert sim[0].argmax() == 0 and sim[1].argmax() == 0 and sim[0, 0] > sim[1, 0]
    cls_t, _ = encode_batch(
        gts, np.array([[1, 2]]), anchors, VARIANCES, pos_iou_threshold=0.99, neg_iou_limit=0.99
    )
    # A (class 1) takes anchor 0; B (class 2) falls back to its next best, anchor 2.
    np.testing.assert_array_equal(np.asarray(cls_t)[0], [1, 0, 2])


def test_padding_and_empty_images_are_all_background():
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[1, 0] = [0.1, 0.1, 0.5, 0.5]
    classes = np.array([[0, 0, 0], [1, 0, 0]])
    cls_t, loc_t = encode_batch(boxes, classes, SMALL_ANCHORS, VARIANCES)
    cls_t, loc_t = np.asarray(cls_t), np.asarray(loc_t)
    assert cls_t.shape == (2, len(SMALL_ANCHORS)) and loc_t.shape == (2, len(SMALL_ANCHORS), 4)
    assert np.all(cls_t[0] == 0) and np.all(loc_t[0] == 0)
    assert (cls_t[1] == 1).sum() >= 1 and set(np.unique(cls_t[1])) <= {0, 1}
    # No ground-truth slots at all.
    cls_0, _ = encode_batch(
        np.zeros((1, 0, 4), np.float32), np.zeros((1, 0), np.int32), SMALL_ANCHORS, VARIANCES
    )
    assert np.all(np.asarray(cls_0) == 0)


def test_out_of_range_class_and_degenerate_boxes_take_no_part():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.2, 0.6]]], np.float32)
    cls_t, _ = encode_batch(boxes, np.array([[5, 1]]), SMALL_ANCHORS, VARIANCES, num_classes=3)
    assert np.all(np.asarray(cls_t) == 0)


def test_ignore_band_between_neg_limit_and_pos_threshold():
    boxes = np.array([[[0.1, 0.1, 0.6, 0.6]]], np.float32)
    classes = np.array([[2]])
    cls_t, _ = encode_batch(
        boxes, classes, SMALL_ANCHORS, VARIANCES, pos_iou_threshold=0.5, neg_iou_limit=0.2
    )
    ref, _ = reference_match(boxes[0], classes[0], SMALL_ANCHORS, 0.5, 0.2)
    cls_t = np.asarray(cls_t)[0]
    np.testing.assert_array_equal(cls_t, ref)
    assert (cls_t == -1).any()
    with pytest.raises(ValueError):
        encode_batch(
            boxes, classes, SMALL_ANCHORS, VARIANCES, pos_iou_threshold=0.4, neg_iou_limit=0.5
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-0.5, 1.5), st.floats(-0.5, 1.5), st.floats(0.01, 2.0), st.floats(0.01, 2.0)
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.02, 1.0), st.floats(0.02, 1.0)
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_encode_decode_round_trip(gt_items, anchor_items):
    n = min(len(gt_items), len(anchor_items))
    gt = centroids_to_corners(np.array(gt_items[:n], np.float64))
    anchors = np.array(anchor_items[:n], np.float64)
    loc = encode_numpy(gt, anchors, VARIANCES)
    np.testing.assert_allclose(decode(loc, anchors, VARIANCES), gt, rtol=1e-9, atol=1e-9)


def test_decode_ops_matches_numpy_and_pixel_conversions_invert():
    rng = np.random.default_rng(1)
    loc = rng.normal(0, 1, (2, len(SMALL_ANCHORS), 4)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(decode_ops(loc, SMALL_ANCHORS, VARIANCES)),
        decode(loc.astype(np.float64), SMALL_ANCHORS.astype(np.float64), VARIANCES),
        rtol=1e-5,
        atol=1e-6,
    )
    px = np.array([[10.0, 20.0, 110.0, 70.0]])
    norm = to_normalized(px, (100, 200))
    np.testing.assert_allclose(norm, [[0.05, 0.2, 0.55, 0.7]])
    np.testing.assert_allclose(to_pixels(norm, (100, 200)), px)


def test_encode_batch_runs_inside_tf_data_with_a_dynamic_box_count():
    import tensorflow as tf

    def gen():
        yield np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), np.array([1], np.int32)
        yield (
            np.array([[0.2, 0.2, 0.9, 0.7], [0.0, 0.0, 0.3, 0.3]], np.float32),
            np.array([2, 1], np.int32),
        )

    ds = tf.data.Dataset.from_generator(
        gen,
        output_signature=(tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)),
    ).padded_batch(2)
    ds = ds.map(lambda b, c: encode_batch(b, c, SMALL_ANCHORS, VARIANCES))
    cls_t, loc_t = next(iter(ds))
    eager_cls, eager_loc = encode_batch(
        np.array(
            [[[0.1, 0.1, 0.5, 0.5], [0, 0, 0, 0]], [[0.2, 0.2, 0.9, 0.7], [0.0, 0.0, 0.3, 0.3]]],
            np.float32,
        ),
        np.array([[1, 0], [2, 1]]),
        SMALL_ANCHORS,
        VARIANCES,
    )
    np.testing.assert_array_equal(cls_t.numpy(), np.asarray(eager_cls))
    np.testing.assert_allclose(loc_t.numpy(), np.asarray(eager_loc), atol=1e-6)


JAX_SCRIPT = """
import json, numpy as np, keras
from tests.test_box_coding import SMALL_ANCHORS, VARIANCES, reference_match
from tlt_core.networks.ssd.box_coding import decode, decode_ops, encode_batch
boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.3, 0.2, 0.9, 0.8], [0, 0, 0, 0]]], np.float32)
classes = np.array([[1, 2, 0]])
cls_t, loc_t = encode_batch(boxes, classes, SMALL_ANCHORS, VARIANCES, 3)
ref, _ = reference_match(boxes[0], classes[0], SMALL_ANCHORS)
loc = np.asarray(loc_t)
print(json.dumps({
    "backend": keras.backend.backend(),
    "same": bool((np.asarray(cls_t)[0] == ref).all()),
    "decode": bool(np.allclose(np.asarray(decode_ops(loc, SMALL_ANCHORS, VARIANCES)),
                               decode(loc.astype(np.float64), SMALL_ANCHORS, VARIANCES), atol=1e-5)),
}))
"""


def test_encode_batch_under_jax():
    from jax_helpers import run_under_jax

    result = run_under_jax(JAX_SCRIPT)
    assert result == {"backend": "jax", "same": True, "decode": True}
