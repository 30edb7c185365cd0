"""``tlt <network> train``: train a model (TLT 3.0 "Training the Model")."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)

# Exit status of a run stopped by SIGTERM after writing its checkpoint (128 + 15), so a
# scheduler sees the preemption and retries with `-m <checkpoint> --initial_epoch E`.
EXIT_PREEMPTED = 143


def register(subparsers: argparse._SubParsersAction, network) -> None:
    from tlt_core.cli._common import (
        add_gpu_index,
        add_key_option,
        add_log_file_option,
        add_model_option,
        add_results_dir_option,
        add_spec_option,
    )

    parser = subparsers.add_parser(
        "train",
        help=f"train a {network.name} model",
        description=f"Train a {network.name} model from an experiment spec. Checkpoints (encrypted with "
        "the key) go to RESULTS_DIR/weights, progress to RESULTS_DIR/status.json and "
        "TensorBoard events to RESULTS_DIR/events. With TF_CONFIG set the process runs as one "
        "worker of a multi-worker job.",
    )
    add_spec_option(parser)
    add_results_dir_option(parser)
    add_key_option(parser, required=True)
    parser.add_argument("--gpus", type=int, default=1, help="number of GPUs (default 1)")
    add_gpu_index(parser, many=True)
    parser.add_argument(
        "--use_amp",
        "--use-amp",
        dest="use_amp",
        action="store_true",
        help="automatic mixed precision (float16 compute)",
    )
    parser.add_argument(
        "--enable_qat",
        "--enable-qat",
        dest="enable_qat",
        action="store_true",
        help="quantization-aware training for INT8 (as SSD's training_config.enable_qat; "
        "for networks whose spec has no such field): fine-tunes the -m / spec's start model, "
        "or with none trains float for 2/3 of the epochs, then QAT",
    )
    add_log_file_option(parser)
    add_model_option(
        parser,
        "resume_model_weights",
        required=False,
        help="a .tlt to resume from or to start from (pretrained / pruned)",
    )
    parser.add_argument(
        "--initial_epoch",
        "--initial-epoch",
        dest="initial_epoch",
        type=int,
        default=0,
        help="epoch number to resume from (epochs already done)",
    )
    parser.add_argument(
        "--use_multiprocessing",
        "--use-multiprocessing",
        dest="use_multiprocessing",
        action="store_true",
        help="accepted for TLT compatibility, no effect: tf.data already decodes in parallel "
        "threads (training_config.n_workers sets how many)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tlt_core.cli._common import add_log_file, select_gpus
    from tlt_core.errors import UsageError

    if args.gpu_index is not None:
        if args.gpus not in (1, len(args.gpu_index)):
            raise UsageError(f"--gpus {args.gpus} but {len(args.gpu_index)} --gpu_index values")
        select_gpus(args.gpu_index)
    gpus = len(args.gpu_index) if args.gpu_index else args.gpus
    add_log_file(args.log_file)
    if args.use_multiprocessing:
        log.warning(
            "--use_multiprocessing: accepted for compatibility with TLT; it has no effect "
            "here (tf.data decodes in parallel threads; n_workers in the spec sets how many)"
        )

    from tlt_core.cluster.tf_config import ensure_tf_config
    from tlt_core.stages.train import train
    from tlt_core.storage import PathResolver

    # Under a TrainJob (JobSet) TF_CONFIG is derived from the pod's environment.
    multi_worker = ensure_tf_config(os.environ)

    with PathResolver() as paths:
        spec = paths.spec(args.experiment_spec_file)
        model = paths.model(args.model) if args.model else None
        results_dir = paths.output(args.results_dir, "dir")
        result = train(
            spec,
            results_dir,
            args.key,
            model_path=model,
            network=args.network,
            initial_epoch=args.initial_epoch,
            gpus=gpus,
            use_amp=args.use_amp,
            enable_qat=args.enable_qat,
            multi_worker=multi_worker,
            verbose=1 if sys.stderr.isatty() else 0,
        )
    if result.interrupted:
        log.warning(
            "stopped by SIGTERM after %d epoch(s); resume with -m %s --initial_epoch %d",
            result.epochs_completed,
            result.final_model_path,
            result.epochs_completed,
        )
        return EXIT_PREEMPTED
    log.info(
        "training done: %d epochs, last model %s%s",
        result.epochs_completed,
        result.final_model_path,
        f", mAP {result.final_map:.4f}" if result.final_map is not None else "",
    )
    return 0
