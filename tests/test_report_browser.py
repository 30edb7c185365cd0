"""The UI reports opened in a real browser (headless Chromium over the DevTools pipe): no
console errors, nothing fetched from outside the page, every image decodes, the detection
grid has its tiles. Screenshots are kept under ``out/test-artifacts/browser/`` (or
``$TLT_SCREENSHOT_DIR``) and their folder is printed.

Chromium is the Debian package ``chromium`` (``make test`` installs it when it runs as root
or with passwordless sudo). Without it these tests skip, saying so; under CI (``CI=true``)
they fail instead, so a CI machine cannot pass them by not having a browser.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import Chromium, find_chromium
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = find_chromium()
ON_CI = os.environ.get("CI", "").lower() == "true"
if CHROMIUM is None and not ON_CI:
    pytestmark = pytest.mark.skip(
        reason="headless Chromium not installed (apt-get install -y chromium, as root)"
    )


@pytest.fixture(autouse=True)
def _chromium_on_ci():
    if CHROMIUM is None:  # only reached under CI=true
        pytest.fail("CI=true but no Chromium found: `make browser` (apt-get install chromium)")


def screenshot_dir(name: str) -> Path:
    root = Path(os.environ.get("TLT_SCREENSHOT_DIR", REPO / "out" / "test-artifacts" / "browser"))
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"\nscreenshots: {folder}")
    return folder


def markdown_page(markdown_path: Path, out_dir: Path) -> Path:
    """The Markdown report as the KFP UI shows it: rendered (CommonMark + tables) in a page."""
    body = MarkdownIt("commonmark").enable("table").render(markdown_path.read_text())
    style = "table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:3px 8px}"
    page = out_dir / f"{markdown_path.stem}.md.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{style}</style></head>"
        f"<body style='font-family:sans-serif'>{body}</body></html>"
    )
    return page


def check_reports(report_paths: list[Path], shots: Path, *, tiles: dict[str, int]) -> dict:
    """Open each report; returns report name -> PageCheck. ``tiles``: HTML report name ->
    expected number of grid tiles."""
    results = {}
    with Chromium(CHROMIUM) as browser:
        for path in report_paths:
            page = path if path.suffix == ".html" else markdown_page(path, shots)
            check = browser.check(
                page,
                selectors=("figure.tile", "figure.tile img", "table"),
                screenshot=shots / f"{path.name}.png",
            )
            results[path.name] = check
            assert check.console_errors == [], (path.name, check.console_errors)
            outside = [u for u in check.requests if not u.startswith(("file:", "data:"))]
            assert outside == [], (path.name, outside)
            assert all(image["ok"] and image["width"] > 0 for image in check.images), (
                path.name,
                check.images,
            )
            if path.name in tiles:
                assert check.counts["figure.tile"] == tiles[path.name], path.name
                assert check.counts["figure.tile img"] == tiles[path.name], path.name
            assert check.counts["table"] >= 1, path.name
            assert check.screenshot is not None and check.screenshot.stat().st_size > 1000
    return results


def synthetic_reports(out: Path) -> tuple[list[Path], int]:
    """Every report kind from a tiny synthetic evaluation (no model, no training)."""
    import cv2

    from tlt_core import reports
    from tlt_core.boxes.nms import Detections
    from tlt_core.evaluate.ap import GroundTruth, compute_ap
    from tlt_core.evaluate.frames import FrameSelector
    from tlt_core.evaluate.report import plot_pr_curves

    rng = np.random.default_rng(1)
    names = ["car", "<b>cyclist</b>"]
    images, detections, truths, ids = [], [], [], []
    for i in range(16):
        image = np.full((96, 128, 3), 30.0, np.float32)
        boxes = []
        for _ in range(rng.integers(1, 4)):
            x, y = rng.uniform(5, 80), rng.uniform(5, 50)
            boxes.append([x, y, x + rng.uniform(15, 40), y + rng.uniform(15, 40)])
            cv2.rectangle(
                image,
                [int(v) for v in boxes[-1][:2]],
                [int(v) for v in boxes[-1][2:]],
                (90, 140, 60),
                -1,
            )
        boxes = np.asarray(boxes, np.float32)
        classes = rng.integers(0, 2, len(boxes))
        truths.append(GroundTruth(boxes, classes, np.zeros(len(boxes), bool)))
        keep = rng.random(len(boxes)) > 0.3  # some misses
        found = boxes[keep] + rng.normal(0, 2, (int(keep.sum()), 4)).astype(np.float32)
        extra = rng.integers(0, 3)  # some false positives
        fp = np.c_[rng.uniform(0, 90, (extra, 2)), rng.uniform(0, 90, (extra, 2)) + 20]
        detections.append(
            Detections(
                np.r_[found, fp].astype(np.float32),
                np.r_[classes[keep], rng.integers(0, 2, extra)].astype(np.int64),
                rng.uniform(0.35, 0.99, len(found) + extra).astype(np.float32),
            )
        )
        images.append(image - 10.0)
        ids.append(f"frame_{i:03d}<&>")
    selector = FrameSelector(8, names, (10, 10, 10), iou_threshold=0.5, threshold=0.3)
    for lo in range(0, 16, 4):
        part = slice(lo, lo + 4)
        selector.add(np.stack(images[part]), detections[part], truths[part], ids[part])
    ap = compute_ap(detections, truths, names)
    curves = plot_pr_curves(ap, out / "curves")
    page = reports.evaluation_html(
        "Evaluation <synthetic>",
        mean_ap=ap.mAP,
        mode=ap.mode,
        iou_threshold=ap.iou_threshold,
        num_images=16,
        classes=[
            reports.ClassRow(
                n,
                ap.per_class_ap[n],
                ap.num_ground_truth[n],
                ap.num_detections[n],
                ap.num_true_positives[n],
                ap.num_false_positives[n],
            )
            for n in names
        ],
        pr_curves=[(p.stem, p.read_bytes()) for p in curves],
        tiles=selector.tiles(),
        threshold=0.3,
    )
    paths = [out / "evaluate.html"]
    paths[0].write_text(page)
    markdown = {
        "quality-gate.md": reports.gate_markdown(
            unpruned_map=0.7,
            pruned_map=0.66,
            min_map=0.5,
            max_map_drop=0.02,
            verdict="fail: pruning lost 0.0400 mAP",
        ),
        "prune.md": reports.prune_markdown(
            [
                reports.LayerGroupParams("stem", 9000, 9000),
                reports.LayerGroupParams("block_1", 70000, 31000),
            ],
            threshold=0.1,
            latency=reports.Latency(12.0, 8.5, "Keras CPU batch 1"),
        ),
        "build-engines.md": reports.engine_builds_markdown(
            "x86-t4", {"fp16": {"status": "skipped", "reason": "TensorRT <missing>"}}
        ),
        "run-summary.md": reports.run_summary_markdown(
            pipeline="tlt-ssd-train-deploy",
            model_version="v1",
            version_uri=str(out / "v1"),
            value=0.66,
            stages=[reports.StageTime("train", 61.0)],
            engines={"x86-t4": {"fp16": {"status": "skipped", "reason": "no TensorRT"}}},
        ),
    }
    for name, text in markdown.items():
        paths.append(out / name)
        paths[-1].write_text(text)
    return paths, 8


def test_synthetic_reports_render_in_chromium(tmp_path):
    paths, tile_count = synthetic_reports(tmp_path)
    shots = screenshot_dir("synthetic")
    results = check_reports(paths, shots, tiles={"evaluate.html": tile_count})
    assert len(results["evaluate.html"].images) == tile_count + 2  # tiles + 2 PR curves


@pytest.mark.slow
def test_local_run_reports_render_in_chromium(sample_dataset, tmp_path):
    """A whole local train_deploy run (tiny spec), then every report it wrote."""
    from pipelines.local_run import run_local
    from tlt_core.data.sample import sample_convert_spec
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    tiny = {
        "arch": "resnet",
        "nlayers": 10,
        "output_width": 96,
        "output_height": 96,
        "batch_size": 4,
        "num_epochs": 1,
        "validation_period": 1,
    }
    result = run_local(
        tmp_path / "out",
        key="test-key",
        dataset_uri=str(sample_dataset.train_image_dir.parent),
        convert_spec=sample_convert_spec(sample_dataset.root),
        experiment_spec=sample_experiment_spec(sample_dataset.root, **tiny),
        calibration_images_uri=str(sample_dataset.val_image_dir),
        model_version="v1",
        min_map=0.0,
        max_map_drop=1.0,
        cal_batches=2,
        cal_batch_size=4,
    )
    summary = result.summary()
    names = {r.path.name for r in result.reports}
    assert {
        "evaluate.html",
        "evaluate-2.html",
        "quality-gate.md",
        "prune.md",
        "run-summary.md",
    } <= names, names
    assert any(n.startswith("build-engines") for n in names), names
    for report in result.reports:
        assert str(report.path) in summary
        assert report.path.parent == tmp_path / "out" / "reports"
    # Every validation frame is a tile, up to the component's default of 12.
    tiles = {}
    for report in result.reports:
        if report.path.suffix == ".html":
            images = re.search(r"over (\d+) validation images", report.path.read_text())
            tiles[report.path.name] = min(12, int(images.group(1)))
    check_reports([r.path for r in result.reports], screenshot_dir("local-run"), tiles=tiles)
