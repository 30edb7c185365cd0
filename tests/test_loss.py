"""SsdLoss against small cases computed by hand (numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlt_core.networks.ssd.loss import SsdLoss, smooth_l1, ssd_loss_terms


def _ce(logits: np.ndarray, target: int) -> float:
    logits = np.asarray(logits, dtype=np.float64)
    return float(-(logits[target] - math.log(np.exp(logits).sum())))


def test_smooth_l1_pieces():
    values = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=np.float32)
    got = np.asarray(smooth_l1(values))
    np.testing.assert_allclose(got, [1.5, 0.125, 0.0, 0.125, 2.5], rtol=1e-6)


def test_one_positive_keeps_three_hardest_negatives():
    # 1 image, 6 anchors, 2 classes + background.
    logits = np.array(
        [
            [0.0, 2.0, 0.0],  # positive, class 1
            [0.0, 3.0, 0.0],  # negative, very hard
            [0.0, 1.0, 0.0],  # negative, medium
            [0.0, 0.0, 2.0],  # negative, hard
            [5.0, 0.0, 0.0],  # negative, easy
            [0.0, 0.5, 0.0],  # negative, medium-easy
        ],
        dtype=np.float32,
    )[None]
    classes = np.array([[1, 0, 0, 0, 0, 0]], dtype=np.int32)
    loc_t = np.zeros((1, 6, 4), np.float32)
    loc_p = np.zeros((1, 6, 4), np.float32)
    loc_p[0, 0] = [0.5, -2.0, 0.0, 0.0]  # positive: 0.125 + 1.5
    loc_p[0, 1] = [9.0, 9.0, 9.0, 9.0]  # negative: must not count
    conf, loc, npos = ssd_loss_terms(classes, loc_t, logits, loc_p, min_negatives=0)
    neg = sorted((_ce(logits[0, i], 0) for i in range(1, 6)), reverse=True)[:3]
    expected_conf = _ce(logits[0, 0], 1) + sum(neg)
    assert float(np.asarray(conf)[0]) == pytest.approx(expected_conf, rel=1e-5)
    assert float(np.asarray(loc)[0]) == pytest.approx(1.625, rel=1e-6)
    assert float(np.asarray(npos)[0]) == 1.0


def test_no_positive_uses_min_negatives_and_ignored_anchors_count_nothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 10, 3)).astype(np.float32)
    classes = np.zeros((1, 10), np.int32)
    classes[0, [2, 5]] = -1  # ignored
    loc = np.zeros((1, 10, 4), np.float32)
    conf, loc_sum, npos = ssd_loss_terms(classes, loc, logits, loc, min_negatives=2)
    ce = [_ce(logits[0, i], 0) for i in range(10) if i not in (2, 5)]
    assert float(np.asarray(conf)[0]) == pytest.approx(sum(sorted(ce, reverse=True)[:2]), rel=1e-5)
    assert float(np.asarray(loc_sum)[0]) == 0.0
    assert float(np.asarray(npos)[0]) == 0.0


def test_negatives_capped_at_available():
    logits = np.zeros((1, 3, 2), np.float32)
    classes = np.array([[1, 1, 0]], np.int32)  # 2 positives want 6 negatives, only 1 exists
    loc = np.zeros((1, 3, 4), np.float32)
    conf, _, _ = ssd_loss_terms(classes, loc, logits, loc)
    assert float(np.asarray(conf)[0]) == pytest.approx(3 * math.log(2), rel=1e-6)


def test_keras_loss_normalises_by_batch_positives():
    # Image 0: 2 positives; image 1: none. Batch value = total sum / 2.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 8, 3)).astype(np.float32)
    loc_p = rng.normal(size=(2, 8, 4)).astype(np.float32)
    loc_t = rng.normal(size=(2, 8, 4)).astype(np.float32)
    classes = np.zeros((2, 8), np.int32)
    classes[0, 0], classes[0, 3] = 1, 2
    y_true = np.concatenate([classes[..., None].astype(np.float32), loc_t], axis=-1)
    y_pred = np.concatenate([logits, loc_p], axis=-1)
    conf, loc, _ = ssd_loss_terms(classes, loc_t, logits, loc_p, min_negatives=4)
    expected = (np.asarray(conf).sum() + np.asarray(loc).sum()) / 2.0
    got = float(np.asarray(SsdLoss(min_negatives=4)(y_true, y_pred)))
    assert got == pytest.approx(expected, rel=1e-5)
    # Localisation weight alpha.
    got_alpha = float(np.asarray(SsdLoss(min_negatives=4, alpha=0.0)(y_true, y_pred)))
    assert got_alpha == pytest.approx(np.asarray(conf).sum() / 2.0, rel=1e-5)


def test_config_round_trip():
    loss = SsdLoss(neg_pos_ratio=2.0, min_negatives=7, alpha=0.5)
    again = SsdLoss.from_config(loss.get_config())
    assert (again.neg_pos_ratio, again.min_negatives, again.alpha) == (2.0, 7, 0.5)
