"""DeepStream files for a classifier: ``labels.txt`` and an nvinfer secondary-classifier
config (``network-type=1``, ``process-mode=2``: it classifies the objects a primary
detector found, as TLT's classification models are deployed).

nvinfer computes ``y = net-scale-factor * (x - offsets)`` on pixels in
``model-color-format`` order, so each ``preprocess_mode`` maps to:

- ``caffe``: BGR (1), offsets = ImageNet BGR mean, scale 1;
- ``tf``: RGB (0), offsets 127.5, scale 1 / 127.5;
- ``torch``: RGB (0), offsets = 255 x mean, scale 1 / (255 x std) with one scale for
  all channels: nvinfer has no per-channel scale, so the mean of the three standard
  deviations is used (the config says so in a comment). Prefer caffe or tf for DeepStream.

A classifier's ``labels.txt`` is one line, the class names separated by ``;`` in model
index order (nvinfer's format for classifier attributes).
"""

from __future__ import annotations

from collections.abc import Sequence

from tlt_core.errors import ExportError, located
from tlt_core.export.deepstream import (
    CONFIG_FILE,
    LABELS_FILE,
    NETWORK_MODE,
    check_data_type,
    model_file_keys,
)
from tlt_core.export.onnx import INPUT_NAME
from tlt_core.networks.classification.data import CAFFE_MEAN_BGR, TORCH_MEAN_RGB, TORCH_STD_RGB

OUTPUT_BLOB = "predictions/Softmax"


def preprocessing_keys(mode: str) -> list[str]:
    if mode == "caffe":
        return [
            "net-scale-factor=1.0",
            "offsets=" + ";".join(f"{m:g}" for m in CAFFE_MEAN_BGR),
            "model-color-format=1",
        ]
    if mode == "tf":
        return ["net-scale-factor=0.00784313725490196", "offsets=127.5;127.5;127.5",
                "model-color-format=0"]  # fmt: skip
    if mode == "torch":
        std = sum(TORCH_STD_RGB) / 3.0
        return [
            "# torch mode: per-channel std approximated by their mean (nvinfer has one scale)",
            f"net-scale-factor={1.0 / (255.0 * std):.10g}",
            "offsets=" + ";".join(f"{255.0 * m:g}" for m in TORCH_MEAN_RGB),
            "model-color-format=0",
        ]
    raise ExportError(located(f"unknown preprocess_mode {mode!r}", field="preprocess_mode"))


def classifier_config_text(
    *,
    model_file: str,
    input_shape_hwc: Sequence[int],
    preprocess_mode: str,
    data_type: str,
    batch_size: int = 1,
    engine_file: str | None = None,
    cal_cache_file: str | None = None,
    classifier_threshold: float = 0.2,
) -> str:
    check_data_type(data_type, cal_cache_file)
    height, width, channels = (int(v) for v in input_shape_hwc)
    lines = ["[property]", "gpu-id=0", *preprocessing_keys(preprocess_mode)]
    lines += model_file_keys(
        model_file=model_file,
        engine_file=engine_file,
        labels_file=LABELS_FILE,
        data_type=data_type,
        cal_cache_file=cal_cache_file,
    )
    lines += [
        f"infer-dims={channels};{height};{width}",
        f"uff-input-blob-name={INPUT_NAME}",
        f"batch-size={batch_size}",
        "## 0=FP32, 1=INT8, 2=FP16 mode",
        f"network-mode={NETWORK_MODE[data_type]}",
        "# a secondary classifier on the objects of the primary detector (gie-unique-id 1)",
        "network-type=1",
        "process-mode=2",
        "is-classifier=1",
        "gie-unique-id=2",
        "operate-on-gie-id=1",
        "classifier-async-mode=0",
        f"classifier-threshold={classifier_threshold:g}",
        f"output-blob-names={OUTPUT_BLOB}",
    ]
    return "\n".join(lines) + "\n"


def deepstream_files(
    spec,
    *,
    model_file,
    model_class_names: Sequence[str] | None,
    data_type: str,
    batch_size: int = 1,
    engine_file=None,
    cal_cache_file=None,
) -> dict[str, str]:
    """``{labels.txt: ..., nvinfer_config.txt: ...}`` for a classifier export of ``spec``."""
    names = list(model_class_names) if model_class_names is not None else list(spec.class_names)
    if any(";" in n for n in names):
        raise ExportError(located(f"class names {names} contain ';' (labels.txt separator)"))
    text = classifier_config_text(
        model_file=str(model_file),
        input_shape_hwc=spec.input_shape,
        preprocess_mode=spec.preprocess_mode,
        data_type=data_type,
        batch_size=batch_size,
        engine_file=str(engine_file) if engine_file else None,
        cal_cache_file=str(cal_cache_file) if cal_cache_file else None,
    )
    return {LABELS_FILE: ";".join(names) + "\n", CONFIG_FILE: text}
