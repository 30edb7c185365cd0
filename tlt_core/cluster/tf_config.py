"""``TF_CONFIG`` for a worker of a Kubeflow Trainer ``TrainJob`` (JobSet underneath).

Under a ``TFJob`` the Training Operator sets ``TF_CONFIG`` itself. Under a ``TrainJob`` the
pods are those of a JobSet: the ``node`` replicated job runs ``replicas`` Indexed Jobs of
``completions`` pods each, and every pod has a stable DNS name through the JobSet's
headless Service (``subdomain``, the JobSet name unless its ``network.subdomain`` says
otherwise)::

    <jobset>-<replicated job>-<job index>-<completion index>.<subdomain>

The TrainingRuntime of the chart (``charts/tlt-pipelines/templates/trainingruntime.yaml``)
hands the pod its JobSet labels and annotations as environment variables (downward API),
and the TrainJob adds the worker count; from those every worker computes the same ordered
peer list, and its own index in it, without talking to the API server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from tlt_core.errors import UsageError

# Environment variable names the TrainingRuntime sets (downward API) or the Job controller
# sets itself (JOB_COMPLETION_INDEX, Indexed completion mode).
JOBSET_NAME = "TLT_JOBSET_NAME"  # label jobset.sigs.k8s.io/jobset-name
REPLICATED_JOB = "TLT_REPLICATED_JOB"  # label jobset.sigs.k8s.io/replicatedjob-name
JOB_INDEX = "TLT_JOB_INDEX"  # label jobset.sigs.k8s.io/job-index
REPLICATED_JOB_REPLICAS = "TLT_REPLICATED_JOB_REPLICAS"  # annotation ...replicatedjob-replicas
SUBDOMAIN = "TLT_JOBSET_SUBDOMAIN"  # optional: network.subdomain when not the JobSet name
COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
NUM_WORKERS = "TLT_NUM_WORKERS"  # set by the launcher in the TrainJob's trainer.env
PORT = "TLT_WORKER_PORT"
DEFAULT_PORT = 2222  # the port TFJob uses too

# The downward-API sources of the variables above, for the TrainingRuntime template.
DOWNWARD_API = {
    JOBSET_NAME: "metadata.labels['jobset.sigs.k8s.io/jobset-name']",
    REPLICATED_JOB: "metadata.labels['jobset.sigs.k8s.io/replicatedjob-name']",
    JOB_INDEX: "metadata.labels['jobset.sigs.k8s.io/job-index']",
    REPLICATED_JOB_REPLICAS: "metadata.annotations['jobset.sigs.k8s.io/replicatedjob-replicas']",
}


@dataclass(frozen=True)
class WorkerPlacement:
    """Where this process sits in the job: the ordered peer addresses and its index."""

    workers: tuple[str, ...]
    index: int

    @property
    def chief(self) -> bool:
        return self.index == 0

    def tf_config(self) -> dict:
        return {
            "cluster": {"worker": list(self.workers)},
            "task": {"type": "worker", "index": self.index},
        }


def _int(env: Mapping[str, str], name: str, *, default: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise UsageError(f"JobSet environment: {name} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"JobSet environment: {name}={raw!r} is not an integer") from None
    if value < 0:
        raise UsageError(f"JobSet environment: {name}={raw!r} is negative")
    return value


def in_jobset(env: Mapping[str, str]) -> bool:
    return bool(env.get(JOBSET_NAME))


def placement_from_jobset(env: Mapping[str, str]) -> WorkerPlacement:
    """The peers and this worker's index from a JobSet pod's environment."""
    jobset = env.get(JOBSET_NAME, "")
    replicated = env.get(REPLICATED_JOB, "")
    if not jobset or not replicated:
        raise UsageError(f"JobSet environment: {JOBSET_NAME} and {REPLICATED_JOB} must be set")
    replicas = _int(env, REPLICATED_JOB_REPLICAS, default=1)
    total = _int(env, NUM_WORKERS)
    if replicas < 1 or total < 1:
        raise UsageError(f"JobSet environment: {replicas} job(s), {total} worker(s)")
    if total % replicas:
        raise UsageError(
            f"JobSet environment: {NUM_WORKERS}={total} is not a multiple of "
            f"{REPLICATED_JOB_REPLICAS}={replicas}"
        )
    per_job = total // replicas
    job_index = _int(env, JOB_INDEX, default=0)
    completion = _int(env, COMPLETION_INDEX, default=0)
    if job_index >= replicas or completion >= per_job:
        raise UsageError(
            f"JobSet environment: job {job_index} pod {completion} outside "
            f"{replicas} job(s) x {per_job} pod(s)"
        )
    subdomain = env.get(SUBDOMAIN) or jobset
    port = _int(env, PORT, default=DEFAULT_PORT)
    workers = tuple(
        f"{jobset}-{replicated}-{i // per_job}-{i % per_job}.{subdomain}:{port}"
        for i in range(total)
    )
    return WorkerPlacement(workers, job_index * per_job + completion)


def placement_from_tf_config(text: str) -> WorkerPlacement:
    """This worker's place from an existing ``TF_CONFIG`` (as TFJob sets it)."""
    try:
        config = json.loads(text)
        workers = tuple(config["cluster"].get("chief", [])) + tuple(
            config["cluster"].get("worker", [])
        )
        task = config["task"]
        offset = 0 if task["type"] == "chief" else len(config["cluster"].get("chief", []))
        index = offset + int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"TF_CONFIG is not a valid cluster spec: {error}") from None
    return WorkerPlacement(workers, index)


def ensure_tf_config(env: MutableMapping[str, str]) -> bool:
    """Set ``TF_CONFIG`` from the JobSet environment when it is not set already.

    Returns True when the process is one worker of a multi-worker job (``TF_CONFIG`` set,
    given or derived). A single-worker JobSet runs without ``TF_CONFIG``.
    """
    if env.get("TF_CONFIG"):
        return True
    if not in_jobset(env):
        return False
    placement = placement_from_jobset(env)
    if len(placement.workers) < 2:
        return False
    env["TF_CONFIG"] = json.dumps(placement.tf_config())
    return True
