"""Predictions over a dataset and their metric: used by training validation, ``tlt <network>
evaluate`` and the INT8 accuracy check.

A ``ModelRunner`` (``tlt_core.inference_runner``) maps each batch of the network's evaluation
pipeline (``input_pipeline(training=False)``) to raw outputs (or, for an engine that has
only its final outputs, to those: ``detect`` and the network's ``final_postprocessor``); the
network's post-processor turns them into one prediction per image and its ``metric`` scores them against the truth it
reads from the batch. For detectors, predictions and truth are compared in the network's
input pixels (IoU does not change under the per-axis resize to the original image).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Collected:
    predictions: list[Any] = field(default_factory=list)  # one per image (network-defined)
    truths: list[Any] = field(default_factory=list)  # one per image (network-defined)
    frame_ids: list[str] = field(default_factory=list)
    skipped_images: int = 0  # records dropped because their image failed to decode


def collect_predictions(
    network,
    spec,
    runner,
    *,
    sources=None,
    batch_size: int | None = None,
    postprocess=None,
    on_batch=None,
    on_raw=None,
) -> Collected:
    """Run ``runner`` over the evaluation pipeline: prediction + truth per image.

    ``postprocess`` (default: ``network.postprocessor(spec, runner)``) may be passed in
    when it is built once for many calls (training validation).
    ``on_batch(images, predictions, truths, frame_ids, original_sizes)``, when given, sees
    each batch as it goes by (model input images, the network's predictions and truths,
    ``(h, w)`` of the source images or None when the pipeline does not give them): the
    evaluation report picks the frames it draws there. ``on_raw(raw, batch)``, when given,
    sees each batch's raw outputs with the batch itself (the validation cost).
    """
    batch_size = batch_size or network.eval_batch_size(spec)
    if runner.max_batch_size:
        batch_size = min(batch_size, runner.max_batch_size)
    from tlt_core.data.pipeline import InputStats

    run = runner.predict
    if getattr(runner, "final_outputs_only", False):
        # An engine with only the final outputs (tlt-converter -o): the network reads those.
        run = runner.detect
        on_raw = None  # no raw outputs to take the cost of
        if postprocess is None:
            postprocess = network.final_postprocessor(spec, runner)
            if postprocess is None:
                from tlt_core.errors import ModelFileError

                raise ModelFileError(
                    f"{network.name} predictions need the raw outputs "
                    f"{', '.join(network.raw_output_names)}, which this model lacks"
                )
    if postprocess is None:
        postprocess = network.postprocessor(spec, runner)
    height, width = spec.input_shape[0], spec.input_shape[1]
    stats = InputStats()
    dataset = network.input_pipeline(
        spec, training=False, batch_size=batch_size, sources=sources, shuffle=False, stats=stats
    )
    out = Collected()
    for batch in dataset.as_numpy_iterator():
        images = batch["image"]
        n = images.shape[0]
        stats.deliver(n)
        raw = run(images)
        if on_raw is not None:
            on_raw(raw, batch)
        predictions = postprocess(raw, [(height, width)] * n)
        truths = network.ground_truth(batch)
        frame_ids = [f.decode() for f in batch["frame_id"]]
        if on_batch is not None:
            on_batch(images, predictions, truths, frame_ids, batch.get("orig_size"))
        out.predictions.extend(predictions)
        out.truths.extend(truths)
        out.frame_ids.extend(frame_ids)
    out.skipped_images = stats.skipped
    if out.skipped_images:
        log.warning(
            "evaluation: %d image(s) skipped (failed to decode); the scores leave them out",
            out.skipped_images,
        )
    return out


def score(network, spec, collected: Collected, *, mode: str | None = None):
    """``MetricResult`` of collected predictions (the network's primary metric)."""
    return network.metric(spec, collected.predictions, collected.truths, mode=mode)
