"""The TrainJob (Kubeflow Trainer, ``trainer.kubeflow.org/v1alpha1``) and TFJob (Training
Operator, ``kubeflow.org/v1``) a distributed train task creates, as plain dicts.

Both run the same container: ``python3 -m tlt_core.cluster.worker ...`` in the tlt-core
image, which fetches the inputs and execs ``tlt <network> train`` (see ``worker``). Secrets
reach the pods as the single-pod task gets them: ``secretKeyRef`` env vars naming the
existing Secrets, never values. The job is owned by the KFP task pod (ownerReference), so
Kubernetes' garbage collector deletes it with that pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tlt_core.cluster import tf_config

TRAINJOB_GROUP, TRAINJOB_VERSION, TRAINJOB_PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
TFJOB_GROUP, TFJOB_VERSION, TFJOB_PLURAL = "kubeflow.org", "v1", "tfjobs"
LAUNCHERS = ("trainjob", "tfjob")
GPU_RESOURCE = "nvidia.com/gpu"
# The TrainingRuntime the chart installs (charts/tlt-pipelines/templates/trainingruntime.yaml).
DEFAULT_RUNTIME = "tlt-train"
MODEL_KEY_ENV = "TLT_MODEL_KEY"
S3_ENV = {  # Secret data key -> variable, as components.secrets.use_s3_credentials maps them
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "endpoint": "S3_ENDPOINT_URL",
}
WORKER_COMMAND = ["python3", "-m", "tlt_core.cluster.worker"]
PART_OF = "tlt-pipelines"


@dataclass(frozen=True)
class OwnerPod:
    """The KFP task pod that owns the job (downward API: name, uid)."""

    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # No blockOwnerDeletion: setting it needs update rights on the pod's finalizers.
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}


@dataclass(frozen=True)
class DistributedTrain:
    """Everything the manifests depend on."""

    name: str
    namespace: str
    image: str
    workers: int
    worker_args: list[str]
    gpus_per_worker: int = 1
    model_key_secret: str = "tlt-model-key"
    s3_secret: str = "tlt-s3-credentials"
    cpu: str = "8"
    memory: str = "32Gi"
    runtime: str = DEFAULT_RUNTIME
    owner: OwnerPod | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(
        default_factory=lambda: [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        ]
    )
    labels: dict[str, str] = field(default_factory=dict)
    backoff_limit: int = 3

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                "app.kubernetes.io/component": "train",
                **self.labels,
            },
        }
        if self.owner is not None:
            meta["ownerReferences"] = [self.owner.reference()]
        return meta

    def resources(self) -> dict[str, Any]:
        amounts: dict[str, Any] = {"cpu": self.cpu, "memory": self.memory}
        if self.gpus_per_worker:
            amounts[GPU_RESOURCE] = str(self.gpus_per_worker)
        return {"requests": dict(amounts), "limits": dict(amounts)}

    def args(self) -> list[str]:
        return [*self.worker_args, "--gpus", str(max(1, self.gpus_per_worker))]

    def secret_env(self) -> list[dict[str, Any]]:
        env = [
            {
                "name": MODEL_KEY_ENV,
                "valueFrom": {"secretKeyRef": {"name": self.model_key_secret, "key": "key"}},
            }
        ]
        env += [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": self.s3_secret, "key": key}}}
            for key, name in S3_ENV.items()
        ]
        return env


def validate(job: DistributedTrain) -> None:
    from tlt_core.errors import UsageError

    if job.workers < 2:
        raise UsageError(f"workers {job.workers}: a distributed job needs at least 2")
    if job.gpus_per_worker < 0:
        raise UsageError(f"gpus_per_worker {job.gpus_per_worker} is negative")


def trainjob(job: DistributedTrain) -> dict[str, Any]:
    """A TrainJob on the chart's TrainingRuntime: ``numNodes`` pods of the ``node`` job."""
    validate(job)
    return {
        "apiVersion": f"{TRAINJOB_GROUP}/{TRAINJOB_VERSION}",
        "kind": "TrainJob",
        "metadata": job.metadata(),
        "spec": {
            "runtimeRef": {
                "apiGroup": TRAINJOB_GROUP,
                "kind": "TrainingRuntime",
                "name": job.runtime,
            },
            "trainer": {
                "image": job.image,
                "command": list(WORKER_COMMAND),
                "args": job.args(),
                "numNodes": job.workers,
                "resourcesPerNode": job.resources(),
                "env": [
                    {"name": tf_config.NUM_WORKERS, "value": str(job.workers)},
                    *job.secret_env(),
                ],
            },
        },
    }


def _security() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


def tfjob(job: DistributedTrain) -> dict[str, Any]:
    """A TFJob with ``workers`` Worker replicas; the operator sets TF_CONFIG."""
    validate(job)
    pod_security, container_security = _security()
    pod_spec: dict[str, Any] = {
        "securityContext": pod_security,
        "tolerations": [dict(t) for t in job.tolerations],
        "containers": [
            {
                "name": "tensorflow",  # the container TFJob sets TF_CONFIG in
                "image": job.image,
                "command": list(WORKER_COMMAND),
                "args": job.args(),
                "env": [{"name": "HOME", "value": "/tmp"}, *job.secret_env()],
                "resources": job.resources(),
                "ports": [
                    {"name": "tfjob-port", "containerPort": tf_config.DEFAULT_PORT},
                ],
                "securityContext": container_security,
            }
        ],
    }
    if job.node_selector:
        pod_spec["nodeSelector"] = dict(job.node_selector)
    return {
        "apiVersion": f"{TFJOB_GROUP}/{TFJOB_VERSION}",
        "kind": "TFJob",
        "metadata": job.metadata(),
        "spec": {
            "runPolicy": {"backoffLimit": job.backoff_limit, "cleanPodPolicy": "Running"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": job.workers,
                    # 128+ (143: the SIGTERM checkpoint was written) restarts, 1-127 fails.
                    "restartPolicy": "ExitCode",
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/part-of": PART_OF}},
                        "spec": pod_spec,
                    },
                }
            },
        },
    }


def build(launcher: str, job: DistributedTrain) -> dict[str, Any]:
    from tlt_core.errors import UsageError

    if launcher == "trainjob":
        return trainjob(job)
    if launcher == "tfjob":
        return tfjob(job)
    raise UsageError(f"launcher {launcher!r}: choose from {', '.join(LAUNCHERS)}")


def api_of(launcher: str) -> tuple[str, str, str]:
    """(group, version, plural) of the launcher's resource."""
    return (
        (TRAINJOB_GROUP, TRAINJOB_VERSION, TRAINJOB_PLURAL)
        if launcher == "trainjob"
        else (TFJOB_GROUP, TFJOB_VERSION, TFJOB_PLURAL)
    )


def chief_selector(launcher: str, name: str) -> str:
    """Label selector of the job's pods (the chief is picked by ``is_chief_pod``)."""
    if launcher == "trainjob":
        return f"jobset.sigs.k8s.io/jobset-name={name}"
    return f"training.kubeflow.org/job-name={name}"


def is_chief_pod(launcher: str, pod_meta: dict[str, Any]) -> bool:
    labels = pod_meta.get("labels") or {}
    annotations = pod_meta.get("annotations") or {}
    if launcher == "trainjob":
        job_index = labels.get("jobset.sigs.k8s.io/job-index", "0")
        completion = annotations.get(
            "batch.kubernetes.io/job-completion-index",
            labels.get("batch.kubernetes.io/job-completion-index", "0"),
        )
        return job_index == "0" and completion == "0"
    return (
        labels.get("training.kubeflow.org/replica-type", "").lower() == "worker"
        and labels.get("training.kubeflow.org/replica-index") == "0"
    )
