"""``tlt <network> inference``: a model's predictions on images (detectors: annotated images
and KITTI label files; classification: ``result.csv``); the help text is the network's."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, network) -> None:
    from tlt_core.cli._common import (
        add_job_options,
        add_key_option,
        add_model_option,
        add_spec_option,
    )

    parser = subparsers.add_parser(
        "inference",
        help=f"run a {network.name} model on images",
        description=network.inference_description,
    )
    parser.add_argument(
        "-i",
        "--in_image_dir",
        "--in-image-dir",
        dest="input",
        required=True,
        metavar="IN",
        help="an image or a folder of images (local or s3://)",
    )
    parser.add_argument(
        "-o",
        "--out_image_dir",
        "--out-image-dir",
        dest="out_image_dir",
        required=True,
        metavar="OUT_IMAGE_DIR",
        help=network.inference_output_help,
    )
    add_spec_option(parser, "config_path", "experiment_spec_file", dest="spec")
    add_model_option(parser, help="model file (.tlt, .onnx, .etlt or .engine)")
    add_key_option(parser, required=False, help="encryption key of a .tlt model")
    parser.add_argument(
        "-l",
        "--out_label_dir",
        "--out-label-dir",
        dest="out_label_dir",
        default=None,
        metavar="OUT_LABEL_DIR",
        help="folder for KITTI label files",
    )
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        default=0.3,
        help="score threshold for drawing and labels (default 0.3)",
    )
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        dest="batch_size",
        type=int,
        default=1,
        help="images per batch (default 1)",
    )
    network.add_task_options("inference", parser)
    add_job_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import start_job

    start_job(args)

    from tlt_core.networks import get_network
    from tlt_core.stages.inference import inference
    from tlt_core.storage import PathResolver

    options = get_network(args.network).task_options("inference", args)

    with PathResolver() as paths:
        result = inference(
            paths.model(args.model),
            paths.spec(args.spec),
            args.key,
            paths.input(args.input),
            paths.output(args.out_image_dir, "dir"),
            label_dir=paths.output(args.out_label_dir, "dir") if args.out_label_dir else None,
            threshold=args.threshold,
            batch_size=args.batch_size,
            network=args.network,
            options=options,
        )
    noun = get_network(args.network).prediction_noun
    print(
        f"{result.num_images} images, {result.num_detections} {noun}, {result.num_skipped} skipped"
    )
    return 0
