"""Stage ``tlt <network> export``: .tlt -> ONNX (+ the network's post-processing) [.etlt],
INT8 cache, engine, DeepStream files.

Outputs (all written atomically; defaults beside ``output_path``):

- ``output_path``: ``.etlt`` (the ONNX sealed under ``key``) or plain ``.onnx``;
- with ``data_type="int8"``: the calibration cache (default ``cal.bin``) and, when
  ``cal_image_dir`` and ``cal_data_file`` are both given, the tensorfile; with ``qdq``
  the output itself is explicitly quantised (Q/DQ nodes on the network part, TensorRT 10's
  way) and no cache is written. A QAT model (``tlt_core.models.qat``) is exported as its
  float twin (BN folded); its learned ranges become the cache (000's "peeling") or the Q/DQ
  scales, unless ``force_ptq`` asks to calibrate as for any model. A float model is
  calibrated on the images: the cache by our entropy calibrator, the Q/DQ graph by
  ``calibrator`` (``tlt_core.export.qdq.CALIBRATORS``);
- with ``engine_file``: a TensorRT engine (needs TensorRT and a GPU) and its ``.json``;
- ``output_layout``: the layout of the exported outputs (SSD: ``batched_nms`` or TLT 3.0's
  ``tlt_nms``), which the DeepStream config is written for;
- with ``gen_ds_config``: ``labels.txt``, ``nvinfer_config.txt`` and, for an ``.etlt``
  output, the plain ``.onnx`` DeepStream reads (it cannot open this project's sealed files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tlt_core.errors import ExportError, ModelFileError, located
from tlt_core.io_utils import commit_together, staged, write_text_atomic

log = logging.getLogger(__name__)

DATA_TYPES = ("fp32", "fp16", "int8")
# ONNX Runtime's entropy calibration (the maintained library): its Q/DQ models score within
# 1 point of ours on the three sample networks (docs/export.md's table); bench/bench_qdq.py
# times both on the same images (within ~10 % of each other, ours a little closer to FP32).
DEFAULT_QDQ_CALIBRATOR = "ort-entropy"


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


def relative_to(path: str | Path | None, folder: Path) -> str | None:
    """``path`` relative to ``folder`` when it lies inside it (nvinfer resolves relative
    paths against its config file's folder), else absolute; None stays None."""
    if path is None:
        return None
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(folder.resolve()))
    except ValueError:
        return str(resolved)


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
    nms_variant: str | None = None,
    network: str | None = None,
    qdq: bool = False,
    calibrator: str = DEFAULT_QDQ_CALIBRATOR,
    output_layout: str | None = None,
) -> ExportResult:
    from tlt_core.export import onnx as onnx_export
    from tlt_core.networks import get_network, load_model
    from tlt_core.networks.base import ModelInfo
    from tlt_core.stages.calibrate import calibrate_and_write, calibration_batches

    if data_type not in DATA_TYPES:
        raise ExportError(located(f"{data_type!r} not one of {DATA_TYPES}", field="data_type"))
    if not 13 <= target_opset <= 17:
        # 13: ReduceSum with axes input; 17: the newest opset tf2onnx 1.17 and our graph use.
        raise ExportError(
            located(f"{target_opset} outside the supported 13..17", field="target_opset")
        )
    net = get_network(network)
    variant = nms_variant or net.export_variants[0]
    if variant not in net.export_variants:
        raise ExportError(located(f"{variant!r} not one of {net.export_variants}", field="nms"))
    layout = output_layout or net.output_layouts[0]
    if layout not in net.output_layouts:
        raise ExportError(
            located(f"{layout!r} not one of {net.output_layouts}", field="output_layout")
        )
    experiment = net.spec_of(spec_path)
    if qdq and data_type != "int8":
        raise ExportError(located("--qdq writes an INT8 graph: use --data_type int8", field="qdq"))
    from tlt_core.export.qdq import CALIBRATORS

    if calibrator not in CALIBRATORS:
        raise ExportError(located(f"{calibrator!r} not one of {CALIBRATORS}", field="calibrator"))
    model, metadata, _ = load_model(model_path, key)
    from tlt_core.models import qat

    qat_ranges, qat_name = None, None
    if qat.is_qat_model(model):
        qat_ranges = qat.activation_ranges(model)
        qat_name = model.name
        model = qat.to_float(model)  # the graph TensorRT sees: folded, unrounded weights
    use_qat = data_type == "int8" and qat_ranges is not None and not force_ptq
    if (
        data_type == "int8"
        and qat_ranges is None
        and net.training_settings(experiment).enable_qat
        and not force_ptq
    ):
        raise ExportError(
            located(
                f"{model_path} was not trained with QAT (it holds no quantisation ranges to "
                "peel out); retrain with enable_qat, or export with --force_ptq to calibrate "
                "post-training",
                experiment.path,
                field="training_config.enable_qat",
            )
        )
    model_classes = metadata.get("class_names")
    info = ModelInfo(
        tuple(int(v) for v in model.inputs[0].shape[1:]), net.model_classes(model), metadata
    )
    try:
        net.check_model(experiment, info, source=str(model_path))
    except ModelFileError as error:
        raise ExportError(str(error)) from None

    # Calibration inputs are read and checked before anything is written: a bad
    # --cal_image_dir fails fast and leaves nothing behind.
    calibration = None
    if data_type == "int8" and not use_qat:
        calibration = calibration_batches(
            net,
            experiment,
            image_dir=cal_image_dir,
            data_file=cal_data_file,
            batches=batches,
            batch_size=batch_size,
        )

    with commit_together():  # every output appears together, or none of them
        height, width, channels = experiment.input_shape
        exported = onnx_export.export_model(
            model, net, experiment, variant=variant, opset=target_opset, layout=layout
        )
        output_path = Path(output_path) if output_path else default_output_path(model_path)
        cache_path = None
        tensorfile = calibration[1] if calibration else None
        tensor_count = 0
        if data_type == "int8" and qdq:
            exported = _qdq_export(
                exported,
                qat_ranges if use_qat else None,
                calibration,
                calibrator,
                model_name=qat_name if use_qat else None,
            )
        elif data_type == "int8":
            cache_path = (
                Path(cal_cache_file) if cal_cache_file else output_path.with_name("cal.bin")
            )
            if use_qat:
                tensor_count = _write_peeled_cache(
                    exported.network, qat_ranges, qat_name, cache_path
                )
            else:
                tensor_count = calibrate_and_write(exported.network, calibration[0], cache_path)
        onnx_export.write_model(output_path, exported.full, key)
        plain_onnx = output_path if output_path.suffix == ".onnx" else None

        engine_path = None
        if engine_file:
            from tlt_core.export.onnx import model_bytes
            from tlt_core.export.tensorrt import EngineOptions, build_engine

            options = EngineOptions(
                data_type=data_type,
                input_dims=(channels, height, width),
                max_batch_size=max_batch_size,
                workspace_bytes=max_workspace_size,
                cal_cache=str(staged(cache_path)) if cache_path else None,
                cal_batch_size=batch_size,
                strict_types=strict_type_constraints,
                extra_outputs=tuple(net.raw_output_names),
                int8_mode="qdq" if qdq else "cache",
            )
            engine_path = build_engine(
                model_bytes(exported.full), engine_file, options, source=str(output_path)
            ).engine_path

        for file_name, text in net.model_companion_files(model_classes or ()).items():
            write_text_atomic(output_path.parent / file_name, text)
        ds_files: dict[str, str] = {}
        if gen_ds_config:
            if plain_onnx is None:
                plain_onnx = output_path.with_suffix(".onnx")
                onnx_export.write_model(plain_onnx, exported.full)
            ds_dir = output_path.parent
            texts = net.deepstream_config(
                experiment,
                model_file=relative_to(plain_onnx, ds_dir),
                model_class_names=model_classes,
                data_type=data_type,
                batch_size=1,
                engine_file=relative_to(engine_path, ds_dir),
                cal_cache_file=relative_to(cache_path, ds_dir),
                # only when not the default: networks with one layout take no such argument
                **({"output_layout": layout} if layout != net.output_layouts[0] else {}),
            )
            written = {name: write_text_atomic(ds_dir / name, text) for name, text in texts.items()}
            # "labels" and "config": the labels file and the nvinfer config, in that order.
            for kind, path in zip(("labels", "config"), written.values(), strict=False):
                ds_files[kind] = str(path)

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


def quantize_from_qat(
    onnx_path: str | Path,
    model_path: str | Path,
    key: str | None,
    cache_path: str | Path,
    *,
    qdq_path: str | Path | None = None,
) -> int | None:
    """The INT8 forms of an already exported ONNX from the QAT model it was exported from:
    the learned ranges peeled into the calibration cache at ``cache_path`` and, with
    ``qdq_path``, the Q/DQ ONNX with those scales (what ``export --data_type int8`` writes
    for a QAT model). Returns the cache's tensor count, or None when ``model_path`` holds
    no QAT ranges (a float model: calibrate it on images instead). The pipeline's
    calibration step uses this so that a model trained with ``enable_qat`` keeps its scales.
    """
    from tlt_core.export.onnx import ExportedModel, network_part, read_model, write_model
    from tlt_core.models import qat
    from tlt_core.networks import load_model

    model, _, _ = load_model(model_path, key)
    if not qat.is_qat_model(model):
        return None
    ranges, name = qat.activation_ranges(model), model.name
    full = read_model(onnx_path, None)
    exported = ExportedModel(network=network_part(full), full=full)
    with commit_together():
        count = _write_peeled_cache(exported.network, ranges, name, Path(cache_path))
        if qdq_path is not None:
            write_model(qdq_path, _qdq_export(exported, ranges, None, None, model_name=name).full)
    return count


def _qdq_export(exported, qat_ranges, calibration, calibrator, *, model_name):
    """``exported`` with its network part explicitly quantised (Q/DQ; the post-processing
    stays float): with a QAT model's ranges, or calibrated on the images by ``calibrator``."""
    import time
    from dataclasses import replace

    from tlt_core.export import qdq as qdq_mod
    from tlt_core.export.onnx import set_metadata

    started = time.perf_counter()
    if qat_ranges is not None:
        from tlt_core.export.qat_scales import qat_ranges_on_graph

        per_tensor, per_consumer = qat_ranges_on_graph(exported.network, qat_ranges, model_name)
        full = qdq_mod.qdq_from_amax(
            exported.full,
            per_tensor,
            consumer_amax=per_consumer,
            only=qdq_mod.network_nodes(exported.full),
        )
        qdq_mod.require_tensorrt_qdq(full, "Q/DQ model")
        source = "qat"
    else:
        full = qdq_mod.quantize_exported(exported.full, calibration[0], calibrator)
        source = calibrator
    counts = qdq_mod.qdq_counts(full)
    log.info(
        "Q/DQ model (%s): %d Q / %d DQ nodes in %.1f s",
        source,
        counts["QuantizeLinear"],
        counts["DequantizeLinear"],
        time.perf_counter() - started,
    )
    set_metadata(full, {"int8": {"mode": "qdq", "scales": source}})
    return replace(exported, full=full)


def _write_peeled_cache(network_graph, qat_ranges, model_name, cache_path) -> int:
    """000's peeling: the QAT ranges as a TensorRT calibration cache for the float ONNX."""
    from tlt_core.export.cache import CalibrationCache, write_cache
    from tlt_core.export.qat_scales import peel_cache_scales, qat_ranges_on_graph

    per_tensor, _ = qat_ranges_on_graph(network_graph, qat_ranges, model_name)
    scales = peel_cache_scales(network_graph, per_tensor)
    write_cache(cache_path, CalibrationCache(scales=scales))
    log.info("peeled %d QAT scales into %s", len(scales), cache_path)
    return len(scales)
