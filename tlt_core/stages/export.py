"""Stage ``tlt ssd export``: .tlt -> ONNX (+ NMS) [.etlt], INT8 cache, engine, DeepStream.

Outputs (all written atomically; defaults beside ``output_path``):

- ``output_path``: ``.etlt`` (the ONNX sealed under ``key``) or plain ``.onnx``;
- with ``data_type="int8"``: the calibration cache (default ``cal.bin``) and, when
  ``cal_image_dir`` and ``cal_data_file`` are both given, the tensorfile;
- with ``engine_file``: a TensorRT engine (needs TensorRT and a GPU) and its ``.json``;
- with ``gen_ds_config``: ``labels.txt``, ``nvinfer_config.txt`` and, for an ``.etlt``
  output, the plain ``.onnx`` DeepStream reads (it cannot open this project's sealed files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tlt_core.errors import ExportError, located
from tlt_core.io_utils import commit_together, staged

log = logging.getLogger(__name__)

DATA_TYPES = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportResult:
    output_path: str
    data_type: str
    onnx_path: str | None = None  # plain ONNX (when output is .onnx or for DeepStream)
    cal_cache_file: str | None = None
    cal_data_file: str | None = None
    calibrated_tensors: int = 0
    engine_file: str | None = None
    ds_files: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def default_output_path(model_path: str | Path) -> Path:
    """TLT's default: ``<model>.etlt`` beside the model."""
    return Path(model_path).with_suffix(".etlt")


def export(
    model_path: str | Path,
    key: str,
    spec_path: str | Path,
    output_path: str | Path | None = None,
    *,
    data_type: str = "fp32",
    cal_image_dir: str | Path | None = None,
    cal_data_file: str | Path | None = None,
    cal_cache_file: str | Path | None = None,
    batches: int = 10,
    batch_size: int = 8,
    max_batch_size: int = 16,
    max_workspace_size: int = 1 << 30,
    engine_file: str | Path | None = None,
    strict_type_constraints: bool = False,
    force_ptq: bool = False,
    gen_ds_config: bool = False,
    target_opset: int = 17,
    nms_variant: str = "onnx",
) -> ExportResult:
    from tlt_core.export.postprocess import NMS_VARIANTS
    from tlt_core.modelfile import load_model
    from tlt_core.spec import load_experiment
    from tlt_core.stages.calibrate import calibration_batches

    if data_type not in DATA_TYPES:
        raise ExportError(located(f"{data_type!r} not one of {DATA_TYPES}", field="data_type"))
    if nms_variant not in NMS_VARIANTS:
        raise ExportError(located(f"{nms_variant!r} not one of {NMS_VARIANTS}", field="nms"))
    if not 13 <= target_opset <= 17:
        # 13: ReduceSum with axes input; 17: the newest opset tf2onnx 1.17 and our graph use.
        raise ExportError(
            located(f"{target_opset} outside the supported 13..17", field="target_opset")
        )
    experiment = load_experiment(spec_path)
    if data_type == "int8" and experiment.training.enable_qat and not force_ptq:
        raise ExportError(
            located(
                "this trainer does not implement QAT (the model holds no quantisation ranges to "
                "peel out); export with --force_ptq to calibrate post-training",
                experiment.path,
                field="training_config.enable_qat",
            )
        )
    model, metadata = load_model(model_path, key)
    model_classes = metadata.get("class_names")
    if model_classes is not None and list(model_classes) != list(experiment.class_names):
        raise ExportError(
            located(
                f"spec classes {list(experiment.class_names)} differ from the model's "
                f"{list(model_classes)}",
                spec_path,
                field="dataset_config.target_class_mapping",
            )
        )
    if tuple(int(v) for v in model.inputs[0].shape[1:]) != tuple(experiment.input_shape):
        raise ExportError(
            located(
                f"model input {tuple(model.inputs[0].shape[1:])} differs from the spec's "
                f"{tuple(experiment.input_shape)}",
                spec_path,
                field="augmentation_config",
            )
        )

    with commit_together():  # every output appears together, or none of them
        # Calibration inputs are read and checked before the model is exported: a bad
        # --cal_image_dir fails fast and leaves nothing behind.
        calibration = None
        if data_type == "int8":
            calibration = calibration_batches(
                experiment,
                image_dir=cal_image_dir,
                data_file=cal_data_file,
                batches=batches,
                batch_size=batch_size,
            )
        result = _write_outputs(
            experiment,
            model,
            model_path,
            model_classes,
            key,
            output_path,
            data_type=data_type,
            calibration=calibration,
            cal_cache_file=cal_cache_file,
            batch_size=batch_size,
            max_batch_size=max_batch_size,
            max_workspace_size=max_workspace_size,
            engine_file=engine_file,
            strict_type_constraints=strict_type_constraints,
            gen_ds_config=gen_ds_config,
            target_opset=target_opset,
            nms_variant=nms_variant,
        )
    return result


def _write_outputs(
    experiment,
    model,
    model_path,
    model_classes,
    key,
    output_path,
    *,
    data_type,
    calibration,
    cal_cache_file,
    batch_size,
    max_batch_size,
    max_workspace_size,
    engine_file,
    strict_type_constraints,
    gen_ds_config,
    target_opset,
    nms_variant,
) -> ExportResult:
    from tlt_core.boxes.anchors import generate_anchors
    from tlt_core.export import onnx as onnx_export
    from tlt_core.models.ssd import ssd_feature_map_sizes
    from tlt_core.stages.calibrate import calibrate_and_write

    height, width, _ = experiment.input_shape
    anchors = generate_anchors(experiment.anchors, ssd_feature_map_sizes(model), (height, width))
    exported = onnx_export.export_model(
        model,
        anchors=anchors,
        variances=experiment.anchors.variances,
        nms=experiment.nms,
        class_names=experiment.class_names,
        image_mean_bgr=experiment.image_mean_bgr,
        spec_text=experiment.text,
        variant=nms_variant,
        opset=target_opset,
    )
    output_path = Path(output_path) if output_path else default_output_path(model_path)
    onnx_export.write_model(output_path, exported.full, key)
    plain_onnx = output_path if output_path.suffix == ".onnx" else None

    cache_path = None
    tensorfile = None
    tensor_count = 0
    if data_type == "int8":
        cache_path = Path(cal_cache_file) if cal_cache_file else output_path.with_name("cal.bin")
        data, tensorfile = calibration
        tensor_count = calibrate_and_write(exported.network, data, cache_path)

    engine_path = None
    if engine_file:
        from tlt_core.export.onnx import model_bytes
        from tlt_core.export.runners import RAW_OUTPUTS
        from tlt_core.export.tensorrt import EngineOptions, build_engine

        options = EngineOptions(
            data_type=data_type,
            input_dims=(3, height, width),
            max_batch_size=max_batch_size,
            workspace_bytes=max_workspace_size,
            cal_cache=str(staged(cache_path)) if cache_path else None,
            cal_batch_size=batch_size,
            strict_types=strict_type_constraints,
            extra_outputs=RAW_OUTPUTS,
        )
        engine_path = build_engine(
            model_bytes(exported.full), engine_file, options, source=str(output_path)
        ).engine_path

    ds_files: dict[str, str] = {}
    if gen_ds_config:
        from tlt_core.export.deepstream import write_deepstream_files

        if plain_onnx is None:
            plain_onnx = output_path.with_suffix(".onnx")
            onnx_export.write_model(plain_onnx, exported.full)
        files = write_deepstream_files(
            output_path.parent,
            class_names=experiment.class_names,
            model_class_names=model_classes,
            model_file=plain_onnx,
            input_shape_hwc=experiment.input_shape,
            image_mean_bgr=experiment.image_mean_bgr,
            data_type=data_type,
            batch_size=1,
            engine_file=engine_path,
            cal_cache_file=cache_path,
            top_k=int(experiment.nms.top_k),
        )
        ds_files = {"labels": str(files.labels), "config": str(files.config)}
    return ExportResult(
        output_path=str(output_path),
        data_type=data_type,
        onnx_path=str(plain_onnx) if plain_onnx else None,
        cal_cache_file=str(cache_path) if cache_path else None,
        cal_data_file=tensorfile,
        calibrated_tensors=tensor_count,
        engine_file=engine_path,
        ds_files=ds_files,
        metadata=onnx_export.get_metadata(exported.full),
    )
