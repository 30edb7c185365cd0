"""Stage ``tlt ssd evaluate``: mAP of a model over the spec's validation sources.

The model is opened through ``tlt_core.inference_runner.open_runner`` (``.tlt`` here; the
export modules add ``.onnx``/``.etlt``/``.engine`` runners), run over the evaluation input
pipeline, decoded + NMS'd with ``nms_config`` and scored with ``eval_config``
(``average_precision_mode``, ``matching_iou_threshold``). The other AP mode is computed too,
for reference. With ``output_dir``: ``results.txt`` (TLT's table), ``results.json`` and
``pr_curve_<class>.png``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.errors import ModelFileError
from tlt_core.io_utils import write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    mAP: float
    per_class_ap: dict[str, float]
    mode: str
    iou_threshold: float
    num_images: int
    other_mode_mAP: dict[str, float] = field(default_factory=dict)
    table: str = ""
    report_paths: list[Path] = field(default_factory=list)
    ap_result: Any = field(default=None, repr=False)  # the full evaluate.ap.APResult
    seconds: float = 0.0
    frames: list[Any] = field(default_factory=list, repr=False)  # reports.Tile (evaluate.frames)
    label_set_sha256: str = ""  # identity of the ground truth evaluated on


def label_set_sha256(collected, class_names) -> str:
    """SHA-256 of the ground truth evaluated on: class names, then per frame (by id) its
    boxes (float32, network input pixels), classes and difficult flags."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256("\n".join(class_names).encode())
    frames = sorted(
        zip(collected.frame_ids, collected.ground_truths, strict=True), key=lambda f: f[0]
    )
    for frame_id, gt in frames:
        digest.update(frame_id.encode() + b"\0")
        digest.update(np.asarray(gt.boxes, np.float32).tobytes())
        digest.update(np.asarray(gt.classes, np.int64).tobytes())
        digest.update(np.asarray(gt.difficult, bool).tobytes())
    return digest.hexdigest()


def check_runner_matches(runner, experiment, model_path) -> None:
    """The model must take the spec's input size and predict the spec's classes."""
    want_shape = tuple(experiment.input_shape)
    if tuple(runner.input_shape) != want_shape:
        raise ModelFileError(
            f"{model_path}: model input (H, W, C) {tuple(runner.input_shape)} does not match "
            f"the spec's augmentation_config {want_shape}"
        )
    if runner.num_classes != len(experiment.class_names):
        raise ModelFileError(
            f"{model_path}: model predicts {runner.num_classes} classes, the spec's "
            f"target_class_mapping has {len(experiment.class_names)} "
            f"({', '.join(experiment.class_names)})"
        )


def evaluate(
    model_path: str | Path,
    spec_path: str | Path,
    key: str | None,
    *,
    output_dir: str | Path | None = None,
    batch_size: int | None = None,
    frames: int = 0,
    frame_threshold: float = 0.3,
) -> EvalResult:
    """``frames``: how many validation frames to draw (worst and best, see
    ``evaluate.frames``), showing detections scoring at least ``frame_threshold``."""
    from tlt_core.boxes.anchors import generate_anchors
    from tlt_core.evaluate import report
    from tlt_core.evaluate.frames import FrameSelector
    from tlt_core.inference_runner import open_runner
    from tlt_core.spec.experiment import load_experiment
    from tlt_core.train.validation import collect_detections, score

    experiment = load_experiment(spec_path)
    runner = open_runner(model_path, key)
    check_runner_matches(runner, experiment, model_path)
    height, width = experiment.input_shape[0], experiment.input_shape[1]
    anchors = generate_anchors(experiment.anchors, runner.feature_map_sizes, (height, width))

    selector = FrameSelector(
        frames,
        list(experiment.class_names),
        experiment.image_mean_bgr,
        iou_threshold=float(experiment.eval.matching_iou_threshold),
        threshold=frame_threshold,
    )
    start = time.time()
    collected = collect_detections(
        runner,
        experiment,
        anchors=anchors,
        batch_size=batch_size,
        on_batch=selector.add if frames > 0 else None,
    )
    result = score(collected, experiment)
    other_mode = "INTEGRATE" if result.mode == "SAMPLE" else "SAMPLE"
    other = score(collected, experiment, mode=other_mode)
    seconds = time.time() - start
    table = report.format_ap_table(result)
    # The table itself is the caller's to show (the CLI prints it on stdout): logging it too
    # showed it twice in a terminal, where the log goes to stderr.
    log.info(
        "evaluated %d images in %.1f s (%s, IoU %g): mAP %.4f%s",
        result.num_images,
        seconds,
        result.mode,
        result.iou_threshold,
        result.mAP,
        f"; per-class table in {Path(output_dir) / 'results.txt'}" if output_dir else "",
    )

    paths: list[Path] = []
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths.append(write_text_atomic(out / "results.txt", table + "\n"))
        json_path = report.write_json(result, out / "results.json")
        summary = json.loads(json_path.read_text())
        summary["model"] = str(model_path)
        summary["other_modes"] = {other_mode: other.mAP}
        write_text_atomic(json_path, json.dumps(summary, indent=2) + "\n")
        paths.append(json_path)
        paths.extend(report.plot_pr_curves(result, out))
    return EvalResult(
        mAP=float(result.mAP),
        per_class_ap={k: float(v) for k, v in result.per_class_ap.items()},
        mode=result.mode,
        iou_threshold=float(result.iou_threshold),
        num_images=int(result.num_images),
        other_mode_mAP={other_mode: float(other.mAP)},
        table=table,
        report_paths=paths,
        ap_result=result,
        seconds=seconds,
        frames=selector.tiles() if frames > 0 else [],
        label_set_sha256=label_set_sha256(collected, experiment.class_names),
    )
