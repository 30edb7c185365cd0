"""Stage: INT8 calibration cache for an exported model, computed on the CPU.

Runs the raw network part of the exported graph (``Input`` -> the Keras model's outputs,
SSD: ``conf``, ``loc``) in ONNX
Runtime over ``batches x batch_size`` preprocessed images and writes TensorRT's
EntropyCalibration2 cache (see ``tlt_core.export.calibrate`` and ``cache``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlt_core.errors import ExportError, located
from tlt_core.export.onnx import LEGACY_NETWORK_OUTPUTS, network_part  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # 000: the valid calibration image extensions


@dataclass(frozen=True)
class CalibrateResult:
    cache_path: str
    tensor_count: int
    num_images: int
    tensorfile: str | None = None
    qdq_path: str | None = None


def _images_in(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def calibration_images(image_dir: str | Path, count: int) -> list[Path]:
    """The first ``count`` images of ``image_dir`` in name order (a fixed, repeatable set).
    A folder holding no images but folders of them (a classifier's class folders) gives
    them in turn, one from each folder in name order, so every class is represented."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ExportError(
            located("calibration image directory not found", image_dir, field="cal_image_dir")
        )
    images = _images_in(image_dir)
    if not images:
        folders = [_images_in(d) for d in sorted(image_dir.iterdir()) if d.is_dir()]
        images = [
            folder[i]
            for i in range(max((len(f) for f in folders), default=0))
            for folder in folders
            if i < len(folder)
        ]
    if len(images) < count:
        raise ExportError(
            located(
                f"{len(images)} images, fewer than batches x batch_size = {count}",
                image_dir,
                field="cal_image_dir",
            )
        )
    return images[:count]


def preprocess_nchw(paths: list[Path], network, spec) -> np.ndarray:
    """Images preprocessed as for evaluation (the network's ``preprocess``), NCHW float32."""
    # The inference stage owns reading one image file (checks, decode, the network's
    # preprocessing); reuse it rather than copy it.
    from tlt_core.stages.inference import _load

    images = np.stack([_load(Path(p), network, spec)[0] for p in paths])
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


def calibration_batches(
    network,
    experiment,
    *,
    image_dir: str | Path | None,
    data_file: str | Path | None,
    batches: int,
    batch_size: int,
) -> tuple[list[np.ndarray], str | None]:
    """Batches from ``image_dir`` (saved to ``data_file`` when given) or from ``data_file``."""
    from tlt_core.export.calibrate import load_tensorfile, save_tensorfile

    if batches < 1 or batch_size < 1:
        raise ExportError(
            located(
                f"batches ({batches}) and batch_size ({batch_size}) must be positive",
                field="batches",
            )
        )
    height, width, channels = experiment.input_shape
    if image_dir is not None:
        paths = calibration_images(image_dir, batches * batch_size)
        images = preprocess_nchw(paths, network, experiment)
        out = [images[i * batch_size : (i + 1) * batch_size] for i in range(batches)]
        if data_file is not None:
            save_tensorfile(data_file, out)
            log.info("wrote calibration tensorfile %s", data_file)
        return out, str(data_file) if data_file else None
    if data_file is None:
        raise ExportError(
            located("int8 needs --cal_image_dir or --cal_data_file", field="cal_image_dir")
        )
    out = load_tensorfile(
        data_file, batches=batches, batch_size=batch_size, input_chw=(channels, height, width)
    )
    return out, str(data_file)


def calibrate_and_write(
    network, batches: list[np.ndarray], cache_path: str | Path, trt_version: int | None = None
) -> int:
    """Calibrate ``network`` on ``batches``; write the cache; returns the tensor count."""
    from tlt_core.export.cache import DEFAULT_TRT_VERSION, CalibrationCache, write_cache
    from tlt_core.export.calibrate import calibrate_network

    result = calibrate_network(network, batches)
    cache = CalibrationCache(scales=result.scales, trt_version=trt_version or DEFAULT_TRT_VERSION)
    write_cache(cache_path, cache)
    log.info(
        "wrote calibration cache %s (%d tensors, %d images)",
        cache_path,
        len(cache.scales),
        result.num_images,
    )
    return len(cache.scales)


def calibrate(
    onnx_path: str | Path,
    spec_path: str | Path,
    image_dir: str | Path | None,
    cache_path: str | Path,
    *,
    batches: int = 10,
    batch_size: int = 8,
    key: str | None = None,
    data_file: str | Path | None = None,
    trt_version: int | None = None,
    network: str | None = None,
    qdq_path: str | Path | None = None,
    calibrator: str = "ort-entropy",
) -> CalibrateResult:
    """Entropy-calibrate an exported ``.onnx`` / ``.etlt`` and write its TensorRT cache;
    with ``qdq_path`` also write the explicitly quantised (Q/DQ) ``.onnx`` of the same
    model, calibrated on the same images by ``calibrator`` (``export --qdq``'s)."""
    from tlt_core.export.onnx import get_metadata, read_model
    from tlt_core.networks import get_network

    exported = read_model(onnx_path, key)
    net = get_network(network or get_metadata(exported).get("network"))
    experiment = net.spec_of(spec_path)
    graph = network_part(exported)
    data, tensorfile = calibration_batches(
        net,
        experiment,
        image_dir=image_dir,
        data_file=data_file,
        batches=batches,
        batch_size=batch_size,
    )
    count = calibrate_and_write(graph, data, cache_path, trt_version)
    if qdq_path is not None:
        from tlt_core.export.onnx import write_model
        from tlt_core.export.qdq import quantize_exported

        write_model(qdq_path, quantize_exported(exported, data, calibrator))
    return CalibrateResult(
        cache_path=str(cache_path),
        tensor_count=count,
        num_images=sum(len(b) for b in data),
        tensorfile=tensorfile,
        qdq_path=str(qdq_path) if qdq_path is not None else None,
    )
