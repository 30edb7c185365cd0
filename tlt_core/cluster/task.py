"""The body of the train and retrain components (`train_task`), and its distributed
branch (``workers > 1``, `run_distributed_train`).

Distributed, the inputs go where every worker pod can read them (next to the task's output artifact on
the pipeline's object store), the launcher runs the job, and the chief's model becomes the
task's output, with the same metrics the single-pod task reports.
"""

from __future__ import annotations

import os

from tlt_core.cluster import launcher as launch
from tlt_core.cluster import locations, manifests
from tlt_core.errors import PipelineError
from tlt_core.pipeline_support import TrainOutcome, primary_metric_name


def train_task(
    dataset,
    spec_text: str,
    model,
    metrics,
    *,
    stage: str,
    validation_fold: int,
    use_amp: bool,
    gpus: int,
    workers: int,
    gpus_per_worker: int,
    launcher: str,
    network: str,
    pruned_model=None,
) -> float:
    """Train (``pruned_model``: retrain it) from the ``dataset`` artifact into ``model`` in
    this pod or, with ``workers`` > 1, in a TrainJob/TFJob; log the metrics, note ``stage``
    on the model and return the last validation value of the network's primary metric."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    if workers > 1:
        result = run_distributed_train(
            dataset_uri=dataset.uri,
            spec_text=spec_text,
            model_uri=model.uri,
            model_out=model.path,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            launcher=launcher,
            network=network,
            validation_fold=validation_fold,
            use_amp=use_amp,
            pruned_model_uri=pruned_model.uri if pruned_model is not None else "",
        )
    else:
        result = support.run_train(
            dataset.path,
            spec_text,
            model.path,
            validation_fold=validation_fold,
            use_amp=use_amp,
            gpus=gpus,
            pruned_model_path=pruned_model.path if pruned_model is not None else None,
            network=network,
        )
    support.log_metrics(metrics, result.metrics)
    model.metadata.update(result.model_metadata)
    support.record_stage(model, stage, start)
    return float(result.metrics.get(primary_metric_name(network), 0.0))


def run_distributed_train(
    *,
    dataset_uri: str,
    spec_text: str,
    model_uri: str,
    model_out: str,
    workers: int,
    gpus_per_worker: int,
    launcher: str,
    network: str = "ssd",
    validation_fold: int = 0,
    use_amp: bool = False,
    pruned_model_uri: str = "",
    env=None,
    api=None,
    poll_s: float = 10.0,
) -> TrainOutcome:
    env = os.environ if env is None else env
    base = locations.shared_uri(model_uri) + "-distributed"
    spec_location = locations.join(base, "experiment_spec.txt")
    results = locations.join(base, "results")
    locations.put_text(spec_location, spec_text)
    args = [
        "--network",
        network,
        "--dataset",
        locations.shared_uri(dataset_uri),
        "--spec",
        spec_location,
        "--results",
        results,
        "--validation-fold",
        str(validation_fold),
    ]
    if pruned_model_uri:
        args += ["--pruned-model", locations.shared_uri(pruned_model_uri)]
    if use_amp:
        args.append("--use-amp")
    owner = launch.owner_from_env(env)
    job = manifests.DistributedTrain(
        name=launch.job_name("train", owner.uid if owner else model_uri),
        namespace=launch.namespace_from_env(env),
        image=_worker_image(env),
        workers=workers,
        worker_args=args,
        gpus_per_worker=gpus_per_worker,
        model_key_secret=env.get(launch.MODEL_KEY_SECRET_ENV, "tlt-model-key"),
        s3_secret=env.get(launch.S3_SECRET_ENV, "tlt-s3-credentials"),
        runtime=env.get(launch.RUNTIME_ENV, manifests.DEFAULT_RUNTIME),
        owner=owner,
    )
    runner = launch.Launcher(
        api if api is not None else launch.api_client(env), launcher, job.namespace, poll_s=poll_s
    )
    result = launch.run(
        runner, job, results=results, model_out=model_out, metric=primary_metric_name(network)
    )
    return TrainOutcome(
        result.metrics,
        {
            "epochs": int(result.metrics.get("epochs", 0)),
            "pruned": bool(pruned_model_uri),
            "workers": workers,
            "launcher": launcher,
            "job": job.name,
        },
    )


def _worker_image(env) -> str:
    image = env.get(launch.IMAGE_ENV)
    if not image:
        raise PipelineError(f"{launch.IMAGE_ENV} is not set: the pipeline names the worker image")
    return image
