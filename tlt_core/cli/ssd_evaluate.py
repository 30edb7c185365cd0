"""``tlt ssd evaluate``: mAP of a model on the spec's validation data."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from tlt_core.cli._common import add_job_options

    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate an SSD model (mAP)",
        description="Compute per-class AP and mAP of a model over the validation sources "
        "of the spec, as eval_config says (AP mode, matching IoU threshold).",
    )
    parser.add_argument("-m", "--model", required=True, help="model file: .tlt (local or s3://)")
    parser.add_argument(
        "-e",
        "--experiment_spec_file",
        "--experiment-spec-file",
        dest="experiment_spec_file",
        required=True,
        metavar="SPEC",
        help="experiment spec file (local or s3://)",
    )
    parser.add_argument("-k", "--key", default=None, help="encryption key of a .tlt model")
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import start_job

    start_job(args)

    from tlt_core.stages.evaluate import evaluate
    from tlt_core.storage import PathResolver

    with PathResolver() as paths:
        model = paths.input(args.model)
        spec = paths.input(args.experiment_spec_file)
        output_dir = paths.output(args.output_dir) if args.output_dir else None
        result = evaluate(model, spec, args.key, output_dir=output_dir, batch_size=args.batch_size)
    print(result.table)
    log.info("per-class AP table printed on stdout")
    return 0
