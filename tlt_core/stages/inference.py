"""Stage ``tlt <network> inference``: a model's predictions on an image or a folder of them.

Each image is decoded and preprocessed as the evaluation pipeline does (the network's
``preprocess``), run through the model (any ``ModelRunner``), post-processed by the network
to predictions in ORIGINAL image pixels (those scoring at least ``threshold``), and handed
to the network's inference writer (SSD: annotated images and KITTI label lines with the
score as the 16th field). Unreadable or corrupt images are reported, skipped and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.errors import DataError, UsageError

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.3  # TLT's -t default
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class InferenceResult:
    num_images: int  # images processed
    num_skipped: int  # unreadable images
    num_detections: int  # boxes written (at or above the threshold)
    output_image_dir: Path
    label_dir: Path | None
    skipped: list[str] = field(default_factory=list)  # "path: reason"
    seconds: float = 0.0


def list_images(input_path: Path) -> list[Path]:
    if input_path.is_file():
        return [input_path]
    if not input_path.is_dir():
        raise DataError("no such image file or directory", input_path)
    images = sorted(
        p for p in input_path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise DataError(f"no {'/'.join(IMAGE_SUFFIXES)} images", input_path)
    return images


def _load(path: Path, network, spec) -> tuple[np.ndarray, np.ndarray]:
    """``(preprocessed [H, W, C] float32, original BGR uint8)``; DataError if unreadable."""
    import tensorflow as tf

    from tlt_core.data.decode import decode_rgb
    from tlt_core.data.pipeline import check_image_file

    check_image_file(path)
    try:
        rgb = decode_rgb(tf.constant(path.read_bytes()))
    except (tf.errors.OpError, ValueError) as error:
        reason = getattr(error, "message", str(error)).splitlines()[0]
        raise DataError(f"cannot decode image ({reason})", path) from None
    inputs = network.preprocess(spec, rgb)
    return inputs, np.ascontiguousarray(rgb.numpy()[..., ::-1])


def _batches(paths: list[Path], batch_size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), batch_size):
        yield paths[start : start + batch_size]


def inference(
    model_path: str | Path,
    spec_path: str | Path,
    key: str | None,
    input_path: str | Path,
    output_image_dir: str | Path,
    *,
    label_dir: str | Path | None = None,
    threshold: float | None = None,
    batch_size: int = 1,
    network: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> InferenceResult:
    """``options``: the network's own inference options (`Network.task_options`), handed
    to its post-processor and writer."""
    from tlt_core.inference_runner import open_runner
    from tlt_core.networks import get_network

    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1], got {threshold}")
    if batch_size < 1:
        raise UsageError(f"--batch_size must be >= 1, got {batch_size}")
    net = get_network(network)
    spec = net.spec_of(spec_path)
    images = list_images(Path(input_path))
    runner = open_runner(model_path, key, net)
    net.check_model(spec, runner, source=str(model_path))
    if runner.max_batch_size:
        batch_size = min(batch_size, runner.max_batch_size)
    extra = {"options": dict(options)} if options else {}
    postprocess = net.postprocessor(spec, runner, threshold=threshold, **extra)
    out_dir = Path(output_image_dir)
    labels = Path(label_dir) if label_dir else None
    writer = net.inference_writer(spec, out_dir, label_dir=labels, **extra)

    start = time.time()
    result = InferenceResult(0, 0, 0, out_dir, labels)
    for group in _batches(images, batch_size):
        loaded = []
        for path in group:
            try:
                loaded.append((path, *_load(path, net, spec)))
            except DataError as error:
                log.warning("skipped: %s", error)
                result.skipped.append(str(error))
        if not loaded:
            continue
        batch = np.stack([item[1] for item in loaded])
        sizes = [item[2].shape[:2] for item in loaded]
        predictions = postprocess(runner.predict(batch), sizes)
        for (path, _, original), prediction in zip(loaded, predictions, strict=True):
            result.num_detections += writer.add(path, original, prediction)
            result.num_images += 1
    writer.close()
    result.num_skipped = len(result.skipped)
    result.seconds = time.time() - start
    log.info(
        "inference: %d images, %d detections >= %g, %d skipped, %.1f s",
        result.num_images,
        result.num_detections,
        threshold,
        result.num_skipped,
        result.seconds,
    )
    return result
