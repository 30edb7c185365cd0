import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The per-detection loop of bench/bench_ap.py is the independent reference here; the bench
# package lives at the repository root, outside the installed packages.
REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from bench.bench_ap import reference_ap, synthetic_dataset  # noqa: E402
from tlt_core.boxes.nms import Detections  # noqa: E402
from tlt_core.evaluate.ap import GroundTruth, average_precision, compute_ap  # noqa: E402


def gt(boxes, classes=None, difficult=None):
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    n = len(boxes)
    return GroundTruth(
        boxes,
        np.zeros(n, np.int64) if classes is None else np.array(classes),
        np.zeros(n, bool) if difficult is None else np.array(difficult, bool),
    )


def det(boxes, scores, classes=None):
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    return Detections(
        boxes,
        np.zeros(len(boxes), np.int64) if classes is None else np.array(classes),
        np.array(scores, np.float64),
    )


def box(i, shift=0.0):
    """A 10x10 box at x = 20*i (boxes of different i never overlap)."""
    return [20 * i + shift, 0, 20 * i + 10 + shift, 10]


MISS = [500, 500, 510, 510]


def ap(dets, gts, mode, n_classes=1, **kw):
    return compute_ap(dets, gts, n_classes, mode=mode, **kw).per_class_ap["0"]


@pytest.mark.parametrize("mode", ["SAMPLE", "INTEGRATE"])
def test_single_true_positive(mode):
    assert ap([det([box(0)], [0.9])], [gt([box(0)])], mode) == 1.0


def test_recall_landing_exactly_on_three_tenths():
    # 10 gts, 3 found (precision 1): recalls 0.1, 0.2, 0.3. linspace's 0.3 is
    # 0.30000000000000004 > 3/10, so SAMPLE counts 3 points (0, 0.1, 0.2), not 4.
    gts = [gt([box(i) for i in range(10)])]
    dets = [det([box(0), box(1), box(2)], [0.9, 0.8, 0.7])]
    assert ap(dets, gts, "SAMPLE") == pytest.approx(3 / 11, abs=1e-15)
    assert ap(dets, gts, "INTEGRATE") == pytest.approx(0.3, abs=1e-15)


def test_hand_computed_mixed_ranking():
    # TP, FP, TP over 2 gts: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    gts = [gt([box(0), box(1)])]
    dets = [det([box(0), MISS, box(1)], [0.9, 0.8, 0.7])]
    # SAMPLE: t = 0..0.5 (6 points) -> 1; t = 0.6..1 (5 points) -> 2/3.
    assert ap(dets, gts, "SAMPLE") == pytest.approx((6 + 5 * 2 / 3) / 11)
    # INTEGRATE: 0.5 * 1 + 0.5 * 2/3.
    assert ap(dets, gts, "INTEGRATE") == pytest.approx(0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize("mode", ["SAMPLE", "INTEGRATE"])
def test_equal_scores_rank_in_image_order(mode):
    # One gt (image 1 or 0) and two detections with the same score: the earlier image ranks first.
    tp_first = [det([box(0)], [0.5]), det([MISS], [0.5])]
    fp_first = [det([MISS], [0.5]), det([box(0)], [0.5])]
    assert ap(tp_first, [gt([box(0)]), gt([])], mode) == 1.0
    assert ap(fp_first, [gt([]), gt([box(0)])], mode) == pytest.approx(0.5)


def test_duplicate_detection_is_a_false_positive():
    gts = [gt([box(0)])]
    dets = [det([box(0), box(0, 1.0)], [0.9, 0.8])]
    result = compute_ap(dets, gts, 1, mode="INTEGRATE")
    assert result.num_true_positives["0"] == 1 and result.num_false_positives["0"] == 1
    assert result.per_class_ap["0"] == 1.0  # the FP ranks after recall reached 1


def test_detection_takes_the_best_unmatched_gt():
    # g0 = [0,0,10,10], g1 = [4,0,14,10]. Both detections overlap both gts >= 0.5, g0 more.
    # TLT rule: the second detection takes g1 (best *unmatched*): 2 TPs, AP 1.
    # (VOC's rule would call it a duplicate of g0: a false positive.)
    gts = [gt([[0, 0, 10, 10], [3, 0, 13, 10]])]
    dets = [det([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8])]
    result = compute_ap(dets, gts, 1, mode="INTEGRATE")
    assert result.num_true_positives["0"] == 2 and result.per_class_ap["0"] == 1.0


def test_difficult_ground_truth_is_neither_rewarded_nor_penalised():
    # gt A normal, gt B difficult; detections: 0.9 on B, 0.8 miss, 0.7 on A.
    gts = [gt([box(0), box(1)], difficult=[False, True])]
    dets = [det([box(1), MISS, box(0)], [0.9, 0.8, 0.7])]
    excluded = compute_ap(dets, gts, 1, mode="SAMPLE")
    # Ranked: FP, TP over 1 positive -> precision 0, 1/2 at recall 0, 1 -> 0.5.
    assert excluded.per_class_ap["0"] == pytest.approx(0.5)
    assert excluded.num_ignored["0"] == 1 and excluded.num_ground_truth["0"] == 1
    assert excluded.num_difficult["0"] == 1
    included = compute_ap(dets, gts, 1, mode="SAMPLE", include_difficult=True)
    assert included.per_class_ap["0"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert included.num_ground_truth["0"] == 2 and included.num_ignored["0"] == 0


def test_unmatched_difficult_gt_does_not_lower_recall():
    gts = [gt([box(0), box(1)], difficult=[False, True])]
    assert ap([det([box(0)], [0.9])], gts, "INTEGRATE") == 1.0


def test_no_detections_and_no_ground_truth_give_zero_and_count_in_the_mean():
    gts = [gt([box(0), box(1)], classes=[0, 1])]
    dets = [det([box(0), box(3)], [0.9, 0.8], classes=[0, 2])]
    result = compute_ap(dets, gts, ["car", "person", "cyclist"], mode="INTEGRATE")
    assert result.per_class_ap == {"car": 1.0, "person": 0.0, "cyclist": 0.0}
    assert result.mAP == pytest.approx(1 / 3)
    assert result.num_detections == {"car": 1, "person": 0, "cyclist": 1}
    # Nothing at all: every AP 0.
    empty = compute_ap([Detections.empty()], [GroundTruth.empty()], 2, mode="SAMPLE")
    assert empty.mAP == 0.0 and empty.recall["0"].size == 0


def test_classes_are_matched_only_within_their_class():
    gts = [gt([box(0)], classes=[1])]
    dets = [det([box(0)], [0.9], classes=[0])]
    result = compute_ap(dets, gts, 2)
    assert result.per_class_ap == {"0": 0.0, "1": 0.0}
    assert result.num_false_positives["0"] == 1


def test_average_precision_rejects_unknown_mode_and_bad_input():
    with pytest.raises(ValueError):
        average_precision(np.array([1.0]), np.array([1.0]), "VOC")
    with pytest.raises(ValueError):
        compute_ap([Detections.empty()], [], 1)
    with pytest.raises(ValueError):
        compute_ap([det([box(0)], [0.9], classes=[3])], [gt([])], 2)


def test_ground_truth_from_model_classes_drops_padding():
    g = GroundTruth.from_model_classes(
        np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 0, 0]]),
        np.array([2, 1, 0]),
        np.array([True, False, False]),
    )
    assert g.classes.tolist() == [1, 0] and g.difficult.tolist() == [True, False]
    assert g.boxes.shape == (2, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", ["SAMPLE", "INTEGRATE"])
@pytest.mark.parametrize("include_difficult", [False, True])
def test_matches_the_per_detection_loop_reference(seed, mode, include_difficult):
    dets, gts = synthetic_dataset(60, 40, n_classes=3, seed=seed)
    result = compute_ap(dets, gts, 3, mode=mode, include_difficult=include_difficult)
    expected = reference_ap(dets, gts, 3, mode=mode, include_difficult=include_difficult)
    np.testing.assert_allclose(
        [result.per_class_ap[str(c)] for c in range(3)], expected, atol=1e-12
    )


scene = st.lists(
    st.lists(
        st.tuples(
            st.integers(0, 5), st.integers(0, 2), st.floats(0, 6), st.booleans(), st.integers(0, 1)
        ),
        max_size=6,
    ),
    min_size=1,
    max_size=6,
)


def _scene_to_arrays(images, distinct_scores=True):
    """Per image: gts on a grid; detections jittered copies, some of the wrong class."""
    dets, gts = [], []
    counter = 0
    for objects in images:
        g_boxes, g_cls, g_diff, d_boxes, d_cls, d_scores = [], [], [], [], [], []
        for slot, cls, jitter, difficult, extra in objects:
            g_boxes.append(box(slot))
            g_cls.append(cls)
            g_diff.append(difficult)
            d_boxes.append(box(slot, jitter))
            d_cls.append((cls + extra) % 3)
            counter += 1
            d_scores.append(1.0 - counter * 1e-3 if distinct_scores else 0.5)
        gts.append(gt(g_boxes, g_cls, g_diff))
        dets.append(det(d_boxes, d_scores, d_cls))
    return dets, gts


@settings(max_examples=60, deadline=None)
@given(scene, st.sampled_from(["SAMPLE", "INTEGRATE"]), st.randoms(use_true_random=False))
def test_properties(images, mode, rnd):
    dets, gts = _scene_to_arrays(images)
    result = compute_ap(dets, gts, 3, mode=mode)
    assert all(0.0 <= v <= 1.0 for v in result.per_class_ap.values())
    np.testing.assert_allclose(
        list(result.per_class_ap.values()), reference_ap(dets, gts, 3, mode=mode), atol=1e-12
    )
    # Permuting images does not change AP (scores are distinct).
    order = list(range(len(dets)))
    rnd.shuffle(order)
    permuted = compute_ap([dets[i] for i in order], [gts[i] for i in order], 3, mode=mode)
    assert permuted.per_class_ap == pytest.approx(result.per_class_ap, abs=1e-12)
    # A false positive ranked after everything else changes neither mode's AP.
    extra = det(
        np.r_[dets[0].boxes.reshape(-1), MISS],
        np.r_[dets[0].scores, 1e-6],
        np.r_[dets[0].classes, 0],
    )
    with_fp = compute_ap([extra, *dets[1:]], gts, 3, mode=mode)
    assert with_fp.per_class_ap == pytest.approx(result.per_class_ap, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(scene, st.sampled_from(["SAMPLE", "INTEGRATE"]))
def test_perfect_detections_score_one(images, mode):
    gts = _scene_to_arrays(images)[1]
    dets = [det(g.boxes, np.linspace(1, 0.5, len(g)), g.classes) for g in gts]
    result = compute_ap(dets, gts, 3, mode=mode, include_difficult=True)
    for c in range(3):
        expected = 1.0 if result.num_ground_truth[str(c)] else 0.0
        assert result.per_class_ap[str(c)] == pytest.approx(expected)
