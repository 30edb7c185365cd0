"""DeepStream integration files: ``labels.txt`` and an nvinfer ``nvinfer_config.txt``.

The exported ONNX input is BGR pixels minus the per-channel mean (what the model was trained
on), so nvinfer is told ``net-scale-factor=1.0``, ``offsets=<B;G;R means>`` and
``model-color-format=1`` (BGR). Detections come out of the model already NMS-ed in the
BatchedNMS layout (see ``tlt_core.networks.ssd.onnx_postprocess``), parsed by
``NvDsInferParseCustomBatchedNMSTLT`` from ``libnvds_infercustomparser_tao.so`` (built from
NVIDIA-AI-IOT/deepstream_tao_apps, ``post_processor/``), or, exported with
``--output_layout tlt_nms``, in TLT 3.0's NMS layout with 000's ``output-blob-names=NMS``
and ``NvDsInferParseCustomNMSTLT``; clustering is off (``cluster-mode=4``) because NMS
already ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tlt_core.errors import ExportError, located
from tlt_core.export.deepstream import (
    CONFIG_FILE,
    LABELS_FILE,
    check_data_type,
    detector_keys,
    model_file_keys,
    model_label_names,
)
from tlt_core.io_utils import write_text_atomic
from tlt_core.networks.ssd.onnx_postprocess import (
    LAYOUT_BATCHED,
    LAYOUT_TLT_NMS,
    OUTPUT_LAYOUTS,
    OUTPUT_NAMES,
)

BACKGROUND = "background"
PARSER_FUNCTION = "NvDsInferParseCustomBatchedNMSTLT"
PARSER_LIBRARY = "libnvds_infercustomparser_tao.so"


@dataclass(frozen=True)
class LayoutParser:
    """What nvinfer is told about an output layout: blob names and the bbox parser."""

    output_blob_names: tuple[str, ...]
    function: str
    library: str
    source: str  # where the parser library is built from


# 000's config for TLT 3.0 exports: output-blob-names=NMS (NMS_1, the keep count, is the
# engine's second output), NvDsInferParseCustomNMSTLT from deepstream_tlt_apps.
LAYOUT_PARSERS = {
    LAYOUT_BATCHED: LayoutParser(
        OUTPUT_NAMES, PARSER_FUNCTION, PARSER_LIBRARY, "NVIDIA-AI-IOT/deepstream_tao_apps"
    ),
    LAYOUT_TLT_NMS: LayoutParser(
        ("NMS",),
        "NvDsInferParseCustomNMSTLT",
        "libnvds_infercustomparser_tlt.so",
        "NVIDIA-AI-IOT/deepstream_tlt_apps (release/tlt3.0)",
    ),
}
CLUSTER_MODE_NONE = 4


@dataclass(frozen=True)
class DeepStreamFiles:
    labels: Path
    config: Path


def label_lines(class_names: Sequence[str], model_class_names: Sequence[str] | None) -> list[str]:
    """``background`` then the classes in model index order; checked against the model."""
    names = model_label_names(class_names, model_class_names)
    if names != sorted(names) or any(n != n.lower() for n in names):
        raise ExportError(
            located(
                f"classes {names} are not lower-case in alphabetical order",
                field="dataset_config.target_class_mapping",
            )
        )
    return [BACKGROUND, *names]


def nvinfer_config_text(
    *,
    model_file: str,
    labels_file: str,
    input_shape_hwc: Sequence[int],
    image_mean_bgr: Sequence[float],
    num_classes: int,
    data_type: str,
    batch_size: int = 1,
    engine_file: str | None = None,
    cal_cache_file: str | None = None,
    pre_cluster_threshold: float = 0.3,
    top_k: int = 200,
    output_layout: str = LAYOUT_BATCHED,
) -> str:
    """The ``[property]`` / ``[class-attrs-all]`` text for a detector with our outputs in
    ``output_layout`` (``batched_nms`` or ``tlt_nms``).

    ``num_classes`` counts background too (labels.txt lines), as 000's sample does.
    """
    if output_layout not in LAYOUT_PARSERS:
        raise ExportError(
            located(f"{output_layout!r} not one of {OUTPUT_LAYOUTS}", field="output_layout")
        )
    parser = LAYOUT_PARSERS[output_layout]
    check_data_type(data_type, cal_cache_file)
    channels = int(input_shape_hwc[2])
    # nvinfer's model-color-format: 1 = BGR, 2 = GRAY (output_channel 1: one mean, "l").
    means = list(image_mean_bgr)[:channels]
    lines = [
        "[property]",
        "gpu-id=0",
        "# Input = "
        + ("BGR" if channels == 3 else "grey")
        + " pixels minus the training mean: y = net-scale-factor * (x - offsets)",
        "net-scale-factor=1.0",
        "offsets=" + ";".join(f"{m:g}" for m in means),
        f"model-color-format={1 if channels == 3 else 2}",
        *model_file_keys(
            model_file=model_file,
            engine_file=engine_file,
            labels_file=labels_file,
            data_type=data_type,
            cal_cache_file=cal_cache_file,
        ),
        *detector_keys(
            input_shape_hwc,
            batch_size=batch_size,
            data_type=data_type,
            num_classes=num_classes,
        ),
        "output-blob-names=" + ";".join(parser.output_blob_names),
        f"# NMS runs inside the model; DeepStream only parses its {output_layout}-layout outputs.",
        f"cluster-mode={CLUSTER_MODE_NONE}",
        f"parse-bbox-func-name={parser.function}",
        f"# {parser.library}: build {parser.source} post_processor/",
        f"custom-lib-path=<path to {parser.library}>",
        "",
        "[class-attrs-all]",
        f"pre-cluster-threshold={pre_cluster_threshold:g}",
        f"topk={top_k}",
        "roi-top-offset=0",
        "roi-bottom-offset=0",
        "detected-min-w=0",
        "detected-min-h=0",
        "detected-max-w=0",
        "detected-max-h=0",
    ]
    return "\n".join(lines) + "\n"


def deepstream_files(
    spec,
    *,
    model_file: str | Path,
    model_class_names: Sequence[str] | None,
    data_type: str,
    batch_size: int = 1,
    engine_file: str | Path | None = None,
    cal_cache_file: str | Path | None = None,
    output_layout: str = LAYOUT_BATCHED,
) -> dict[str, str]:
    """``{labels.txt: ..., nvinfer_config.txt: ...}`` for an SSD export of ``spec`` in
    ``output_layout`` (paths as given: the caller makes them relative to the folder the
    files go to)."""
    labels = label_lines(spec.class_names, model_class_names)
    text = nvinfer_config_text(
        model_file=str(model_file),
        labels_file=LABELS_FILE,
        input_shape_hwc=spec.input_shape,
        image_mean_bgr=spec.image_mean_bgr,
        num_classes=len(labels),
        data_type=data_type,
        batch_size=batch_size,
        engine_file=str(engine_file) if engine_file else None,
        cal_cache_file=str(cal_cache_file) if cal_cache_file else None,
        top_k=int(spec.nms.top_k),
        output_layout=output_layout,
    )
    return {LABELS_FILE: "\n".join(labels) + "\n", CONFIG_FILE: text}


def write_deepstream_files(
    output_dir: str | Path,
    *,
    class_names: Sequence[str],
    model_class_names: Sequence[str] | None,
    model_file: str | Path,
    input_shape_hwc: Sequence[int],
    image_mean_bgr: Sequence[float],
    data_type: str,
    batch_size: int = 1,
    engine_file: str | Path | None = None,
    cal_cache_file: str | Path | None = None,
    pre_cluster_threshold: float = 0.3,
    top_k: int = 200,
) -> DeepStreamFiles:
    """Write ``labels.txt`` and ``nvinfer_config.txt`` into ``output_dir`` (atomically).

    Paths in the config are written relative to ``output_dir`` when they lie inside it
    (nvinfer resolves relative paths against the config file's folder).
    """
    output_dir = Path(output_dir)
    labels = label_lines(class_names, model_class_names)

    def rel(path: str | Path | None) -> str | None:
        if path is None:
            return None
        path = Path(path).resolve()
        try:
            return str(path.relative_to(output_dir.resolve()))
        except ValueError:
            return str(path)

    labels_path = write_text_atomic(output_dir / LABELS_FILE, "\n".join(labels) + "\n")
    text = nvinfer_config_text(
        model_file=rel(model_file),
        labels_file=LABELS_FILE,
        input_shape_hwc=input_shape_hwc,
        image_mean_bgr=image_mean_bgr,
        num_classes=len(labels),
        data_type=data_type,
        batch_size=batch_size,
        engine_file=rel(engine_file),
        cal_cache_file=rel(cal_cache_file),
        pre_cluster_threshold=pre_cluster_threshold,
        top_k=top_k,
    )
    config_path = write_text_atomic(output_dir / CONFIG_FILE, text)
    return DeepStreamFiles(labels=labels_path, config=config_path)
