"""``tlt sample-data``: generate a small deterministic KITTI dataset with ready-made specs."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample-data",
        help="generate a small KITTI-format sample dataset and spec files",
        description="Write DIR/training/{image_2,label_2}, DIR/val/{image_2,label_2}, "
        "DIR/kitti_seq_to_frames.json and DIR/specs/ (SSD experiment and dataset-convert "
        "specs). The same arguments always give the same files.",
    )
    parser.add_argument(
        "-o",
        "--output_dir",
        "--output-dir",
        dest="output_dir",
        required=True,
        metavar="DIR",
        help="output directory (local path or s3://...)",
    )
    parser.add_argument(
        "--num-train",
        "--num_train",
        dest="num_train",
        type=int,
        default=200,
        metavar="N",
        help="training images (default 200)",
    )
    parser.add_argument(
        "--num-val",
        "--num_val",
        dest="num_val",
        type=int,
        default=50,
        metavar="N",
        help="validation images (default 50)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--width", type=int, default=None, help="fixed image width (default: 320-480, varying)"
    )
    parser.add_argument(
        "--height",
        type=int,
        default=None,
        help="fixed image height (default: 0.6-0.8 of the width)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.stages.sample_data import generate
    from tlt_core.storage import PathResolver

    with PathResolver() as paths:
        output_dir = paths.output(args.output_dir, "dir")
        result = generate(
            output_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            seed=args.seed,
            width=args.width,
            height=args.height,
        )
    counts = ", ".join(
        f"{split}: {sum(c.values())} objects" for split, c in result.class_counts.items()
    )
    log.info("sample dataset written to %s (%s)", args.output_dir, counts)
    log.info("SSD experiment spec: %s", result.experiment_spec)
    return 0
