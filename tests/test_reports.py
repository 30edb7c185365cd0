"""The UI reports: pure rendering (escaping, tables, data URIs) and the frames an evaluation
report draws (worst and best, TP/FP/miss from the AP matching)."""

import base64
import html
import re

import cv2
import numpy as np
import pytest
from markdown_it import MarkdownIt

from tlt_core import reports
from tlt_core.boxes.nms import Detections
from tlt_core.evaluate.ap import GroundTruth, compute_ap, match_detections
from tlt_core.evaluate.frames import FrameSelector, frame_outcome

HOSTILE = "<script>alert('x')</script>|*_"


def render_markdown(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def png(width=40, height=30, colour=(0, 128, 255)) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = colour
    return cv2.imencode(".png", image)[1].tobytes()


def tile(frame_id="f1", kind="worst") -> reports.Tile:
    return reports.Tile(frame_id, kind, png(), 40, 30, 1, 2, 3, "image/png")


def test_evaluation_page_is_self_contained_and_escapes_names():
    page = reports.evaluation_html(
        f"Evaluation {HOSTILE}",
        mean_ap=0.5,
        mode="SAMPLE",
        iou_threshold=0.5,
        num_images=3,
        classes=[reports.ClassRow(HOSTILE, 0.5, 4, 5, 2, 3)],
        pr_curves=[(HOSTILE, png())],
        tiles=[tile(HOSTILE), tile("b", "best")],
        threshold=0.3,
    )
    assert "<script" not in page
    assert html.escape(HOSTILE) in page
    assert page.count('class="tile ') == 2
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    decoded = base64.b64decode(sources[0].split(",", 1)[1])
    assert cv2.imdecode(np.frombuffer(decoded, np.uint8), cv2.IMREAD_COLOR).shape == (30, 40, 3)
    assert "http" not in page.replace("http-equiv", "")


def test_gate_markdown_says_pass_or_fail_with_each_check():
    failing = reports.gate_markdown(
        unpruned_map=0.8, pruned_map=0.7, min_map=0.5, max_map_drop=0.02, verdict="fail: lost"
    )
    assert failing.startswith("# Quality gate: FAIL")
    rendered = render_markdown(failing)
    assert rendered.count("<tr>") == 3  # header + two checks
    assert "0.1000" in failing and "at most 0.0200" in failing and "**fail**" in failing
    passing = reports.gate_markdown(
        unpruned_map=0.8, pruned_map=0.79, min_map=0.5, max_map_drop=0.02, verdict="pass"
    )
    assert passing.startswith("# Quality gate: PASS") and "**fail**" not in passing


def test_markdown_tables_escape_user_names():
    text = reports.engine_builds_markdown(
        HOSTILE,
        {
            "fp16": {"status": "built", "engine_bytes": 3 * 1024 * 1024, "latency_ms": 1.25},
            "int8": {"status": "skipped", "reason": f"no TensorRT {HOSTILE}"},
        },
    )
    rendered = render_markdown(text)
    assert "<script>" not in rendered
    assert rendered.count("<tr>") == 3, "the | in a name must not split a table cell"
    assert "3.0 MiB" in text and "1.25 ms" in text and "not built" in text


def test_prune_markdown_totals_and_latency():
    groups = [reports.LayerGroupParams("stem", 100, 100), reports.LayerGroupParams("b1", 900, 300)]
    text = reports.prune_markdown(
        groups, threshold=0.1, latency=reports.Latency(10.0, 5.0, "Keras CPU")
    )
    assert "**400** of 1,000" in text and "33.3 %" in text and "2.00x" in text
    assert render_markdown(text).count("<table>") == 2
    assert "not measured: why" in reports.prune_markdown(
        groups, threshold=0.1, latency=None, latency_note="why"
    )


def test_run_summary_lists_stages_and_engines():
    text = reports.run_summary_markdown(
        pipeline="tlt-ssd-train-deploy",
        model_version="v1",
        version_uri="/tmp/published/v1",
        value=0.61234,
        stages=[reports.StageTime("train", 125.0), reports.StageTime("export", None)],
        engines={"x86-t4": {"fp16": {"status": "skipped", "reason": "no TensorRT"}}},
    )
    assert "0.6123" in text and "2 min 05 s" in text and "not recorded" in text
    assert "/tmp/published/v1" in text and "x86\\-t4" in text
    assert render_markdown(text).count("<table>") == 2


def det(boxes, classes, scores) -> Detections:
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(classes, np.int64),
        np.asarray(scores, np.float32),
    )


def gt(boxes, classes, difficult=None) -> GroundTruth:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    difficult = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult)
    return GroundTruth(boxes, np.asarray(classes, np.int64), difficult)


def test_match_detections_is_the_ap_matching():
    rng = np.random.default_rng(0)
    detections, truths = [], []
    for _ in range(20):
        n, m = rng.integers(0, 6, 2)
        xy = rng.uniform(0, 80, (n, 2))
        detections.append(
            det(np.c_[xy, xy + rng.uniform(5, 30, (n, 2))], rng.integers(0, 2, n), rng.random(n))
        )
        xy = rng.uniform(0, 80, (m, 2))
        truths.append(gt(np.c_[xy, xy + rng.uniform(5, 30, (m, 2))], rng.integers(0, 2, m)))
    matched = match_detections(detections, truths, 2, 0.3)
    ap = compute_ap(detections, truths, ["a", "b"], iou_threshold=0.3)
    tp = sum(int(np.sum(m >= 0)) for m in matched)
    assert tp == sum(ap.num_true_positives.values())
    for m, d, g in zip(matched, detections, truths, strict=True):
        hits = m[m >= 0]
        assert len(set(hits.tolist())) == hits.size, "a ground truth is matched once"
        assert np.all(g.classes[hits] == d.classes[m >= 0])


def test_frame_outcome_counts_tp_fp_misses_and_ignores_difficult():
    truth = gt([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0, 0, 0], [0, 0, 1])
    found = det([[0, 0, 10, 10], [60, 60, 70, 70], [40, 40, 50, 50]], [0, 0, 0], [0.9, 0.8, 0.7])
    [matched] = match_detections([found], [truth], 1, 0.5)
    assert frame_outcome(found, truth, matched) == (1, 1, 1)


def frames_batch(n_frames: int, size: int = 64):
    """Frames with one object each; frame i gets i false positives (0 = perfect)."""
    images, detections, truths, ids = [], [], [], []
    for i in range(n_frames):
        images.append(np.full((size, size, 3), -50.0, np.float32))
        box = [[10, 10, 30, 30]]
        extra = [[40, 40 - k, 60, 60 - k] for k in range(i)]
        detections.append(det(box + extra, [0] * (1 + i), [0.9] + [0.5] * i))
        truths.append(gt(box, [0]))
        ids.append(f"frame_{i:02d}")
    return np.stack(images), detections, truths, ids


def test_selector_keeps_worst_and_best_frames_across_batches():
    selector = FrameSelector(4, ["car"], (100, 100, 100), iou_threshold=0.5, threshold=0.3)
    images, detections, truths, ids = frames_batch(10)
    for lo in range(0, 10, 3):  # batches of 3
        part = slice(lo, lo + 3)
        selector.add(images[part], detections[part], truths[part], ids[part])
    tiles = selector.tiles()
    assert [t.frame_id for t in tiles] == ["frame_09", "frame_08", "frame_00", "frame_01"]
    assert [t.kind for t in tiles] == ["worst", "worst", "best", "best"]
    assert tiles[0].false_positives == 9 and tiles[2].false_positives == 0
    decoded = cv2.imdecode(np.frombuffer(tiles[0].image, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (tiles[0].height, tiles[0].width) == (320, 320)
    # The image mean is added back (-50 + 100) and an FP box is drawn in orange (JPEG: near).
    assert np.any(np.all(np.abs(decoded.astype(int) - (0, 140, 255)) < 12, axis=-1))
    assert np.abs(decoded[5, 5].astype(int) - 50).max() <= 2


def test_selector_with_fewer_frames_than_asked_shows_each_once():
    selector = FrameSelector(12, ["car"], (0, 0, 0), iou_threshold=0.5, threshold=0.3)
    selector.add(*frames_batch(3), original_sizes=[(100, 200), (300, 150), (64, 64)])
    tiles = selector.tiles()
    assert sorted(t.frame_id for t in tiles) == ["frame_00", "frame_01", "frame_02"]
    # Drawn at the source's aspect ratio, the shorter side 320 pixels.
    assert [t.kind for t in tiles] == ["worst", "worst", "best"]  # 3 frames: 2 worst, 1 best
    sizes = {t.frame_id: (t.height, t.width) for t in tiles}
    assert sizes == {"frame_00": (320, 640), "frame_01": (640, 320), "frame_02": (320, 320)}


def test_selector_ignores_predictions_that_are_not_detections():
    """A classifier's predictions (class scores) go by the hook without a grid."""
    selector = FrameSelector(4, ["car"], (0, 0, 0), iou_threshold=0.5, threshold=0.3)
    images = np.zeros((2, 8, 8, 3), np.float32)
    selector.add(images, [np.array([0.9, 0.1])] * 2, [0, 1], ["a", "b"])
    assert selector.tiles() == []


def test_evaluation_page_of_a_metric_without_detection_counts():
    """A network whose metric is not AP: its name and per-class values, no count columns,
    no PR curves, no frames."""
    page = reports.evaluation_html(
        "Evaluation",
        mean_ap=0.75,
        mode="",
        iou_threshold=0.0,
        num_images=4,
        classes=[reports.ClassRow("cat", 0.5), reports.ClassRow("dog", 1.0)],
        pr_curves=[],
        tiles=[],
        threshold=0.3,
        metric="top1_accuracy",
    )
    assert "top1_accuracy <b>0.7500</b> over 4" in page
    assert "<th>top1_accuracy</th>" in page and "objects" not in page and "IoU" not in page
    assert "Precision-recall" not in page and "<img" not in page


@pytest.mark.parametrize("threshold", [0.95])
def test_selector_threshold_hides_low_scores_and_counts_misses(threshold):
    selector = FrameSelector(2, ["car"], (0, 0, 0), iou_threshold=0.5, threshold=threshold)
    selector.add(*frames_batch(2))
    assert all(t.misses == 1 and t.false_positives == 0 for t in selector.tiles())


def test_local_reports_are_copied_with_task_names_and_titles(tmp_path):
    from pipelines.local_reports import collect_reports, latest_run_dir

    run = tmp_path / "kfp" / "tlt-ssd-train-deploy-2026-01-01-00-00-00-000000"
    for task, output, text in [
        ("evaluate-2", "report", "<html><title>Evaluation &lt;x&gt;</title></html>"),
        ("quality-gate", "gate_report", "# Quality gate: PASS\n\nBoth checks.\n\n# Other\n"),
        ("build-engines-2", "engine_report", "# TensorRT engines for target jetson\\-orin\n"),
        ("train", "model", "not a report"),
    ]:
        (run / task).mkdir(parents=True)
        (run / task / output).write_text(text)
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    (reports_dir / "stale.md").write_text("from an earlier run")
    assert latest_run_dir(tmp_path / "kfp", "tlt-ssd-train-deploy") == run
    found = collect_reports(run, reports_dir)
    assert [(r.path.name, r.title) for r in found] == [
        ("build-engines-2.md", "TensorRT engines for target jetson-orin"),
        ("evaluate-2.html", "Evaluation <x>"),
        ("quality-gate.md", "Quality gate: PASS"),
    ]
    assert sorted(p.name for p in reports_dir.iterdir()) == [r.path.name for r in found]


def test_run_summary_reads_the_published_version_and_stage_times(tmp_path):
    import json
    from types import SimpleNamespace

    from tlt_core.pipeline_support import summary_report_markdown
    from tlt_core.publish import VersionLocation

    version = VersionLocation(str(tmp_path / "published"), "v7")
    engines = tmp_path / "engines"
    engines.mkdir()
    (engines / "build_report.json").write_text(
        json.dumps({"fp16": {"status": "skipped", "reason": "no TensorRT", "seconds": 1.5}})
    )
    version.put(engines, "engines/x86-t4")
    version.write_manifest({"metrics": {"mAP": 0.625}})
    text = summary_report_markdown(
        "tlt-ssd-train-deploy",
        str(tmp_path / "published"),
        "v7",
        [
            ("train", SimpleNamespace(metadata={"wall_seconds": 90.0})),
            ("fetch-published", None),
            ("export", SimpleNamespace(metadata={})),
        ],
    )
    assert "version v7 published" in text and "0.6250" in text
    assert "| train | 1 min 30 s |" in text and "| export | not recorded |" in text
    assert "fetch" not in text
    assert "| build\\-engines\\-x86\\-t4 | 1.5 s |" in text
    assert "not built: no TensorRT" in text


def test_gate_markdown_says_when_pruning_gained_map():
    text = reports.gate_markdown(
        unpruned_map=0.66, pruned_map=0.74, min_map=0.3, max_map_drop=0.1, verdict="pass"
    )
    assert "none, gained 0.0800 (0.6600 → 0.7400)" in text


def test_layer_groups_and_interleaved_cpu_latency():
    import keras

    from tlt_core.prune.profile import cpu_latency_ms, layer_group, params_by_layer_group

    assert [
        layer_group(n)
        for n in ("conv1", "bn_conv1", "block_2b_conv_1", "ssd_expand_block_3_conv_0", "ssd_loc_5")
    ] == ["stem", "stem", "block_2", "ssd_expand_block_3", "ssd_loc"]
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, name="block_1a_conv_1")(x)
    x = keras.layers.Conv2D(8, 1, name="block_1b_conv_1")(x)
    outputs = keras.layers.Conv2D(6, 1, name="ssd_conf_0")(x)
    model = keras.Model(inputs, outputs)
    assert params_by_layer_group(model) == {
        "stem": 3 * 3 * 3 * 4 + 4,
        "block_1": (3 * 3 * 4 * 8 + 8) + (8 * 8 + 8),
        "ssd_conf": 8 * 6 + 6,
    }
    timings = cpu_latency_ms([model, model], (16, 16, 3), runs=3, warmup=1)
    assert len(timings) == 2 and all(t > 0 for t in timings)


def test_engine_latency_is_reported_not_raised_without_tensorrt(tmp_path):
    from tlt_core.pipeline_support import engine_latency

    result = engine_latency(tmp_path / "missing.engine")
    assert set(result) == {"latency_note"} and result["latency_note"]
