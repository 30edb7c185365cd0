"""What a KFP train task does with ``workers > 1``: create a TrainJob (or TFJob), follow it to
its end, and hand the chief's model on as the task's output.

Talks to the API server with the official ``kubernetes`` client (in the task pod: the pod's
ServiceAccount, which the chart's Role lets create/watch/delete these resources in its
namespace). Scheduling, gang start, restarts and TF_CONFIG are the Trainer's / Training
Operator's; this module only submits and watches:

- create; on 409 (the name exists) adopt the job when the same task pod owns it (a retried
  executor), else fail;
- watch the job (``watch=true`` on its name, from the last resourceVersion); a watch that
  ends is resumed, one that expired (410 Gone) restarts from a fresh GET; a 404 means the
  job was deleted under us;
- every ``poll_s`` the job's pods are listed: phase changes are logged, and the chief's log
  is streamed line by line into this task's log;
- Complete/Succeeded: the chief's last checkpoint (``results/status.json``) is fetched to
  the output path; Failed: the task fails with the job's reason and message, plus the exit
  codes of the pods that failed;
- SIGTERM/SIGINT (run cancelled) or any error of our own: the job is deleted. When the task
  pod itself is deleted, the ownerReference lets the garbage collector delete the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.cluster import locations, manifests
from tlt_core.errors import PipelineError

log = logging.getLogger(__name__)

POD_NAME_ENV, POD_UID_ENV, POD_NAMESPACE_ENV = "TLT_POD_NAME", "TLT_POD_UID", "TLT_POD_NAMESPACE"
IMAGE_ENV = "TLT_WORKER_IMAGE"
RUNTIME_ENV = "TLT_TRAINING_RUNTIME"
MODEL_KEY_SECRET_ENV, S3_SECRET_ENV = "TLT_MODEL_KEY_SECRET", "TLT_S3_SECRET"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SUCCESS = {"trainjob": "Complete", "tfjob": "Succeeded"}


class Cancelled(PipelineError):
    """The task was asked to stop (SIGTERM/SIGINT)."""


class JobFailed(PipelineError):
    """The job ended Failed (its pods stay for inspection until the task pod goes)."""


@dataclass
class JobResult:
    name: str
    status: dict[str, Any]
    model_path: Path
    metrics: dict[str, float] = field(default_factory=dict)


def job_name(kind: str, seed: str) -> str:
    """A DNS-1035 name, short enough for JobSet's pod hostnames (<name>-node-J-P)."""
    return f"tlt-{kind}-{hashlib.sha256(seed.encode()).hexdigest()[:12]}"


def namespace_from_env(env) -> str:
    namespace = env.get(POD_NAMESPACE_ENV)
    if namespace:
        return namespace
    if SA_NAMESPACE_FILE.exists():
        return SA_NAMESPACE_FILE.read_text().strip()
    raise PipelineError(f"{POD_NAMESPACE_ENV} is not set and no service account namespace file")


def owner_from_env(env) -> manifests.OwnerPod | None:
    name, uid = env.get(POD_NAME_ENV), env.get(POD_UID_ENV)
    return manifests.OwnerPod(name, uid) if name and uid else None


def api_client(env=None):
    """In a pod: the ServiceAccount; elsewhere: ~/.kube/config (or KUBECONFIG)."""
    from kubernetes import client, config

    env = os.environ if env is None else env
    if env.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    return client.ApiClient()


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and str(condition.get("status")) == "True":
            return condition
    return None


def job_outcome(launcher: str, obj: dict[str, Any]) -> tuple[str, str] | None:
    """("succeeded" | "failed", description) once the job has ended, else None."""
    failed = _condition(obj, "Failed")
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        return "failed", f"{reason}: {failed.get('message') or 'no message'}"
    done = _condition(obj, SUCCESS[launcher])
    if done is not None:
        return "succeeded", done.get("message") or done.get("reason") or ""
    return None


def _pod_failure(pod) -> str:
    statuses = list(pod.status.container_statuses or [])
    for status in statuses:
        terminated = status.state.terminated if status.state else None
        if terminated is None and status.last_state is not None:
            terminated = status.last_state.terminated
        if terminated is not None and terminated.exit_code:
            return f"{pod.metadata.name}: {terminated.reason or 'exit'} {terminated.exit_code}"
    return f"{pod.metadata.name}: {pod.status.phase} {pod.status.reason or ''}".strip()


class LogStreamer:
    """Streams one pod's log (follow) into our log, on a daemon thread."""

    def __init__(self, core, namespace: str, pod: str, sink: Callable[[str], None]):
        self._core, self._namespace, self._pod, self._sink = core, namespace, pod, sink
        self.thread = threading.Thread(target=self._run, name=f"log-{pod}", daemon=True)
        self.lines = 0

    def start(self) -> LogStreamer:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            response = self._core.read_namespaced_pod_log(
                self._pod, self._namespace, follow=True, _preload_content=False
            )
            buffer = b""
            for chunk in response.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.lines += 1
                    self._sink(line.decode("utf-8", "replace"))
            if buffer:
                self.lines += 1
                self._sink(buffer.decode("utf-8", "replace"))
        except Exception as error:  # a log stream is best effort; the job's status rules
            log.warning("log of %s ended: %s", self._pod, error)


@contextlib.contextmanager
def cancellation() -> Iterator[threading.Event]:
    """SIGTERM/SIGINT set an event (and raise in the main thread) instead of killing us."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, _frame):
        event.set()
        raise Cancelled(f"cancelled by signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Launcher:
    def __init__(
        self,
        api,
        launcher: str,
        namespace: str,
        *,
        poll_s: float = 10.0,
        watch_timeout_s: int = 60,
        sink: Callable[[str], None] | None = None,
    ):
        from kubernetes import client

        if launcher not in manifests.LAUNCHERS:
            raise PipelineError(
                f"launcher {launcher!r}: choose from {', '.join(manifests.LAUNCHERS)}"
            )
        self.launcher = launcher
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.group, self.version, self.plural = manifests.api_of(launcher)
        self.poll_s = poll_s
        self.watch_timeout_s = watch_timeout_s
        self.sink = sink or (lambda line: print(f"[chief] {line}", flush=True))
        self._phases: dict[str, str] = {}
        self._streamer: LogStreamer | None = None

    # --- API calls ---------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        name = body["metadata"]["name"]
        try:
            created = self.custom.create_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, body
            )
            log.info("created %s %s/%s", body["kind"], self.namespace, name)
            return created
        except ApiException as error:
            if error.status != 409:
                raise PipelineError(
                    self._describe(error, f"create {body['kind']} {name}")
                ) from None
        existing = self.get(name)
        mine = {r.get("uid") for r in body["metadata"].get("ownerReferences", [])}
        theirs = {r.get("uid") for r in existing["metadata"].get("ownerReferences", [])}
        if mine and mine & theirs:
            log.info("%s %s exists and is this task's: following it", body["kind"], name)
            return existing
        raise PipelineError(
            f"{body['kind']} {self.namespace}/{name} already exists and belongs to another task"
        )

    def get(self, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, name
            )
        except ApiException as error:
            if error.status == 404:
                raise PipelineError(
                    f"{self.plural[:-1]} {self.namespace}/{name} was deleted before it ended"
                ) from None
            raise PipelineError(self._describe(error, f"get {name}")) from None

    def delete(self, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                self.group,
                self.version,
                self.namespace,
                self.plural,
                name,
                propagation_policy="Background",
            )
            log.info("deleted %s/%s", self.namespace, name)
            return True
        except ApiException as error:
            if error.status == 404:
                return False
            log.warning("%s", self._describe(error, f"delete {name}"))
            return False

    @staticmethod
    def _describe(error, what: str) -> str:
        import json

        message = error.reason
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(error.body).get("message") or message
        return f"Kubernetes API: {what}: {error.status} {message}"

    # --- following -------------------------------------------------------------------------------

    def _watch(self, name: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Events of the job from ``resource_version`` until the watch times out."""
        from kubernetes import watch

        stream = watch.Watch().stream(
            self.custom.list_namespaced_custom_object,
            self.group,
            self.version,
            self.namespace,
            self.plural,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=self.watch_timeout_s,
            allow_watch_bookmarks=True,
        )
        yield from stream

    def poll_pods(self, name: str) -> list:
        selector = manifests.chief_selector(self.launcher, name)
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        for pod in pods:
            phase = pod.status.phase or "Unknown"
            if self._phases.get(pod.metadata.name) != phase:
                log.info("pod %s: %s", pod.metadata.name, phase)
                self._phases[pod.metadata.name] = phase
            meta = {"labels": pod.metadata.labels, "annotations": pod.metadata.annotations}
            if (
                self._streamer is None
                and phase in ("Running", "Succeeded", "Failed")
                and manifests.is_chief_pod(self.launcher, meta)
            ):
                self._streamer = LogStreamer(
                    self.core, self.namespace, pod.metadata.name, self.sink
                ).start()
        return pods

    def follow(self, obj: dict[str, Any], cancelled: threading.Event | None = None) -> dict:
        """Watch the job until it ends; returns its final object. Raises on failure."""
        from kubernetes.client.exceptions import ApiException

        name = obj["metadata"]["name"]
        version = obj["metadata"].get("resourceVersion", "")
        last_poll = 0.0
        while True:
            if cancelled is not None and cancelled.is_set():
                raise Cancelled("cancelled")
            outcome = job_outcome(self.launcher, obj)
            if outcome is not None:
                return self._finish(obj, outcome)
            if time.monotonic() - last_poll >= self.poll_s:
                self.poll_pods(name)
                last_poll = time.monotonic()
            try:
                for event in self._watch(name, version):
                    kind, item = event["type"], event["object"]
                    if kind == "ERROR":
                        code = (item or {}).get("code")
                        if code == 410:
                            raise _Expired
                        raise PipelineError(f"watch of {name}: {item.get('message', item)}")
                    if kind == "DELETED":
                        raise PipelineError(f"{obj['kind']} {self.namespace}/{name} was deleted")
                    version = item["metadata"].get("resourceVersion", version)
                    if kind == "BOOKMARK":
                        continue
                    obj = item
                    if job_outcome(self.launcher, obj) is not None:
                        break
                    if time.monotonic() - last_poll >= self.poll_s:
                        self.poll_pods(name)
                        last_poll = time.monotonic()
            except _Expired:
                log.info("watch of %s expired (410): listing again", name)
                obj = self.get(name)
                version = obj["metadata"].get("resourceVersion", "")
            except ApiException as error:
                if error.status == 410:
                    obj = self.get(name)
                    version = obj["metadata"].get("resourceVersion", "")
                elif error.status == 404:
                    obj = self.get(name)  # raises the "deleted" error
                else:
                    raise PipelineError(self._describe(error, f"watch {name}")) from None

    def _finish(self, obj: dict[str, Any], outcome: tuple[str, str]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        pods = self.poll_pods(name)
        if self._streamer is not None:
            self._streamer.thread.join(timeout=10)  # the rest of the chief's log
        state, description = outcome
        if state == "succeeded":
            log.info("%s %s finished: %s", obj["kind"], name, description)
            return obj
        failed = [_pod_failure(p) for p in pods if p.status.phase == "Failed"]
        detail = f" (failed pods: {'; '.join(failed)})" if failed else ""
        raise JobFailed(f"{obj['kind']} {self.namespace}/{name} failed: {description}{detail}")


class _Expired(Exception):
    pass


def fetch_model(
    results: str, model_out: str | Path, metric: str = "mAP"
) -> tuple[dict[str, Any], dict[str, float]]:
    """The chief's last checkpoint under ``results`` copied to ``model_out``, with the last
    validated value of ``metric`` (the network's primary metric, the key the training loop
    records it under in status.json)."""
    status = locations.read_status(results)
    if not status or not status.get("last_checkpoint"):
        raise PipelineError(f"{results}: the job ended without a checkpoint in status.json")
    out = Path(model_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    locations.fetch(locations.join(results, status["last_checkpoint"]), out)
    epochs = status.get("epochs") or []
    metrics: dict[str, float] = {"epochs": float(len(epochs))}
    values = [e[metric] for e in epochs if e.get(metric) is not None]
    if values:
        metrics[metric] = float(values[-1])
    if epochs and epochs[-1].get("loss") is not None:
        metrics["loss"] = float(epochs[-1]["loss"])
    return status, metrics


def run(
    launcher: Launcher,
    job: manifests.DistributedTrain,
    *,
    results: str,
    model_out: str | Path,
    metric: str = "mAP",
) -> JobResult:
    """Create the job, follow it, fetch the model; delete the job if we stop early."""
    body = manifests.build(launcher.launcher, job)
    with cancellation() as cancelled:
        created = launcher.create(body)  # nothing of ours to delete if this fails
        try:
            launcher.follow(created, cancelled)
        except JobFailed:
            raise
        except BaseException:  # cancelled, API trouble, a bug: leave no job running
            launcher.delete(job.name)
            raise
    status, metrics = fetch_model(results, model_out, metric)
    return JobResult(job.name, status, Path(model_out), metrics)
