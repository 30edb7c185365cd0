"""``tlt pipeline compile|run|submit|schedule``: the Kubeflow pipelines of this project."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tlt_core.errors import UsageError

PIPELINE_NAMES = ("train_deploy", "calibration_refresh")


def _network_option(parser: argparse.ArgumentParser) -> None:
    from tlt_core.networks import DEFAULT_NETWORK, NETWORKS

    parser.add_argument(
        "--network",
        choices=tuple(NETWORKS),
        default=DEFAULT_NETWORK,
        help=f"the network of the pipeline, tlt-<network>-<pipeline> (default {DEFAULT_NETWORK})",
    )


def _params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        params[name] = value
    return params


def _read(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as error:
        raise UsageError(f"{path}: cannot read {what}: {error.strerror}") from None


def _secrets(args: argparse.Namespace):
    """Names of the Kubernetes Secrets (the chart passes them as TLT_*_SECRET)."""
    from components.secrets import SecretNames

    defaults = SecretNames()
    return SecretNames(
        model_key=args.model_key_secret
        or os.environ.get("TLT_MODEL_KEY_SECRET", defaults.model_key),
        s3=args.s3_secret or os.environ.get("TLT_S3_SECRET", defaults.s3),
    )


def _secret_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-key-secret",
        help="Secret with the model key (data key 'key'); "
        "default $TLT_MODEL_KEY_SECRET or tlt-model-key",
    )
    parser.add_argument(
        "--s3-secret",
        help="Secret with access_key/secret_key/endpoint; "
        "default $TLT_S3_SECRET or tlt-s3-credentials",
    )


def _compile(args: argparse.Namespace) -> int:
    from pipelines.compile import PIPELINES, compile_pipeline
    from tlt_core.io_utils import check_output_path

    check_output_path(args.output, "dir", what="-o")
    names = list(PIPELINES) if args.pipeline == "all" else [args.pipeline]
    for name in names:
        path = compile_pipeline(
            name,
            Path(args.output) / f"{name}.yaml",
            targets_file=args.targets,
            secrets=_secrets(args),
            network=args.network,
        )
        print(path)
    return 0


def _run(args: argparse.Namespace) -> int:
    if not args.local:
        raise UsageError("only --local runs are done by 'run'; use 'submit' for a cluster")
    if args.pipeline == "calibration_refresh":
        return _run_refresh(args)
    from pipelines.local_run import run_local

    result = run_local(
        Path(args.output),
        key=args.key or os.environ.get("TLT_MODEL_KEY"),
        dataset_uri=args.dataset,
        convert_spec=_read(args.convert_spec, "convert spec"),
        experiment_spec=_read(args.experiment_spec, "experiment spec"),
        epochs=args.epochs,
        min_map=args.min_map,
        max_map_drop=args.max_map_drop,
        **_local_run_options(args),
    )
    print(result.summary())
    return 0


def _run_refresh(args: argparse.Namespace) -> int:
    from pipelines.local_run import run_local_refresh

    needed = {
        "--publish": args.publish,
        "--source-version": args.source_version,
        "--new-version": args.new_version,
        "--calibration-images": args.calibration_images,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise UsageError(f"--pipeline calibration_refresh needs {', '.join(missing)}")
    result = run_local_refresh(
        Path(args.output),
        source_version=args.source_version,
        new_version=args.new_version,
        **_local_run_options(args),
    )
    print(result.summary())
    return 0


def _local_run_options(args: argparse.Namespace) -> dict:
    """The `run_local` / `run_local_refresh` arguments both pipelines take from the CLI."""
    return {
        "publish_uri": args.publish,
        "calibration_images_uri": args.calibration_images,
        "targets_file": args.targets,
        "require_tensorrt": args.require_tensorrt,
        "cal_batches": args.cal_batches,
        "cal_batch_size": args.cal_batch_size,
        "verbose": args.verbose,
        "network": args.network,
    }


def _cluster_run_options(args: argparse.Namespace) -> dict:
    """The `submit` / `schedule` arguments that say where and how a run goes."""
    return {
        "experiment": args.experiment,
        "namespace": args.namespace,
        "token": os.environ.get("KFP_TOKEN"),
        "targets_file": args.targets,
        "secrets": _secrets(args),
        "network": args.network,
    }


def _arguments(args: argparse.Namespace) -> dict:
    arguments: dict = {}
    for name in (
        "dataset_uri",
        "publish_uri",
        "model_version",
        "calibration_images_uri",
        "source_version",
        "new_version",
    ):
        value = getattr(args, name, None)
        if value is not None:
            arguments[name] = value
    for name, path in (
        ("experiment_spec", args.experiment_spec),
        ("convert_spec", args.convert_spec),
        ("retrain_spec", args.retrain_spec),
    ):
        text = _read(path, name.replace("_", " "))
        if text is not None:
            arguments[name] = text
    arguments.update(_params(args.param))
    return arguments


def _submit(args: argparse.Namespace) -> int:
    from pipelines.client import git_commit, submit

    commit = args.commit or git_commit(args.repo)
    arguments = _arguments(args)
    arguments.setdefault("git_commit", commit)
    if args.pipeline == "train_deploy":
        arguments.setdefault("model_version", commit[:12])
    run_id = submit(
        args.host,
        args.pipeline,
        arguments,
        commit=commit,
        **_cluster_run_options(args),
    )
    print(run_id)
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from pipelines.client import schedule
    from pipelines.cron import validate_cron

    cron = validate_cron(args.cron)
    arguments = _arguments(args)
    job_id = schedule(
        args.host,
        args.pipeline,
        cron,
        arguments,
        job_name=args.job_name or f"{args.pipeline.replace('_', '-')}-schedule",
        **_cluster_run_options(args),
    )
    print(job_id)
    return 0


def _cluster_options(parser: argparse.ArgumentParser, default_pipeline: str) -> None:
    parser.add_argument(
        "--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow"
    )
    parser.add_argument("--pipeline", choices=PIPELINE_NAMES, default=default_pipeline)
    _network_option(parser)
    parser.add_argument("--namespace", help="Kubeflow profile namespace")
    parser.add_argument("--experiment", help="experiment name (default tlt-<pipeline>)")
    parser.add_argument("--targets", help="target matrix YAML (default pipelines/targets.yaml)")
    parser.add_argument("--experiment-spec", help="the network's experiment spec file")
    parser.add_argument("--retrain-spec", help="spec for the retrain (default: NO_REG)")
    parser.add_argument("--convert-spec", help="dataset-convert spec file")
    parser.add_argument(
        "--dataset",
        dest="dataset_uri",
        help="s3:// URI or PVC path of the data (KITTI; classification: train/ and val/)",
    )
    parser.add_argument("--publish", dest="publish_uri", help="s3:// prefix to publish to")
    parser.add_argument("--model-version", dest="model_version")
    parser.add_argument("--calibration-images", dest="calibration_images_uri")
    parser.add_argument("--source-version", dest="source_version")
    parser.add_argument("--new-version", dest="new_version")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    _secret_options(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pipeline", help="compile, run, submit or schedule a pipeline")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    compile_parser = actions.add_parser("compile", help="write the IR YAML of the pipelines")
    compile_parser.add_argument("--pipeline", choices=(*PIPELINE_NAMES, "all"), default="all")
    compile_parser.add_argument("-o", "--output", required=True, help="output folder")
    _network_option(compile_parser)
    compile_parser.add_argument("--targets", help="target matrix YAML")
    _secret_options(compile_parser)
    compile_parser.set_defaults(func=_compile)

    run_parser = actions.add_parser("run", help="run a pipeline on this machine (kfp.local)")
    run_parser.add_argument("--local", action="store_true", required=True)
    run_parser.add_argument("--pipeline", choices=PIPELINE_NAMES, default="train_deploy")
    _network_option(run_parser)
    run_parser.add_argument(
        "--source-version", help="calibration_refresh: the published version to recalibrate"
    )
    run_parser.add_argument("--new-version", help="calibration_refresh: the version to publish")
    run_parser.add_argument("--cal-batches", type=int, default=4, help="calibration batches")
    run_parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show every task's whole output (always in OUTPUT/logs/<task>.log)",
    )
    run_parser.add_argument("--cal-batch-size", type=int, default=8, help="calibration batch size")
    run_parser.add_argument("-o", "--output", default="out", help="output folder (default out)")
    run_parser.add_argument(
        "--dataset",
        help="the data (path or s3://): KITTI for a detector, train/ and val/ class folders "
        "for classification; default: the network's sample, generated",
    )
    run_parser.add_argument(
        "--convert-spec", help="dataset-convert spec (with --dataset, for a detector)"
    )
    run_parser.add_argument(
        "--experiment-spec", help="the network's experiment spec (with --dataset)"
    )
    run_parser.add_argument("--calibration-images", help="folder or s3:// prefix of images")
    run_parser.add_argument("--publish", help="publish prefix (default OUTPUT/published)")
    run_parser.add_argument(
        "--min-metric",
        "--min-map",
        dest="min_map",
        metavar="VALUE",
        type=float,
        default=0.3,
        help="quality gate: the network's primary metric (mAP, top1_accuracy) to reach",
    )
    run_parser.add_argument(
        "--max-metric-drop",
        "--max-map-drop",
        dest="max_map_drop",
        metavar="VALUE",
        type=float,
        default=0.1,
        help="largest loss of that metric allowed by pruning",
    )
    run_parser.add_argument(
        "-k", "--key", help="model key (default $TLT_MODEL_KEY or a sample key)"
    )
    run_parser.add_argument("--targets", help="target matrix YAML")
    run_parser.add_argument("--epochs", type=int, default=None, help="training epochs override")
    run_parser.add_argument(
        "--require-tensorrt",
        action="store_true",
        help="fail the engine builds when TensorRT is missing",
    )
    run_parser.set_defaults(func=_run)

    submit_parser = actions.add_parser("submit", help="submit a run to a KFP endpoint")
    _cluster_options(submit_parser, "train_deploy")
    submit_parser.add_argument("--commit", help="git commit of the specs (default: git HEAD)")
    submit_parser.add_argument("--repo", default=".", help="git checkout of the specs")
    submit_parser.set_defaults(func=_submit)

    schedule_parser = actions.add_parser("schedule", help="register a recurring run")
    _cluster_options(schedule_parser, "calibration_refresh")
    schedule_parser.add_argument(
        "--cron", required=True, help="6-field cron: second minute hour day month weekday"
    )
    schedule_parser.add_argument("--job-name")
    schedule_parser.set_defaults(func=_schedule)
