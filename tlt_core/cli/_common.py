"""Argument helpers shared by command modules."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path


def add_gpu_index(parser: argparse.ArgumentParser, many: bool) -> None:
    parser.add_argument(
        "--gpu_index",
        "--gpu-index",
        dest="gpu_index",
        type=int,
        nargs="+" if many else None,
        default=None,
        metavar="I",
        help="GPU index(es) to use (sets CUDA_VISIBLE_DEVICES)",
    )


def select_gpus(gpu_index) -> None:
    """Make only the chosen GPUs visible (before TensorFlow starts)."""
    if gpu_index is None:
        return
    indices = gpu_index if isinstance(gpu_index, list) else [gpu_index]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in indices)


def add_log_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log_file",
        "--log-file",
        dest="log_file",
        default=None,
        help="also write the log to this file",
    )


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """``--gpu_index I`` and ``--log_file`` of the single-GPU commands."""
    add_gpu_index(parser, many=False)
    add_log_file_option(parser)


def start_job(args: argparse.Namespace) -> None:
    """Apply :func:`add_job_options`' options; before TensorFlow is imported."""
    select_gpus(args.gpu_index)
    add_log_file(args.log_file)


def add_log_file(path: str | None) -> None:
    """Also write the log to ``path`` (TLT's ``--log_file``)."""
    from tlt_core.io_utils import check_output_path

    if not path:
        return
    check_output_path(path, "file", what="--log_file")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


# --- options every network task shares, declared once -----------------------------------------
def add_spec_option(
    parser: argparse.ArgumentParser,
    *long_names: str,
    required: bool = True,
    dest: str | None = None,
) -> None:
    """``-e`` (TLT's long names differ per task: ``--experiment_spec_file``,
    ``--experiment_spec``, ``--config_path``); both spellings of each long name."""
    names = long_names or ("experiment_spec_file",)
    flags = ["-e"]
    for name in names:
        flags += [f"--{name}", f"--{name.replace('_', '-')}"] if "_" in name else [f"--{name}"]
    parser.add_argument(
        *flags,
        dest=dest or names[0],
        required=required,
        metavar="SPEC",
        help="experiment spec file (local or s3://)",
    )


def add_key_option(
    parser: argparse.ArgumentParser,
    *,
    required: bool,
    help: str = "encryption key of the model files",
) -> None:
    """``-k/--key``."""
    parser.add_argument("-k", "--key", required=required, default=None, help=help)


def add_model_option(
    parser: argparse.ArgumentParser,
    *long_names: str,
    required: bool = True,
    help: str = "model file (local or s3://)",
) -> None:
    """``-m`` with the task's long names (``--model``, ``--pretrained_model``, ...); the
    value is always ``args.model``."""
    names = long_names or ("model",)
    flags = ["-m"]
    for name in names:
        flags += [f"--{name}", f"--{name.replace('_', '-')}"] if "_" in name else [f"--{name}"]
    parser.add_argument(
        *flags, dest="model", required=required, default=None, metavar="MODEL", help=help
    )


def add_results_dir_option(parser: argparse.ArgumentParser) -> None:
    """``-r/--results_dir``."""
    parser.add_argument(
        "-r",
        "--results_dir",
        "--results-dir",
        dest="results_dir",
        required=True,
        metavar="RESULTS_DIR",
        help="folder for checkpoints and logs (local or s3://)",
    )
