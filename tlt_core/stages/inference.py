"""Stage ``tlt ssd inference``: detect objects in images; annotated images + KITTI labels.

Each image is decoded and preprocessed as the evaluation pipeline does (resize to the spec's
output size, BGR minus the image mean), run through the model (any ``ModelRunner``), decoded
and NMS'd with ``nms_config`` in ORIGINAL image pixels, and the detections scoring at least
``threshold`` are drawn (OpenCV) and written as KITTI label lines with the score as the 16th
field. Unreadable or corrupt images are reported, skipped and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def _load(path: Path, experiment) -> tuple[np.ndarray, np.ndarray]:
    """``(preprocessed [H, W, 3] float32, original BGR uint8)``; DataError if unreadable."""
    import tensorflow as tf

    from tlt_core.data.augment import model_input, resize_example
    from tlt_core.data.decode import decode_rgb
    from tlt_core.data.pipeline import check_image_file

    check_image_file(path)
    try:
        rgb = decode_rgb(tf.constant(path.read_bytes()))
    except (tf.errors.OpError, ValueError) as error:
        reason = getattr(error, "message", str(error)).splitlines()[0]
        raise DataError(f"cannot decode image ({reason})", path) from None
    output_size = (experiment.input_shape[0], experiment.input_shape[1])
    pixels, _ = resize_example(rgb, tf.zeros((0, 4), tf.float32), output_size)
    inputs = model_input(pixels, experiment.image_mean_bgr).numpy()
    return inputs, np.ascontiguousarray(rgb.numpy()[..., ::-1])


def _batches(paths: list[Path], batch_size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), batch_size):
        yield paths[start : start + batch_size]


def draw_detections(image_bgr: np.ndarray, detections, class_names) -> np.ndarray:
    from tlt_core.boxes.draw import PALETTE, draw_labelled_box

    out = image_bgr.copy()
    for box, cls, score in zip(
        detections.boxes, detections.classes, detections.scores, strict=True
    ):
        colour = PALETTE[int(cls) % len(PALETTE)]
        draw_labelled_box(out, box, f"{class_names[int(cls)]} {score:.2f}", colour)
    return out


def _write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    from tlt_core.io_utils import atomic_path

    ok, encoded = cv2.imencode(path.suffix.lower() or ".png", image)
    if not ok:
        raise DataError("OpenCV could not encode the annotated image", path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


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
) -> InferenceResult:
    from tlt_core.boxes.anchors import generate_anchors
    from tlt_core.boxes.nms import detections_from_outputs
    from tlt_core.data.kitti import KittiObject, write_label_file
    from tlt_core.inference_runner import open_runner
    from tlt_core.spec.experiment import load_experiment
    from tlt_core.stages.evaluate import check_runner_matches
    from tlt_core.train.validation import nms_settings

    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1], got {threshold}")
    if batch_size < 1:
        raise UsageError(f"--batch_size must be >= 1, got {batch_size}")
    experiment = load_experiment(spec_path)
    images = list_images(Path(input_path))
    runner = open_runner(model_path, key)
    check_runner_matches(runner, experiment, model_path)
    if runner.max_batch_size:
        batch_size = min(batch_size, runner.max_batch_size)
    height, width = experiment.input_shape[0], experiment.input_shape[1]
    anchors = generate_anchors(experiment.anchors, runner.feature_map_sizes, (height, width))
    variances = tuple(experiment.anchors.variances)
    nms = nms_settings(experiment)
    class_names = list(experiment.class_names)

    out_dir = Path(output_image_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = Path(label_dir) if label_dir else None
    if labels is not None:
        labels.mkdir(parents=True, exist_ok=True)

    start = time.time()
    result = InferenceResult(0, 0, 0, out_dir, labels)
    for group in _batches(images, batch_size):
        loaded = []
        for path in group:
            try:
                loaded.append((path, *_load(path, experiment)))
            except DataError as error:
                log.warning("skipped: %s", error)
                result.skipped.append(str(error))
        if not loaded:
            continue
        batch = np.stack([item[1] for item in loaded])
        conf, loc = runner.predict(batch)
        sizes = [item[2].shape[:2] for item in loaded]
        for (path, _, original), det in zip(
            loaded,
            detections_from_outputs(conf, loc, anchors, variances, nms, sizes),
            strict=True,
        ):
            # Boxes clipped to nothing at the image border are not objects (and not valid
            # KITTI boxes).
            keep = (
                (det.scores >= threshold)
                & (det.boxes[:, 2] > det.boxes[:, 0])
                & (det.boxes[:, 3] > det.boxes[:, 1])
            )
            det = type(det)(det.boxes[keep], det.classes[keep], det.scores[keep])
            _write_image(out_dir / path.name, draw_detections(original, det, class_names))
            if labels is not None:
                objects = [
                    KittiObject(class_names[int(c)], 0.0, 0, 0.0, *map(float, box), score=float(s))
                    for box, c, s in zip(det.boxes, det.classes, det.scores, strict=True)
                ]
                write_label_file(labels / f"{path.stem}.txt", objects)
            result.num_images += 1
            result.num_detections += len(det)
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
