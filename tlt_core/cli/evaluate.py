"""``tlt <network> evaluate``: the primary metric of a model on the spec's validation data."""

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
        "evaluate",
        help=f"evaluate a {network.name} model ({network.primary_metric.name})",
        description=f"Compute {network.primary_metric.description} of a model over the "
        "validation sources of the spec, as its evaluation config says.",
    )
    add_model_option(
        parser,
        help="model file: .tlt, .onnx, .etlt, or a TensorRT engine .engine/.trt/.plan "
        "(local or s3://)",
    )
    add_spec_option(parser)
    add_key_option(parser, required=False, help="encryption key of a .tlt model")
    add_job_options(parser)
    parser.add_argument(
        "-o",
        "--output_dir",
        "--output-dir",
        dest="output_dir",
        default=None,
        help="write results.txt, results.json and PR curves here (local or s3://)",
    )
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        dest="batch_size",
        type=int,
        default=None,
        help="batch size (default: eval_config.batch_size)",
    )
    parser.add_argument(
        "--use_training_set",
        "--use-training-set",
        dest="use_training_set",
        action="store_true",
        help="evaluate on the spec's training data instead of its validation data (002)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import start_job

    start_job(args)

    from tlt_core.stages.evaluate import evaluate
    from tlt_core.storage import PathResolver

    with PathResolver() as paths:
        model = paths.model(args.model)
        spec = paths.spec(args.experiment_spec_file)
        output_dir = paths.output(args.output_dir, "dir") if args.output_dir else None
        result = evaluate(
            model,
            spec,
            args.key,
            output_dir=output_dir,
            batch_size=args.batch_size,
            network=args.network,
            use_training_set=args.use_training_set,
        )
    print(f"runner: {result.runner}")
    print(result.table)
    log.info("per-class AP table printed on stdout")
    return 0
