"""What every network's DeepStream ``nvinfer`` config shares: the file names, the precision
check and the ``[property]`` keys that name the model files and, for a detector, the input
and the batch. Each network adds its own preprocessing, output and parser keys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tlt_core.errors import ExportError, located

LABELS_FILE = "labels.txt"
CONFIG_FILE = "nvinfer_config.txt"
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}


def model_label_names(
    class_names: Sequence[str], model_class_names: Sequence[str] | None
) -> list[str]:
    """The spec's classes, ExportError unless they are the model's (in its index order)."""
    names = list(class_names)
    if model_class_names is not None and list(model_class_names) != names:
        raise ExportError(
            located(
                f"spec classes {names} differ from the model's {list(model_class_names)}: the "
                "labels would not match the model outputs",
                field="dataset_config",
            )
        )
    return names


def check_data_type(data_type: str, cal_cache_file: str | Path | None) -> None:
    """ExportError unless ``data_type`` is an nvinfer precision (int8 with its cache)."""
    if data_type not in NETWORK_MODE:
        raise ExportError(
            located(f"{data_type!r} not one of {sorted(NETWORK_MODE)}", field="data_type")
        )
    if data_type == "int8" and not cal_cache_file:
        raise ExportError(located("int8 needs a calibration cache", field="cal_cache_file"))


def model_file_keys(
    *,
    model_file: str | Path,
    engine_file: str | Path | None,
    labels_file: str,
    data_type: str,
    cal_cache_file: str | Path | None,
) -> list[str]:
    """The ONNX model, its engine (when given), the labels and the INT8 cache keys."""
    lines = [f"onnx-file={model_file}"]
    if engine_file:
        lines.append(f"model-engine-file={engine_file}")
    lines.append(f"labelfile-path={labels_file}")
    if data_type == "int8":
        lines.append(f"int8-calib-file={cal_cache_file}")
    return lines


def detector_keys(
    input_shape_hwc: Sequence[int], *, batch_size: int, data_type: str, num_classes: int
) -> list[str]:
    """A primary detector's input, batch, precision and class-count keys."""
    height, width, channels = (int(v) for v in input_shape_hwc)
    return [
        f"infer-dims={channels};{height};{width}",
        "maintain-aspect-ratio=0",
        f"batch-size={batch_size}",
        "## 0=FP32, 1=INT8, 2=FP16 mode",
        f"network-mode={NETWORK_MODE[data_type]}",
        f"num-detected-classes={num_classes}",
        "interval=0",
        "gie-unique-id=1",
        "is-classifier=0",
        "network-type=0",
    ]
