"""The ONNX post-processing graph against the shared decode + NMS (tlt_core.boxes.nms)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlt_core.boxes.nms import NmsConfig
from tlt_core.networks.ssd.network import softmax
from tlt_core.networks.ssd.onnx_postprocess import (
    NMS_EFFICIENT_TRT,
    OUTPUT_NAMES,
    PostprocessConfig,
    build_postprocess_graph,
)
from tlt_core.networks.ssd.postprocess import detections_from_outputs

VARIANCES = (0.1, 0.1, 0.2, 0.2)


def _anchors(rng, count: int) -> np.ndarray:
    centres = rng.uniform(0.0, 1.0, (count, 2))
    sizes = rng.uniform(0.05, 0.5, (count, 2))
    return np.concatenate([centres, sizes], axis=1).astype(np.float32)


def _run(cfg: PostprocessConfig, conf: np.ndarray, loc: np.ndarray) -> dict[str, np.ndarray]:
    import onnx
    import onnxruntime as ort

    model = build_postprocess_graph(cfg)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    values = session.run(None, {"conf": conf, "loc": loc})
    return dict(zip(OUTPUT_NAMES, values, strict=True))


def _compare(cfg, conf, loc, image_hw=(96, 128)):
    out = _run(cfg, conf, loc)
    nms = NmsConfig(cfg.confidence_threshold, cfg.iou_threshold, cfg.top_k)
    batch = conf.shape[0]
    expected = detections_from_outputs(
        softmax(conf), loc, cfg.anchors, VARIANCES, nms, [image_hw] * batch
    )
    height, width = image_hw
    scale = np.array([width, height, width, height])
    assert out["num_detections"].shape == (batch, 1) and out["num_detections"].dtype == np.int32
    for b in range(batch):
        n = int(out["num_detections"][b, 0])
        det = expected[b]
        assert n == len(det)
        boxes = np.clip(out["detection_boxes"][b, :n] * scale, 0, scale)
        np.testing.assert_allclose(boxes, det.boxes, rtol=1e-3, atol=1e-3 * max(image_hw))
        np.testing.assert_array_equal(out["detection_classes"][b, :n].astype(int) - 1, det.classes)
        np.testing.assert_allclose(out["detection_scores"][b, :n], det.scores, rtol=1e-5)
        # Padding rows: score 0, class 0 (background), box zeros.
        assert not out["detection_scores"][b, n:].any()
        assert not out["detection_classes"][b, n:].any()
        assert not out["detection_boxes"][b, n:].any()
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    classes=st.integers(1, 4),
    top_k=st.integers(1, 60),
    threshold=st.sampled_from([0.0, 0.05, 0.3, 0.6]),
    iou=st.sampled_from([0.3, 0.5, 0.6, 0.9]),
)
def test_matches_shared_nms(seed, classes, top_k, threshold, iou):
    rng = np.random.default_rng(seed)
    anchors = _anchors(rng, 150)
    cfg = PostprocessConfig(anchors, VARIANCES, classes + 1, threshold, iou, top_k)
    conf = (rng.normal(size=(2, 150, classes + 1)) * 3).astype(np.float32)
    loc = rng.normal(size=(2, 150, 4)).astype(np.float32)
    _compare(cfg, conf, loc)


def test_top_k_over_classes_and_empty_images():
    rng = np.random.default_rng(0)
    anchors = _anchors(rng, 200)
    cfg = PostprocessConfig(anchors, VARIANCES, 4, 0.2, 0.5, 10)
    conf = (rng.normal(size=(3, 200, 4)) * 4).astype(np.float32)
    conf[2, :, 0] = 50.0  # image 2: background everywhere, nothing above the threshold
    loc = rng.normal(size=(3, 200, 4)).astype(np.float32)
    out = _compare(cfg, conf, loc)
    assert out["num_detections"][:, 0].tolist()[:2] == [10, 10]
    assert out["num_detections"][2, 0] == 0
    assert out["detection_boxes"].shape == (3, 10, 4)
    scores = out["detection_scores"][0]
    assert np.all(np.diff(scores) <= 0)  # descending


def test_dynamic_batch_of_one():
    rng = np.random.default_rng(5)
    cfg = PostprocessConfig(_anchors(rng, 50), VARIANCES, 3, 0.1, 0.6, 20)
    conf = (rng.normal(size=(1, 50, 3)) * 3).astype(np.float32)
    loc = rng.normal(size=(1, 50, 4)).astype(np.float32)
    _compare(cfg, conf, loc)


def test_efficient_nms_variant_uses_the_stock_plugin():
    rng = np.random.default_rng(0)
    cfg = PostprocessConfig(_anchors(rng, 30), VARIANCES, 3, 0.01, 0.6, 200)
    model = build_postprocess_graph(cfg, NMS_EFFICIENT_TRT)
    (plugin,) = [n for n in model.graph.node if n.op_type == "EfficientNMS_TRT"]
    attrs = {a.name: a for a in plugin.attribute}
    assert attrs["background_class"].i == 0 and attrs["score_activation"].i == 0
    assert attrs["box_coding"].i == 0 and attrs["max_output_boxes"].i == 60  # min(200, 2*30)
    assert attrs["score_threshold"].f == pytest.approx(0.01)
    assert attrs["iou_threshold"].f == pytest.approx(0.6)
    assert list(plugin.input) == ["pp_boxes", "pp_scores"]
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    assert not any(n.op_type == "NonMaxSuppression" for n in model.graph.node)


def test_unknown_variant_is_refused():
    cfg = PostprocessConfig(np.zeros((1, 4), np.float32), VARIANCES, 2, 0.1, 0.5, 1)
    with pytest.raises(ValueError, match="unknown NMS variant"):
        build_postprocess_graph(cfg, "batched")
