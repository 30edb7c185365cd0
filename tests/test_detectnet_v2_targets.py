"""DetectNet_v2 rasteriser and box coding against a per-cell reference; the cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.networks.detectnet_v2.coding import STRIDE, decode
from tlt_core.networks.detectnet_v2.cost import DetectNetCost, cost_terms, objective_weights
from tlt_core.networks.detectnet_v2.rasterizer import RasterSettings, rasterize, split_targets
from tlt_core.networks.detectnet_v2.spec import CostClass, CostSpec

ROWS, COLS, C = 6, 8, 2


def _settings(deadzone=0.5, min_radius=1.0, min_size=(0.0, 0.0)):
    return RasterSettings(
        rows=ROWS,
        cols=COLS,
        cov_center=np.array([[0.5, 0.5], [0.5, 0.4]], np.float32),
        cov_radius=np.array([[0.4, 0.4], [1.0, 1.0]], np.float32),
        min_radius=np.array([min_radius, 0.5], np.float32),
        deadzone=deadzone,
        bbox_scale=35.0,
        bbox_offset=0.5,
        min_size=min_size,
    )


def _reference(boxes, classes, s: RasterSettings):
    """Per image, per cell, per class: the rules of the module docstring as loops."""
    b = len(boxes)
    cov = np.zeros((b, s.rows, s.cols, C), np.float32)
    bbox = np.zeros((b, s.rows, s.cols, C, 4), np.float32)
    mask = np.ones((b, s.rows, s.cols, C), np.float32)
    for n in range(b):
        for i in range(s.rows):
            for j in range(s.cols):
                px, py = (j + 0.5) * STRIDE, (i + 0.5) * STRIDE
                for c in range(C):
                    best, best_d, near = None, np.inf, False
                    for box, cls in zip(boxes[n], classes[n], strict=True):
                        w, h = box[2] - box[0], box[3] - box[1]
                        if cls != c + 1 or w <= 0 or h <= 0:
                            continue
                        if w < s.min_size[0] or h < s.min_size[1]:
                            continue
                        ex = box[0] + s.cov_center[c, 0] * w
                        ey = box[1] + s.cov_center[c, 1] * h
                        rx = max(s.cov_radius[c, 0] * w / 2, s.min_radius[c] * STRIDE)
                        ry = max(s.cov_radius[c, 1] * h / 2, s.min_radius[c] * STRIDE)
                        d = np.hypot((px - ex) / rx, (py - ey) / ry)
                        if d <= 1 and d < best_d:
                            best, best_d = box, d
                        if d <= 1 + s.deadzone:
                            near = True
                    if best is not None:
                        cov[n, i, j, c] = 1
                        rx_, ry_ = j * STRIDE + s.bbox_offset, i * STRIDE + s.bbox_offset
                        bbox[n, i, j, c] = (
                            np.array([rx_ - best[0], ry_ - best[1], best[2] - rx_, best[3] - ry_])
                            / s.bbox_scale
                        )
                    elif near:
                        mask[n, i, j, c] = 0
    return cov, bbox.reshape(b, s.rows, s.cols, 4 * C), mask


_box = st.tuples(
    st.floats(-20, 140), st.floats(-20, 100), st.floats(1, 90), st.floats(1, 70), st.integers(0, 2)
)


@settings(max_examples=40, deadline=None)
@given(
    objects=st.lists(st.lists(_box, min_size=0, max_size=5), min_size=1, max_size=3),
    deadzone=st.sampled_from([0.0, 0.67]),
    min_size=st.sampled_from([(0.0, 0.0), (10.0, 12.0)]),
)
def test_rasterizer_matches_per_cell_reference(objects, deadzone, min_size):
    n = max(len(o) for o in objects)
    boxes = np.zeros((len(objects), n, 4), np.float32)
    classes = np.zeros((len(objects), n), np.int32)
    for b, image in enumerate(objects):
        for k, (x, y, w, h, cls) in enumerate(image):
            boxes[b, k] = (x, y, x + w, y + h)
            classes[b, k] = cls
    s = _settings(deadzone=deadzone, min_size=min_size)
    y_true = rasterize(boxes, classes, s).numpy()
    cov, bbox, mask = split_targets(y_true, C)
    ref_cov, ref_bbox, ref_mask = _reference(boxes, classes, s)
    np.testing.assert_array_equal(cov, ref_cov)
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_allclose(bbox, ref_bbox, atol=1e-5)


def test_small_object_covers_its_cell_and_decodes_back():
    s = _settings()
    box = np.array([[[50.0, 30.0, 58.0, 38.0]]], np.float32)  # 8x8 px, less than a cell
    y_true = rasterize(box, np.array([[1]]), s).numpy()
    cov, bbox, _ = split_targets(y_true, C)
    assert cov[0, ..., 0].sum() >= 1  # bbox_min_radius: at least the cell it sits in
    assert cov[0, 2, 3, 0] == 1  # the cell containing the centre (54, 34)
    decoded = decode(bbox[0].reshape(ROWS, COLS, C, 4), 35.0, 0.5)
    np.testing.assert_allclose(decoded[2, 3, 0], box[0, 0], atol=1e-4)


def test_empty_batch_has_no_coverage():
    y_true = rasterize(np.zeros((2, 0, 4), np.float32), np.zeros((2, 0), np.int32), _settings())
    assert y_true.shape == (2, ROWS, COLS, 6 * C)
    cov, bbox, mask = split_targets(y_true.numpy(), C)
    assert cov.sum() == 0 and bbox.sum() == 0 and mask.min() == 1


def _cost_spec(autoweighting=False):
    classes = (
        CostClass(1.0, 0.05, (1.0, 10.0), (1.0, 10.0)),
        CostClass(1.0, 0.05, (1.0, 10.0), (1.0, 1.0)),
    )
    return CostSpec(classes, autoweighting, 1e-4, 0.9999)


def test_cost_is_zero_for_perfect_predictions_and_weighs_cells_as_tlt():
    boxes = np.array([[[20.0, 20.0, 80.0, 70.0]]], np.float32)
    y_true = rasterize(boxes, np.array([[1]]), _settings()).numpy()
    cov, bbox, mask = split_targets(y_true, C)
    perfect = np.concatenate([cov, bbox], axis=-1)
    cov_cost, bbox_cost = cost_terms(y_true, perfect, C, [0.05, 0.05])
    floor = float(np.sum(cov_cost))
    assert floor < 1e-5 and float(np.sum(bbox_cost)) == 0
    # Predicting 0.5 on one background cell costs (1 - 0.05) * ln 2 / cells more; on a
    # dead-zone cell nothing; on a foreground cell 0.05 * ln 2 / cells (TLT's weighting:
    # coverage_foreground_weight is the weight of the foreground cells).
    cells = ROWS * COLS
    background = np.argwhere((cov[0, ..., 0] == 0) & (mask[0, ..., 0] == 1))[0]
    wrong = perfect.copy()
    wrong[0, background[0], background[1], 0] = 0.5
    cov_cost, _ = cost_terms(y_true, wrong, C, [0.05, 0.05])
    assert float(cov_cost[0, 0]) == pytest.approx(0.95 * np.log(2) / cells, abs=1e-6)
    dead = np.argwhere(mask[0, ..., 0] == 0)
    assert len(dead), "the dead zone is not empty for this box"
    wrong = perfect.copy()
    wrong[0, dead[0][0], dead[0][1], 0] = 0.5
    cov_cost, _ = cost_terms(y_true, wrong, C, [0.05, 0.05])
    assert float(cov_cost[0, 0]) < 1e-5
    fg = np.argwhere(cov[0, ..., 0] == 1)[0]
    wrong = perfect.copy()
    wrong[0, fg[0], fg[1], 0] = 0.5
    cov_cost, _ = cost_terms(y_true, wrong, C, [0.05, 0.05])
    assert float(cov_cost[0, 0]) == pytest.approx(0.05 * np.log(2) / cells, abs=1e-6)
    # A box error only counts on covered cells, as L1.
    wrong = perfect.copy()
    fg = np.argwhere(cov[0, ..., 0] == 1)[0]
    wrong[0, fg[0], fg[1], C + 0] += 0.5
    _, bbox_cost = cost_terms(y_true, wrong, C, [0.05, 0.05])
    assert float(bbox_cost[0, 0]) == pytest.approx(0.5 / (ROWS * COLS))


def test_objective_weights_follow_the_schedule_and_clip():
    spec = _cost_spec()
    initial = [k.initial_weights for k in spec.classes]
    target = [k.target_weights for k in spec.classes]
    start = np.asarray(objective_weights(0.0, initial, target, 1e-4, 0.9999))
    end = np.asarray(objective_weights(1.0, initial, target, 1e-4, 0.9999))
    np.testing.assert_allclose(start[1], [1 / 11, 10 / 11], rtol=1e-6)
    np.testing.assert_allclose(end[1], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(end[0], start[0], rtol=1e-6)
    clipped = np.asarray(objective_weights(0.0, [[1.0, 0.0]], [[1.0, 0.0]], 0.1, 0.9))
    np.testing.assert_allclose(clipped, [[0.9, 0.1]])


def test_autoweighting_divides_by_the_running_cost():
    loss = DetectNetCost(_cost_spec(autoweighting=True), C, total_steps=10)
    boxes = np.array([[[20.0, 20.0, 80.0, 70.0]], [[30.0, 10.0, 60.0, 90.0]]], np.float32)
    y_true = rasterize(boxes, np.array([[1], [2]]), _settings()).numpy()
    pred = np.full(y_true[..., : 5 * C].shape, 0.3, np.float32)
    value = float(loss(y_true, pred))  # the mean of the per-image costs
    assert np.isfinite(value) and value > 0
    assert float(loss.step) == 1
    weights = np.asarray(loss.weights_now())
    cov_cost, bbox_cost = (np.asarray(t).mean(0) for t in cost_terms(y_true, pred, C, [0.05, 0.05]))
    # After one step the bias-corrected average is the cost itself: weight ~ w0 / cost.
    raw = np.array([[1.0, 10.0], [1.0, 10.0 - 9.0 * 0.1]]) / np.stack([cov_cost, bbox_cost], 1)
    np.testing.assert_allclose(
        weights, np.clip(raw / raw.sum(1, keepdims=True), 1e-4, 0.9999), rtol=1e-4
    )
