"""Wiring of Kubernetes Secrets into tasks (never as pipeline parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl, kubernetes

MODEL_KEY_ENV = "TLT_MODEL_KEY"


@dataclass(frozen=True)
class SecretNames:
    """Names of the existing Kubernetes Secrets the tasks read."""

    model_key: str = "tlt-model-key"  # data key: "key"
    s3: str = "tlt-s3-credentials"  # data keys: access_key, secret_key, endpoint


def use_model_key(task: dsl.PipelineTask, names: SecretNames) -> dsl.PipelineTask:
    return kubernetes.use_secret_as_env(task, names.model_key, {"key": MODEL_KEY_ENV})


def use_s3_credentials(task: dsl.PipelineTask, names: SecretNames) -> dsl.PipelineTask:
    return kubernetes.use_secret_as_env(
        task,
        names.s3,
        {
            "access_key": "AWS_ACCESS_KEY_ID",
            "secret_key": "AWS_SECRET_ACCESS_KEY",
            "endpoint": "S3_ENDPOINT_URL",
        },
    )
