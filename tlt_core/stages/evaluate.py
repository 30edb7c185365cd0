"""Stage ``tlt <network> evaluate``: the network's primary metric over the spec's validation
sources (SSD: mAP with ``eval_config``'s AP mode and matching IoU threshold).

The model is opened through ``tlt_core.inference_runner.open_runner`` (``.tlt`` here; the
export modules add ``.onnx``/``.etlt``/``.engine`` runners), run over the evaluation input
pipeline, post-processed and scored by the network (``tlt_core.evaluate.collect``). The
network's other metric modes are computed too, for reference (SSD: the other AP mode). With
``output_dir``: ``results.txt`` (TLT's table), ``results.json`` and, for AP, PR curves.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.io_utils import write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    mAP: float  # the primary metric's value (named ``metric`` for every network)
    per_class_ap: dict[str, float]  # its per-class breakdown
    mode: str
    iou_threshold: float
    num_images: int
    other_mode_mAP: dict[str, float] = field(default_factory=dict)
    table: str = ""
    report_paths: list[Path] = field(default_factory=list)
    ap_result: Any = field(default=None, repr=False)  # the network's full result object
    seconds: float = 0.0
    frames: list[Any] = field(default_factory=list, repr=False)  # reports.Tile (evaluate.frames)
    skipped_images: int = 0  # validation images that failed to decode (left out of the AP)
    label_set_sha256: str = ""  # identity of the ground truth evaluated on
    metric: str = "mAP"  # the primary metric's name
    cost: float | None = None  # the network's evaluation cost (mean per image), if it has one
    runner: str = ""  # the runtime that ran the model (ModelRunner.description)

    @property
    def value(self) -> float:
        return self.mAP


def label_set_sha256(collected, class_names) -> str:
    """SHA-256 of the ground truth evaluated on: class names, then per frame (by id) its
    truth as the network gives it (every array field in field order: SSD's boxes in network
    input pixels, classes and difficult flags; a classifier's label)."""
    import dataclasses
    import hashlib

    import numpy as np

    digest = hashlib.sha256("\n".join(class_names).encode())
    frames = sorted(zip(collected.frame_ids, collected.truths, strict=True), key=lambda f: f[0])
    for frame_id, truth in frames:
        digest.update(frame_id.encode() + b"\0")
        if dataclasses.is_dataclass(truth):
            values = [getattr(truth, f.name) for f in dataclasses.fields(truth)]
        else:
            values = [truth]
        for value in values:
            array = np.asarray(value)
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
            elif array.dtype.kind in "iu":
                array = array.astype(np.int64)
            digest.update(array.tobytes())
    return digest.hexdigest()


def evaluate(
    model_path: str | Path,
    spec_path: str | Path,
    key: str | None,
    *,
    output_dir: str | Path | None = None,
    batch_size: int | None = None,
    network: str | None = None,
    frames: int = 0,
    frame_threshold: float = 0.3,
    use_training_set: bool = False,
) -> EvalResult:
    """Evaluate ``model_path`` on the validation data of ``spec_path`` (a spec file, or the
    network's spec object already parsed).

    ``frames``: how many validation frames to draw (worst and best, see
    ``evaluate.frames``), showing detections scoring at least ``frame_threshold``; only for
    a network that says how to draw them (``Network.frame_drawing``), none otherwise.
    ``use_training_set``: evaluate on the data the spec trains on instead (002's
    ``--use_training_set``; networks that offer ``Network.training_sources``). A network
    with an ``evaluation_cost`` gets its mean over the images as ``cost``, the first line
    of the table ("Validation cost", 002 6.2)."""
    from tlt_core.errors import UsageError
    from tlt_core.evaluate.collect import collect_predictions, score
    from tlt_core.evaluate.frames import FrameSelector
    from tlt_core.inference_runner import open_runner
    from tlt_core.networks import get_network

    net = get_network(network)
    spec = net.spec_of(spec_path)
    runner = open_runner(model_path, key, net)
    net.check_model(spec, runner, source=str(model_path))
    runner_description = str(getattr(runner, "description", type(runner).__name__))
    log.info("runner: %s", runner_description)

    drawing = net.frame_drawing(spec) if frames > 0 else None
    selector = None
    if drawing is not None:
        selector = FrameSelector(
            frames,
            list(spec.class_names),
            drawing.mean_bgr,
            iou_threshold=drawing.iou_threshold,
            threshold=frame_threshold,
        )
    sources = None
    if use_training_set:
        sources = net.training_sources(spec)
        if sources is None:
            raise UsageError(f"--use_training_set: not offered for {net.name} models")
    cost_of = net.evaluation_cost(spec)
    costs: list = []
    start = time.time()
    collected = collect_predictions(
        net,
        spec,
        runner,
        sources=sources,
        batch_size=batch_size,
        on_batch=selector.add if selector is not None else None,
        on_raw=(lambda raw, batch: costs.append(cost_of(raw, batch))) if cost_of else None,
    )
    result = score(net, spec, collected)
    cost = None
    table = result.table
    if cost_of is not None and costs:
        import numpy as np

        cost = float(np.mean(np.concatenate(costs)))
        data = "Training" if use_training_set else "Validation"
        table = f"{data} cost: {cost:.6f}\n\n{table}"
    others = {mode: score(net, spec, collected, mode=mode) for mode in net.metric_variants(spec)}
    seconds = time.time() - start
    # The table itself is the caller's to show (the CLI prints it on stdout): logging it too
    # showed it twice in a terminal, where the log goes to stderr.
    log.info(
        "evaluated %d images in %.1f s (%s): %s %.4f%s",
        result.num_images,
        seconds,
        ", ".join(f"{k} {v}" for k, v in result.details.items()) or result.name,
        result.name,
        result.value,
        f"; per-class table in {Path(output_dir) / 'results.txt'}" if output_dir else "",
    )

    paths: list[Path] = []
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths.append(write_text_atomic(out / "results.txt", table + "\n"))
        reports = net.metric_report(spec, result, out)
        json_path = reports[0]
        summary = json.loads(json_path.read_text())
        summary["model"] = str(model_path)
        summary["other_modes"] = {mode: other.value for mode, other in others.items()}
        summary["skipped_images"] = collected.skipped_images
        summary["evaluated_on"] = "training" if use_training_set else "validation"
        if cost is not None:
            summary["cost"] = cost
        write_text_atomic(json_path, json.dumps(summary, indent=2) + "\n")
        paths.extend(reports)
    return EvalResult(
        mAP=float(result.value),
        per_class_ap=dict(result.per_class),
        mode=str(result.details.get("mode", "")),
        iou_threshold=float(result.details.get("iou_threshold", 0.0)),
        num_images=int(result.num_images),
        other_mode_mAP={mode: float(other.value) for mode, other in others.items()},
        table=table,
        report_paths=paths,
        ap_result=result.raw,
        seconds=seconds,
        frames=selector.tiles() if selector is not None else [],
        skipped_images=collected.skipped_images,
        label_set_sha256=label_set_sha256(collected, spec.class_names),
        metric=result.name,
        cost=cost,
        runner=runner_description,
    )
