"""000's spec as a TLT 3.0 user writes it (issue 13): spellings of its tables, the limits it
states, fields with no effect here, and enable_qat (QAT)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tlt_core.errors import SpecError
from tlt_core.networks.ssd.spec import load_experiment, parse_experiment

SSD_TEXT = (
    Path(__file__).resolve().parents[1] / "specs" / "samples" / "ssd_kitti_train.txt"
).read_text()


def _with(old: str, new: str) -> str:
    assert old in SSD_TEXT, old
    return SSD_TEXT.replace(old, new, 1)


def _line_of(text: str, marker: str) -> int:
    found = [n for n, line in enumerate(text.split("\n"), start=1) if marker in line]
    assert len(found) == 1, (marker, found)
    return found[0]


def _load_error(tmp_path, text: str) -> SpecError:
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_experiment(spec)
    assert "\n" not in str(caught.value)
    return caught.value


# -- item 3: cluster_iou_threshold is clustering_iou_threshold ---------------------------------
def test_cluster_iou_threshold_is_an_alias():
    text = _with("clustering_iou_threshold: 0.6", "cluster_iou_threshold: 0.45")
    assert parse_experiment(text).nms.clustering_iou_threshold == 0.45


def test_both_iou_spellings_is_a_located_error(tmp_path):
    text = _with(
        "clustering_iou_threshold: 0.6",
        "clustering_iou_threshold: 0.6\n  cluster_iou_threshold: 0.5",
    )
    error = _load_error(tmp_path, text)
    assert error.line == _line_of(text, "cluster_iou_threshold: 0.5")
    assert "nms_config.cluster_iou_threshold: same field as clustering_iou_threshold" in str(error)


def test_alias_keeps_the_iou_range_check(tmp_path):
    text = _with("clustering_iou_threshold: 0.6", "cluster_iou_threshold: 1.5")
    error = _load_error(tmp_path, text)
    assert error.line == _line_of(text, "cluster_iou_threshold")
    assert "nms_config.cluster_iou_threshold: must be in (0, 1], got 1.5" in str(error)


# -- item 7: limits 000 states ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "  output_channel: 3\n",
            "  output_channel: 3\n  random_flip: 1.0\n",
            "random_flip",
            "augmentation_config.random_flip: must be in [0, 1), got 1",
        ),
        (
            "  top_k: 200\n",
            "  top_k: 200\n  infer_nms_score_bits: 11\n",
            "infer_nms_score_bits",
            "nms_config.infer_nms_score_bits: must be in [1, 10], got 11",
        ),
    ],
)
def test_limits_are_located_errors(tmp_path, old, new, marker, message):
    text = _with(old, new)
    error = _load_error(tmp_path, text)
    assert error.line == _line_of(text, marker)
    assert message in str(error)


@pytest.mark.parametrize("bits", [1, 10])
def test_score_bits_in_range_load(bits):
    text = _with("  top_k: 200\n", f"  top_k: 200\n  infer_nms_score_bits: {bits}\n")
    assert parse_experiment(text).nms.infer_nms_score_bits == bits


# -- item 8: fields with no effect are said so once; n_workers sets the parallelism ----------
def test_no_effect_fields_are_logged_once_at_load(tmp_path, caplog):
    text = _with(
        "  enable_qat: false\n",
        "  enable_qat: false\n  max_queue_size: 4\n  use_multiprocessing: true\n",
    )
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    with caplog.at_level(logging.WARNING):
        exp = load_experiment(spec)
        exp.with_overrides({"training_config.num_epochs": 2})  # a rewrite logs nothing again
    messages = [r.getMessage() for r in caplog.records]
    for name in ("max_queue_size", "use_multiprocessing"):
        hits = [m for m in messages if f"training_config.{name}: accepted for compatibility" in m]
        assert len(hits) == 1, (name, messages)
        assert hits[0].startswith(f"{spec}:{_line_of(text, name)}: ")


def test_n_workers_sets_the_pipelines_parallel_calls(monkeypatch):
    import tlt_core.data.pipeline as pipeline
    from tlt_core.networks import get_network

    seen = []
    real = pipeline.build_dataset

    def spy(*args, **kwargs):
        seen.append(kwargs.get("parallel_calls"))
        raise RuntimeError("stop")

    monkeypatch.setattr(pipeline, "build_dataset", spy)
    net = get_network("ssd")
    for text, want in (
        (_with("  enable_qat: false\n", "  enable_qat: false\n  n_workers: 3\n"), 3),
        (SSD_TEXT, None),  # absent: tf.data tunes it
    ):
        with pytest.raises(RuntimeError):
            net.input_pipeline(parse_experiment(text), training=False, batch_size=1)
        assert seen[-1] == want
    assert real is not spy


def test_n_workers_pipeline_runs_with_fixed_parallelism(tmp_path):
    from tlt_core.data.sample import generate_sample_data
    from tlt_core.networks import get_network
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    generate_sample_data(tmp_path, num_train=4, num_val=2, seed=0)
    text = sample_experiment_spec(tmp_path, output_width=64, output_height=64)
    exp = parse_experiment(
        text.replace("batch_size_per_gpu:", "n_workers: 2\n  batch_size_per_gpu:")
    )
    assert exp.training.n_workers == 2
    batches = list(
        get_network("ssd").input_pipeline(exp, training=False, batch_size=2).as_numpy_iterator()
    )
    assert sum(b["image"].shape[0] for b in batches) == 2


def test_use_multiprocessing_flag_is_accepted_and_said_to_do_nothing(tmp_path, capsys):
    from tlt_core.cli import main

    missing = tmp_path / "absent.txt"
    argv = ["ssd", "train", "-e", str(missing), "-r", str(tmp_path / "r"), "-k", "k"]
    assert main([*argv, "--use_multiprocessing"]) == 2  # the spec is missing: stops there
    err = capsys.readouterr().err
    assert "--use_multiprocessing: accepted for compatibility with TLT; it has no effect" in err
    assert "no such spec file" in err.splitlines()[-1]


# -- item 9: enable_qat is QAT (tlt_core.models.qat; from scratch: tests/test_qat_scratch.py) ----
def test_enable_qat_loads_and_turns_qat_on(tmp_path):
    from tlt_core.networks import get_network

    spec = tmp_path / "spec.txt"
    spec.write_text(_with("enable_qat: false", "enable_qat: true"))
    assert get_network("ssd").training_settings(load_experiment(spec)).enable_qat


# -- item 8: infer_nms_score_bits: TensorRT's NMS score cut, in the shared NMS and the graph -
def test_score_key_is_the_fp16_bit_cut():
    from tlt_core.boxes.nms import score_sort_key

    scores = np.array([0.0, 6e-6, 0.01, 0.3, 0.30004, 0.5, 0.75, 0.999, 1.0], np.float32)
    assert np.array_equal(score_sort_key(scores, 0), scores.astype(np.float64))
    bits = np.asarray(scores, np.float16).view(np.uint16).astype(np.int64)
    for n in (1, 4, 10):
        assert np.array_equal(score_sort_key(scores, n), bits >> (10 - n))
    # 3 bits: 0.3 and 0.30004 share a key (same order as their anchors), 0.5 and 0.75 not.
    key = score_sort_key(scores, 3)
    assert key[3] == key[4] and key[5] < key[6]


def test_score_bits_reorder_nms_as_documented():
    from tlt_core.boxes.nms import NmsConfig, nms_multiclass

    # Two far-apart boxes of one class: 0.31 before 0.3 exactly, but with 2 bits both cut
    # to the same key and the lower anchor comes first; scores returned stay exact.
    boxes = np.array([[0, 0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]])
    scores = np.array([[0.0, 0.3], [0.0, 0.31]])
    anchor, _, score = nms_multiclass(boxes, scores, NmsConfig(0.01, 0.5, 10))
    assert anchor.tolist() == [1, 0] and score.tolist() == [0.31, 0.3]
    anchor, _, score = nms_multiclass(boxes, scores, NmsConfig(0.01, 0.5, 10, score_bits=2))
    assert anchor.tolist() == [0, 1] and score.tolist() == [0.3, 0.31]


@pytest.mark.parametrize("score_bits", [1, 3, 10])
def test_graph_nms_with_score_bits_matches_the_shared_nms(score_bits):
    import onnxruntime as ort

    from tlt_core.boxes.nms import NmsConfig
    from tlt_core.networks.ssd.network import softmax
    from tlt_core.networks.ssd.onnx_postprocess import PostprocessConfig, build_postprocess_graph
    from tlt_core.networks.ssd.postprocess import detections_from_outputs

    rng = np.random.default_rng(score_bits)
    count, classes = 200, 3
    anchors = np.concatenate(
        [rng.uniform(0, 1, (count, 2)), rng.uniform(0.05, 0.5, (count, 2))], axis=1
    ).astype(np.float32)
    variances = (0.1, 0.1, 0.2, 0.2)
    cfg = PostprocessConfig(anchors, variances, classes + 1, 0.05, 0.5, 40, score_bits)
    conf = (rng.normal(size=(2, count, classes + 1)) * 3).astype(np.float32)
    loc = rng.normal(size=(2, count, 4)).astype(np.float32)
    session = ort.InferenceSession(
        build_postprocess_graph(cfg).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    num, boxes, scores, labels = session.run(None, {"conf": conf, "loc": loc})
    nms = NmsConfig(0.05, 0.5, 40, score_bits=score_bits)
    expected = detections_from_outputs(softmax(conf), loc, anchors, variances, nms, [(1, 1)] * 2)
    plain = detections_from_outputs(
        softmax(conf), loc, anchors, variances, NmsConfig(0.05, 0.5, 40), [(1, 1)] * 2
    )
    reordered = False
    for b in range(2):
        n = int(num[b, 0])
        assert n == len(expected[b])
        np.testing.assert_array_equal(labels[b, :n].astype(int) - 1, expected[b].classes)
        np.testing.assert_allclose(scores[b, :n], expected[b].scores, rtol=1e-6)
        np.testing.assert_allclose(
            np.clip(boxes[b, :n], 0, 1), expected[b].boxes, rtol=1e-4, atol=1e-4
        )
        reordered |= not np.array_equal(expected[b].scores, plain[b].scores)
    if score_bits <= 3:
        assert reordered, "a coarse cut should change the order somewhere"
