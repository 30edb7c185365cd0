"""What the DAGs share: Kubernetes settings (resources, node pools, secrets, retries) and
the engine-build + publish tail both end with."""

from __future__ import annotations

from kfp import dsl, kubernetes

from components.secrets import SecretNames, use_model_key, use_s3_credentials
from pipelines.targets import Target


def on_cpu(task: dsl.PipelineTask, cpu: str = "2", memory: str = "8Gi") -> dsl.PipelineTask:
    return (
        task.set_cpu_request(cpu)
        .set_cpu_limit(cpu)
        .set_memory_request(memory)
        .set_memory_limit(memory)
    )


def on_gpu(task: dsl.PipelineTask, cpu: str = "8", memory: str = "32Gi") -> dsl.PipelineTask:
    on_cpu(task, cpu, memory)
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    return kubernetes.add_toleration(
        task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"
    )


def with_secrets(
    task: dsl.PipelineTask, names: SecretNames, *, model_key: bool = False, s3: bool = False
) -> dsl.PipelineTask:
    if model_key:
        use_model_key(task, names)
    if s3:
        use_s3_credentials(task, names)
    return task


def launches_jobs(task: dsl.PipelineTask, secrets: SecretNames) -> dsl.PipelineTask:
    """What a train task needs to run a TrainJob/TFJob when its ``workers`` > 1: its own pod
    (the job's owner) and namespace, the worker image, the Secret names the workers mount,
    and S3 credentials for the shared spec, data and results (tlt_core.cluster.task)."""
    from components import TLT_CORE_IMAGE

    for env, path in (
        ("TLT_POD_NAME", "metadata.name"),
        ("TLT_POD_UID", "metadata.uid"),
        ("TLT_POD_NAMESPACE", "metadata.namespace"),
    ):
        kubernetes.use_field_path_as_env(task, env_name=env, field_path=path)
    task.set_env_variable("TLT_WORKER_IMAGE", TLT_CORE_IMAGE)
    task.set_env_variable("TLT_MODEL_KEY_SECRET", secrets.model_key)
    task.set_env_variable("TLT_S3_SECRET", secrets.s3)
    return with_secrets(task, secrets, s3=True)


def retried(task: dsl.PipelineTask, attempts: int = 3) -> dsl.PipelineTask:
    """Retries for stages that fail transiently (object store, node preemption)."""
    return task.set_retry(num_retries=attempts, backoff_duration="30s", backoff_factor=2.0)


def on_target(task: dsl.PipelineTask, target: Target) -> dsl.PipelineTask:
    """Place an engine build on its target's node pool, in the target's builder image."""
    task.set_container_image(target.image)
    task.set_display_name(f"build-engines-{target.name}")
    on_cpu(task, target.cpu, target.memory)
    if target.accelerator_count:
        task.set_accelerator_type(target.accelerator_type)
        task.set_accelerator_limit(target.accelerator_count)
    for key, value in target.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in target.tolerations:
        kubernetes.add_toleration(task, **toleration)
    return task


def engine_builds(targets: list[Target], secrets: SecretNames, *, precisions_of, **inputs) -> list:
    """One engine-build task per target, on its node pool; ``precisions_of(target)`` gives
    the precisions to build (an empty list skips the target)."""
    from components.convert import build_engines

    builds = []
    for target in targets:
        precisions = precisions_of(target)
        if not precisions:
            continue
        task = build_engines(
            target=target.name,
            precisions=precisions,
            max_batch_size=target.max_batch_size,
            int8_mode=target.int8_mode,
            **inputs,
        )
        retried(with_secrets(on_target(task, target), secrets, s3=True), 2)
        builds.append(task)
    return builds


def build_and_publish(
    targets: list[Target],
    secrets: SecretNames,
    *,
    precisions_of,
    onnx_model,
    calibration_cache,
    qdq_model,
    deepstream,
    metrics,
    experiment_spec,
    publish_uri,
    model_version,
    git_commit,
    require_tensorrt,
    pipeline_name: str,
    stage_artifacts: dict,
) -> tuple[list, dsl.PipelineTask, dsl.PipelineTask]:
    """The tail of both DAGs: one engine build per target (``engine_builds``), then the
    version published (ONNX, cache, DeepStream files, metrics, spec) once they are done,
    then the run summary (``components.summary.run_summary``) of the published version;
    ``stage_artifacts`` are its stage inputs this DAG has (artifact metadata carries each
    stage's wall time). Returns ``(builds, publish task, summary task)``."""
    from components.publish import publish
    from components.summary import run_summary

    builds = engine_builds(
        targets,
        secrets,
        precisions_of=precisions_of,
        onnx_model=onnx_model,
        calibration_cache=calibration_cache,
        qdq_model=qdq_model,
        publish_uri=publish_uri,
        model_version=model_version,
        require_tensorrt=require_tensorrt,
    )
    published = publish(
        onnx_model=onnx_model,
        calibration_cache=calibration_cache,
        qdq_model=qdq_model,
        deepstream=deepstream,
        metrics=metrics,
        experiment_spec=experiment_spec,
        publish_uri=publish_uri,
        model_version=model_version,
        git_commit=git_commit,
    ).after(*builds)
    retried(with_secrets(on_cpu(published, "1", "2Gi"), secrets, s3=True))
    summary = run_summary(
        pipeline_name=pipeline_name,
        publish_uri=publish_uri,
        model_version=model_version,
        manifest_uri=published.output,
        calibration_cache=calibration_cache,
        **stage_artifacts,
    )
    with_secrets(on_cpu(summary, "500m", "1Gi"), secrets, s3=True)
    return builds, published, summary
