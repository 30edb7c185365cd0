"""``tlt <network> export``: a trained .tlt -> .etlt/.onnx with the network's post-processing,
INT8 cache, engine, DeepStream files."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, network) -> None:
    from tlt_core.cli._common import (
        add_gpu_index,
        add_key_option,
        add_log_file_option,
        add_model_option,
        add_spec_option,
    )

    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX (.etlt), optionally with an INT8 cache",
        description=f"Export a trained {network.name} model to ONNX with its post-processing "
        "in the graph, "
        "sealed as .etlt (or plain .onnx); optionally calibrate INT8 on the CPU, build a "
        "TensorRT engine and write DeepStream files.",
    )
    add_model_option(parser, help=".tlt model (local or s3://)")
    add_key_option(parser, required=True, help="key of the .tlt; seals the .etlt")
    add_spec_option(parser, "experiment_spec")
    parser.add_argument(
        "-o",
        "--output_file",
        default=None,
        help="output .etlt (sealed) or .onnx (plain); default <model>.etlt",
    )
    parser.add_argument(
        "--data_type",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="engine data type (default fp32)",
    )
    parser.add_argument(
        "--cal_image_dir", default=None, help="images (.jpg/.jpeg/.png) to calibrate INT8 on"
    )
    parser.add_argument(
        "--cal_data_file",
        default=None,
        help="calibration tensorfile (.npz): read, or written when --cal_image_dir is given",
    )
    parser.add_argument(
        "--cal_cache_file",
        default=None,
        help="calibration cache to write (default cal.bin beside the output)",
    )
    parser.add_argument("--batches", type=int, default=10, help="calibration batches (default 10)")
    parser.add_argument(
        "--batch_size", type=int, default=8, help="calibration batch size (default 8)"
    )
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=16,
        help="TensorRT engine maximum batch size (default 16)",
    )
    parser.add_argument(
        "--max_workspace_size",
        type=int,
        default=1 << 30,
        help="TensorRT workspace bytes (default 1<<30)",
    )
    parser.add_argument(
        "--engine_file",
        default=None,
        help="also build a TensorRT engine here (needs TensorRT and a GPU)",
    )
    parser.add_argument(
        "-s",
        "--strict_type_constraints",
        action="store_true",
        help="TensorRT precision constraints for the engine",
    )
    parser.add_argument(
        "--force_ptq",
        action="store_true",
        help="post-training calibration even for a QAT model (its ranges ignored)",
    )
    parser.add_argument(
        "--qdq",
        action="store_true",
        help="with --data_type int8: write an explicitly quantised ONNX (QuantizeLinear/"
        "DequantizeLinear on the network, TensorRT 10's way) instead of a calibration cache",
    )
    parser.add_argument(
        "--calibrator",
        choices=("ort-entropy", "ort-percentile", "ort-minmax", "tlt"),
        default="ort-entropy",
        help="Q/DQ scales of a float model: ONNX Runtime's quantize_static calibration "
        "(default ort-entropy) or tlt (this project's entropy calibrator)",
    )
    parser.add_argument(
        "--gen_ds_config",
        action="store_true",
        help="write labels.txt and nvinfer_config.txt beside the output",
    )
    parser.add_argument("--target_opset", type=int, default=17, help="ONNX opset (13-17)")
    parser.add_argument(
        "--nms",
        choices=network.export_variants,
        default=network.export_variants[0],
        help="post-processing variant in the graph (SSD: onnx = stock NonMaxSuppression, "
        "runs anywhere; efficient_nms_trt = TensorRT's EfficientNMS_TRT plugin)",
    )
    parser.add_argument(
        "--output_layout",
        "--output-layout",
        dest="output_layout",
        choices=network.output_layouts,
        default=network.output_layouts[0],
        help="layout of the exported outputs (SSD: batched_nms = num_detections, "
        "detection_boxes, detection_scores, detection_classes; tlt_nms = TLT 3.0's NMS "
        "[B,1,K,7] + NMS_1 keep count, for configs with output-blob-names=NMS and "
        "NvDsInferParseCustomNMSTLT); default %(default)s",
    )
    add_gpu_index(parser, many=False)
    add_log_file_option(parser)
    parser.add_argument(
        "--verbose",
        dest="task_verbose",
        action="store_true",
        help="debug logging (as `tlt -v`)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import start_job
    from tlt_core.stages.export import default_output_path, export
    from tlt_core.storage import PathResolver, is_remote

    start_job(args)  # --gpu_index (the GPU an --engine_file is built on), --log_file
    with PathResolver() as paths:
        model = paths.model(args.model)
        spec = paths.spec(args.experiment_spec)
        target = args.output_file or str(default_output_path(args.model))
        if is_remote(target):
            # The defaults (cal.bin, DeepStream files) go beside the output: upload its folder.
            folder, _, name = str(target).rstrip("/").rpartition("/")
            output = paths.output(folder) / name
            output.parent.mkdir(parents=True, exist_ok=True)
        else:
            output = paths.output(target, "file")

        def maybe_in(uri):
            return paths.input(uri) if uri else None

        def maybe_out(uri):
            return paths.output(uri, "file") if uri else None

        cal_data = args.cal_data_file
        if cal_data:  # an input, or an output when images are given to fill it
            cal_data = (
                paths.output(cal_data, "file") if args.cal_image_dir else paths.input(cal_data)
            )
        result = export(
            model,
            args.key,
            spec,
            output,
            data_type=args.data_type,
            cal_image_dir=maybe_in(args.cal_image_dir),
            cal_data_file=cal_data,
            cal_cache_file=maybe_out(args.cal_cache_file),
            batches=args.batches,
            batch_size=args.batch_size,
            max_batch_size=args.max_batch_size,
            max_workspace_size=args.max_workspace_size,
            engine_file=maybe_out(args.engine_file),
            strict_type_constraints=args.strict_type_constraints,
            force_ptq=args.force_ptq,
            qdq=args.qdq,
            calibrator=args.calibrator,
            gen_ds_config=args.gen_ds_config,
            target_opset=args.target_opset,
            nms_variant=args.nms,
            output_layout=args.output_layout,
            network=args.network,
        )
    log.info("exported %s (%s)", args.output_file or result.output_path, result.data_type)
    if result.cal_cache_file:
        log.info(
            "calibration cache: %s (%d tensors)", result.cal_cache_file, result.calibrated_tensors
        )
    for name, path in result.ds_files.items():
        log.info("DeepStream %s: %s", name, path)
    return 0
