"""Classification metrics, their reports, the learning-rate schedules and the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.networks.classification.metrics import (
    compute_metrics,
    format_report,
    plot_confusion_matrix,
    write_json,
)
from tlt_core.networks.classification.schedule import ClassificationSchedule, learning_rate_at
from tlt_core.networks.classification.spec import LrSchedule

NAMES = ("cat", "dog", "owl")


def test_metrics_by_hand(tmp_path):
    scores = np.array(
        [
            [0.7, 0.2, 0.1],  # cat -> cat
            [0.1, 0.6, 0.3],  # cat -> dog (cat 3rd)
            [0.2, 0.5, 0.3],  # dog -> dog
            [0.3, 0.3, 0.4],  # dog -> owl (dog 2nd: tie with cat, lower index first)
        ]
    )
    labels = np.array([0, 0, 1, 1])
    result = compute_metrics(scores, labels, NAMES, k=2)
    assert result.top1 == 0.5
    assert result.top_k == 0.5  # image 1: top-2 = dog, owl; image 3: top-2 = owl, cat
    np.testing.assert_array_equal(result.confusion, [[1, 1, 0], [0, 1, 1], [0, 0, 0]])
    np.testing.assert_allclose(result.precision, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(result.recall, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(result.f1, [2 / 3, 0.5, 0.0])
    text = format_report(result)
    assert "Found 4 images belonging to 3 classes." in text
    assert "Top-1 accuracy: 0.5000" in text and "Top-2 accuracy: 0.5000" in text
    assert "owl" in text and "n/a" in text
    saved = json.loads(write_json(result, tmp_path / "m.json").read_text())
    assert saved["top1_accuracy"] == 0.5 and saved["confusion_matrix"][0] == [1, 1, 0]
    png = plot_confusion_matrix(result, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(2, 6), st.integers(1, 8), st.integers(0, 2**31))
def test_metric_identities(n, c, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, c))
    labels = rng.integers(0, c, n)
    result = compute_metrics(scores, labels, [str(i) for i in range(c)], k=k)
    assert result.confusion.sum() == n
    assert result.top1 == pytest.approx(np.mean(np.argmax(scores, 1) == labels))
    assert result.top1 <= result.top_k <= 1.0
    assert result.k == min(k, c)
    if result.k == c:
        assert result.top_k == 1.0
    np.testing.assert_array_equal(result.support, np.bincount(labels, minlength=c))


def _schedule(kind, **kw):
    return LrSchedule(kind, 0.1, **kw)


@pytest.mark.parametrize(
    "lr",
    [
        _schedule("step", step_size=2, gamma=0.5),
        _schedule("soft_anneal", soft_start=0.1, annealing_points=(0.3, 0.6), annealing_divider=10),
        _schedule("cosine", soft_start=0.2, min_lr_ratio=0.01),
    ],
)
def test_keras_schedule_matches_reference(lr):
    steps_per_epoch, total = 5, 50
    schedule = ClassificationSchedule.from_spec(lr, steps_per_epoch=5, total_steps=50, scale=2.0)
    for step in range(0, total + 1, 3):
        expected = 2.0 * learning_rate_at(lr, step, steps_per_epoch, total)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=1e-9)
    restored = ClassificationSchedule.from_config(schedule.get_config())
    assert float(restored(17)) == pytest.approx(float(schedule(17)))


def test_schedule_shapes():
    step = _schedule("step", step_size=2, gamma=0.5)
    assert [learning_rate_at(step, e * 10, 10, 100) for e in range(5)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )
    soft = _schedule("soft_anneal", soft_start=0.1, annealing_points=(0.5,), annealing_divider=10)
    assert learning_rate_at(soft, 5, 1, 100) == pytest.approx(0.05)
    assert learning_rate_at(soft, 40, 1, 100) == pytest.approx(0.1)
    assert learning_rate_at(soft, 60, 1, 100) == pytest.approx(0.01)
    cosine = _schedule("cosine", min_lr_ratio=0.1)
    assert learning_rate_at(cosine, 0, 1, 100) == pytest.approx(0.1)
    assert learning_rate_at(cosine, 50, 1, 100) == pytest.approx(0.055)
    assert learning_rate_at(cosine, 100, 1, 100) == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("arch", "n_layers"), [("resnet", 10), ("mobilenet_v2", None), ("vgg", 16)]
)
def test_model_layout(arch, n_layers):
    from tlt_core.networks.classification.model import build_classifier

    model = build_classifier(
        arch=arch, n_layers=n_layers, input_shape=(32, 32, 3), num_classes=4, dropout=0.2
    )
    assert model.inputs[0].name == "input_1" or model.layers[0].name == "input_1"
    assert model.layers[-1].name == "predictions"
    out = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32)))
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
