"""``tlt dataset-convert``: KITTI images and labels -> sharded TFRecords (TLT v0.3 §4.2.4)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset-convert",
        help="convert a KITTI dataset to sharded TFRecords",
        description="Convert a KITTI detection dataset to TFRecord shards named "
        "PREFIX-fold-000-of-002-shard-00000-of-00010, split into folds as the spec says.",
    )
    parser.add_argument(
        "-d",
        "--dataset_export_spec",
        "--dataset-export-spec",
        dest="dataset_export_spec",
        required=True,
        metavar="SPEC",
        help="dataset-convert spec file (local or s3://)",
    )
    parser.add_argument(
        "-o",
        "--output_filename",
        "--output-filename",
        dest="output_filename",
        required=True,
        metavar="OUTPUT_PREFIX",
        help="output file prefix (local or s3://)",
    )
    parser.add_argument(
        "-f",
        "--validation_fold",
        "--validation-fold",
        dest="validation_fold",
        type=int,
        default=None,
        metavar="FOLD",
        help="validation fold, 0-based (checked and logged)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every frame as it is written"
    )
    parser.add_argument(
        "--skip_bad_labels",
        "--skip-bad-labels",
        action="store_true",
        help="skip (and count) malformed label lines and boxes outside their image "
        "instead of failing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.stages.dataset_convert import dataset_convert
    from tlt_core.storage import PathResolver, is_remote

    if args.verbose:
        logging.getLogger("tlt_core").setLevel(logging.DEBUG)
    with PathResolver() as paths:
        spec = paths.spec(args.dataset_export_spec)
        if is_remote(args.output_filename):
            # Shards are siblings named after the prefix: upload their folder.
            folder, _, name = str(args.output_filename).rstrip("/").rpartition("/")
            output_prefix = paths.output(folder) / name
            output_prefix.parent.mkdir(parents=True, exist_ok=True)
        else:
            output_prefix = paths.output(args.output_filename)
        result = dataset_convert(
            spec,
            output_prefix,
            validation_fold=args.validation_fold,
            verbose=args.verbose,
            strict=not args.skip_bad_labels,
        )
    log.info(
        "wrote %d frames, %d objects in %d shard(s): %s-fold-*",
        result.n_frames,
        result.n_objects,
        len(result.shards),
        args.output_filename,
    )
    return 0
