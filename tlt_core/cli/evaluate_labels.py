"""``tlt evaluate-labels``: AP of KITTI prediction labels against ground-truth labels."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-labels",
        help="per-class AP and mAP of KITTI prediction labels against ground truth",
        description="Compare KITTI label files of predictions (16 fields, the last a score) "
        "with ground-truth label files of the same names. Classes are compared "
        "case-insensitively and DontCare is ignored; ground truth with occlusion > 0 is "
        "difficult (neither rewarded nor penalised) unless --include_difficult. A frame "
        "without a prediction file has no detections.",
    )
    parser.add_argument(
        "-g",
        "--gt_dir",
        "--gt-dir",
        dest="gt_dir",
        required=True,
        metavar="DIR",
        help="ground-truth label directory (local or s3://)",
    )
    parser.add_argument(
        "-p",
        "--pred_dir",
        "--pred-dir",
        dest="pred_dir",
        required=True,
        metavar="DIR",
        help="prediction label directory (local or s3://)",
    )
    parser.add_argument(
        "-a",
        "--ap_mode",
        "--ap-mode",
        dest="ap_mode",
        default="SAMPLE",
        type=str.upper,
        choices=["SAMPLE", "INTEGRATE"],
        help="SAMPLE: VOC2007 11-point; INTEGRATE: VOC2010+ area (default SAMPLE)",
    )
    parser.add_argument(
        "--iou", type=float, default=0.5, help="matching IoU threshold (default 0.5)"
    )
    parser.add_argument(
        "--include_difficult",
        "--include-difficult",
        action="store_true",
        help="count occluded (difficult) ground truth like any other",
    )
    parser.add_argument(
        "--classes",
        default=None,
        metavar="A,B,...",
        help="classes to evaluate, comma-separated (default: all found)",
    )
    parser.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write the results as JSON here (local or s3://)",
    )
    parser.add_argument(
        "--pr_curves",
        "--pr-curves",
        dest="pr_curves",
        default=None,
        metavar="DIR",
        help="write one precision-recall PNG per class here",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.stages.evaluate_labels import evaluate_labels
    from tlt_core.storage import PathResolver

    classes = args.classes.split(",") if args.classes else None
    with PathResolver() as paths:
        outcome = evaluate_labels(
            paths.input(args.gt_dir),
            paths.input(args.pred_dir),
            mode=args.ap_mode,
            iou_threshold=args.iou,
            include_difficult=args.include_difficult,
            classes=classes,
            json_path=paths.output(args.json, "file") if args.json else None,
            pr_curve_dir=paths.output(args.pr_curves, "dir") if args.pr_curves else None,
        )
    print(outcome.table)
    return 0
