"""``tlt-converter``: build a TensorRT engine from an exported ``.etlt`` / ``.onnx`` model.

The interface of TLT 3.0's tlt-converter; the build itself is
``tlt_core.stages.convert.build_engine``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tlt_core.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlt-converter",
        description="Build a TensorRT engine from a model exported by `tlt ssd export`.",
    )
    parser.add_argument("input_file", help="exported model (.etlt, or plain .onnx)")
    parser.add_argument("-k", dest="key", required=True, help="key the model was exported with")
    parser.add_argument(
        "-d",
        dest="input_dims",
        required=True,
        help="comma-separated input dims without batch, e.g. 3,300,300",
    )
    parser.add_argument(
        "-o",
        dest="outputs",
        required=True,
        help="comma-separated output tensor names, e.g. num_detections,"
        "detection_boxes,detection_scores,detection_classes",
    )
    parser.add_argument(
        "-c",
        dest="cal_cache",
        default="./cal.bin",
        help="calibration cache (int8 only; default ./cal.bin)",
    )
    parser.add_argument(
        "-e",
        dest="engine",
        default="./saved.engine",
        help="engine to write (default ./saved.engine)",
    )
    parser.add_argument(
        "-b",
        dest="cal_batch_size",
        type=int,
        default=8,
        help="calibration batch size (int8; default 8)",
    )
    parser.add_argument(
        "-m", dest="max_batch_size", type=int, default=16, help="maximum batch size (default 16)"
    )
    parser.add_argument(
        "-t",
        dest="data_type",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="engine data type (default fp32)",
    )
    parser.add_argument(
        "-w",
        dest="workspace",
        type=int,
        default=1 << 30,
        help="maximum workspace size in bytes (default 1<<30)",
    )
    parser.add_argument(
        "-i",
        dest="input_order",
        choices=("nchw", "nhwc", "nc"),
        default="nchw",
        help="input dimension ordering (default nchw)",
    )
    parser.add_argument(
        "-p",
        dest="profiles",
        action="append",
        default=[],
        help="optimisation profile <input>,<min>,<opt>,<max>, shapes NxCxHxW; "
        "repeat for several inputs",
    )
    parser.add_argument(
        "-s",
        dest="strict",
        action="store_true",
        help="apply TensorRT precision constraints (strict types)",
    )
    parser.add_argument(
        "-u", dest="dla_core", type=int, default=None, help="DLA core to build for (Jetson)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="store_true",
        help="verbose logs: debug logging and TensorRT's verbose builder log",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from tlt_core.export.tensorrt import EngineOptions, parse_dims, parse_profile
    from tlt_core.io_utils import check_output_path
    from tlt_core.stages.convert import build_engine

    check_output_path(args.engine, "file", what="-e")

    outputs = tuple(name.strip() for name in args.outputs.split(",") if name.strip())
    if not outputs:
        raise UsageError("-o: give at least one output name")
    options = EngineOptions(
        data_type=args.data_type,
        input_dims=parse_dims(args.input_dims, args.input_order),
        input_order=args.input_order,
        output_names=outputs,
        max_batch_size=args.max_batch_size,
        workspace_bytes=args.workspace,
        cal_cache=args.cal_cache if args.data_type == "int8" else None,
        cal_batch_size=args.cal_batch_size,
        profiles=tuple(parse_profile(p) for p in args.profiles),
        strict_types=args.strict,
        dla_core=args.dla_core,
        # int8 without -c: the ONNX must carry Q/DQ nodes (explicit quantization).
        int8_mode="cache" if args.cal_cache else "qdq",
        verbose=args.verbose,
    )
    result = build_engine(args.input_file, args.engine, key=args.key, options=options)
    print(
        f"engine: {result.engine_path} (TensorRT {result.info.tensorrt_version}, "
        f"{result.info.gpu_name}, {result.info.data_type})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from tlt_core.cli import configure_logging, run_command

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return run_command(run, args, prog="tlt-converter")


if __name__ == "__main__":
    sys.exit(main())
