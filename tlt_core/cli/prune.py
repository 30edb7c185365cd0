"""``tlt <network> prune``: remove low-norm filters from a trained model (TLT 3.0 "Pruning the
Model")."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, network) -> None:
    from tlt_core.cli._common import add_job_options, add_key_option, add_model_option
    from tlt_core.prune.criteria import EQUALIZATION_CRITERIA, NORMALIZERS  # numpy only

    parser = subparsers.add_parser(
        "prune",
        help=f"prune a {network.name} model (remove low-norm filters)",
        description="Rank each convolution's filters by the L2 norm of their kernels, "
        "normalised per layer, and keep those above the threshold (rounded up to the "
        "granularity, at least --min_num_filters). Layers joined by element-wise ops or "
        "depthwise convolutions keep the same channels. Retrain the pruned model with "
        f"`tlt {network.name} train -m PRUNED` (or training_config.pruned_model_path).",
    )
    add_model_option(parser, "pretrained_model", help="the .tlt model to prune (local or s3://)")
    parser.add_argument(
        "-o",
        "--output_file",
        "--output-file",
        dest="output_file",
        required=True,
        help="where to write the pruned .tlt (local or s3://)",
    )
    add_key_option(parser, required=True, help="encryption key of the .tlt models")
    parser.add_argument(
        "-n",
        "--normalizer",
        choices=NORMALIZERS,
        default="max",
        help="max: divide each norm by the layer's largest; L2: by the L2 norm of the "
        "layer's norms (default: max)",
    )
    parser.add_argument(
        "-eq",
        "--equalization_criterion",
        "--equalization-criterion",
        dest="equalization_criterion",
        choices=EQUALIZATION_CRITERIA,
        default="union",
        help="how layers that must keep the same channels combine their scores (default: union)",
    )
    parser.add_argument(
        "-pg",
        "--pruning_granularity",
        "--pruning-granularity",
        dest="pruning_granularity",
        type=int,
        default=8,
        help="kept filter counts are multiples of this (default: 8)",
    )
    parser.add_argument(
        "-pth",
        "--pruning_threshold",
        "--pruning-threshold",
        dest="pruning_threshold",
        type=float,
        default=0.1,
        help="threshold on the normalised norm (default: 0.1)",
    )
    parser.add_argument(
        "-nf",
        "--min_num_filters",
        "--min-num-filters",
        dest="min_num_filters",
        type=int,
        default=16,
        help="minimum number of filters kept per layer (default: 16)",
    )
    parser.add_argument(
        "-el",
        "--excluded_layers",
        "--excluded-layers",
        dest="excluded_layers",
        nargs="*",
        default=[],
        metavar="LAYER",
        help="layers whose filters are kept (names, space or comma separated)",
    )
    add_job_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import start_job

    start_job(args)

    from tlt_core.stages.prune import prune, split_layer_names
    from tlt_core.storage import PathResolver

    with PathResolver() as paths:
        model = paths.model(args.model)
        output = paths.output(args.output_file, "file")
        result = prune(
            model,
            output,
            args.key,
            normalizer=args.normalizer,
            equalization=args.equalization_criterion,
            granularity=args.pruning_granularity,
            threshold=args.pruning_threshold,
            min_filters=args.min_num_filters,
            excluded_layers=split_layer_names(args.excluded_layers),
            network=args.network,
        )
    print(result.summary())
    return 0
