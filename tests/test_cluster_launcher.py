"""The distributed-training launcher against a loopback fake of the Kubernetes API server
(tests/k8s_api_server.py): success, job failure, cancel, 409, 404, watch expiry; the
manifests it creates validate against the CRD schemas (tests/crd_schemas)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from tests.crd_validation import assert_valid
from tests.k8s_api_server import fake_api_server, pod
from tlt_core.cluster import launcher as launch
from tlt_core.cluster import manifests
from tlt_core.cluster.task import run_distributed_train
from tlt_core.errors import PipelineError

NAMESPACE = "team"
OWNER_UID = "4f1c2d8e-0000-4000-8000-00000000abcd"
SPEC = "ssd_config { arch: 'resnet' }\n"


def task_env(**extra) -> dict[str, str]:
    return {
        launch.POD_NAME_ENV: "train-driver-pod-123",
        launch.POD_UID_ENV: OWNER_UID,
        launch.POD_NAMESPACE_ENV: NAMESPACE,
        launch.IMAGE_ENV: "registry.example.com/ml/tlt-core:0.1.0",
        launch.MODEL_KEY_SECRET_ENV: "team-model-key",
        launch.S3_SECRET_ENV: "team-s3",
        **extra,
    }


def plural_of(kind: str) -> str:
    return manifests.api_of(kind)[2]


def chief_pods(launcher: str, name: str, phase: str, workers: int = 2, exit_code=None):
    if launcher == "trainjob":
        return [
            pod(
                f"{name}-node-0-{i}-x{i}",
                phase,
                {"jobset.sigs.k8s.io/jobset-name": name, "jobset.sigs.k8s.io/job-index": "0"},
                {"batch.kubernetes.io/job-completion-index": str(i)},
                exit_code=exit_code if i == workers - 1 else None,
            )
            for i in range(workers)
        ]
    return [
        pod(
            f"{name}-worker-{i}",
            phase,
            {
                "training.kubeflow.org/job-name": name,
                "training.kubeflow.org/replica-type": "worker",
                "training.kubeflow.org/replica-index": str(i),
            },
            exit_code=exit_code if i == workers - 1 else None,
        )
        for i in range(workers)
    ]


def write_chief_results(
    results: Path, payload: bytes = b"sealed-model", metric: str = "mAP"
) -> None:
    """What the chief's `tlt <network> train -r RESULTS` leaves there (status.json records
    the network's primary metric under its name)."""
    (results / "weights").mkdir(parents=True, exist_ok=True)
    (results / "weights" / "ssd_resnet10_epoch_002.tlt").write_bytes(payload)
    status = {
        "state": "done",
        "num_epochs": 2,
        "last_checkpoint": "weights/ssd_resnet10_epoch_002.tlt",
        "epochs": [
            {"epoch": 1, "loss": 3.0, metric: None},
            {"epoch": 2, "loss": 2.5, metric: 0.61},
        ],
    }
    (results / "status.json").write_text(json.dumps(status))


def success_condition(launcher: str) -> dict:
    kind = launch.SUCCESS[launcher]
    return {
        "conditions": [
            {"type": kind, "status": "True", "reason": "JobsCompleted", "message": "done"}
        ]
    }


class Controller(threading.Thread):
    """Plays the Trainer / Training Operator for one job."""

    def __init__(self, cluster, launcher: str, script):
        super().__init__(daemon=True)
        self.cluster, self.launcher, self.script = cluster, launcher, script
        self.plural = plural_of(launcher)
        self.created: dict | None = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.cluster.wait_for(lambda: any(k[0] == self.plural for k in self.cluster.objects))
            (key,) = [k for k in self.cluster.objects if k[0] == self.plural]
            self.created = json.loads(json.dumps(self.cluster.objects[key]))
            self.script(self, key[2])
        except BaseException as error:  # reported by the test
            self.error = error


def _run(cluster, api, tmp_path, launcher="trainjob", workers=2, env=None):
    model_uri = str(tmp_path / "artifacts" / "train" / "model")
    return run_distributed_train(
        dataset_uri=str(tmp_path / "artifacts" / "tfrecords"),
        spec_text=SPEC,
        model_uri=model_uri,
        model_out=str(tmp_path / "out" / "model"),
        workers=workers,
        gpus_per_worker=2,
        launcher=launcher,
        env=env or task_env(),
        api=api,
        poll_s=0.05,
    )


def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts" / "train" / "model-distributed" / "results"


@pytest.mark.parametrize("launcher", ["trainjob", "tfjob"])
def test_success_streams_the_chief_log_and_passes_its_model_on(launcher, tmp_path, capsys):
    def script(ctl, name):
        ctl.cluster.set_pods(chief_pods(launcher, name, "Pending"))
        ctl.cluster.update_status(ctl.plural, NAMESPACE, name, {"conditions": []})
        ctl.cluster.set_pods(chief_pods(launcher, name, "Running"))
        ctl.cluster.append_log(
            chief_pods(launcher, name, "Running")[0]["metadata"]["name"],
            "epoch 1/2 loss 3.0",
            "epoch 2/2 loss 2.5 mAP 0.61",
            done=True,
        )
        write_chief_results(results_dir(tmp_path))
        ctl.cluster.set_pods(chief_pods(launcher, name, "Succeeded"))
        ctl.cluster.update_status(ctl.plural, NAMESPACE, name, success_condition(launcher))

    with fake_api_server() as (cluster, api):
        controller = Controller(cluster, launcher, script)
        controller.start()
        outcome = _run(cluster, api, tmp_path, launcher)
        controller.join(10)
        assert controller.error is None, controller.error
    assert (tmp_path / "out" / "model").read_bytes() == b"sealed-model"
    assert outcome.metrics == {"epochs": 2.0, "mAP": 0.61, "loss": 2.5}
    assert outcome.model_metadata["workers"] == 2 and outcome.model_metadata["launcher"] == launcher
    printed = capsys.readouterr().out
    assert "[chief] epoch 2/2 loss 2.5 mAP 0.61" in printed
    job = controller.created
    assert_valid(job)
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "train-driver-pod-123", "uid": OWNER_UID}
    ]
    # The spec went where the workers read it; the job is kept (the owner's GC removes it).
    spec_file = tmp_path / "artifacts" / "train" / "model-distributed" / "experiment_spec.txt"
    assert spec_file.read_text() == SPEC
    assert "DELETE" not in {method for method, _ in cluster.requests}


def test_worker_failure_fails_the_task_with_the_reason(tmp_path):
    def script(ctl, name):
        ctl.cluster.set_pods(chief_pods("trainjob", name, "Failed", exit_code=137))
        ctl.cluster.update_status(
            ctl.plural,
            NAMESPACE,
            name,
            {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "JobSetFailed",
                        "message": "jobset tlt failed: node-0 reached its backoff limit",
                    }
                ]
            },
        )

    with fake_api_server() as (cluster, api):
        controller = Controller(cluster, "trainjob", script)
        controller.start()
        with pytest.raises(PipelineError) as info:
            _run(cluster, api, tmp_path)
        controller.join(10)
    message = str(info.value)
    assert "failed: JobSetFailed: jobset tlt failed: node-0 reached its backoff limit" in message
    assert "Error 137" in message and "\n" not in message
    assert cluster.objects  # kept for inspection


def test_cancel_deletes_the_job(tmp_path):
    def script(ctl, name):
        ctl.cluster.set_pods(chief_pods("trainjob", name, "Running"))
        ctl.cluster.update_status(ctl.plural, NAMESPACE, name, {"conditions": []})
        ctl.cluster.wait_for(
            lambda: any(m == "GET" and "/pods" in p for m, p in ctl.cluster.requests)
        )
        os.kill(os.getpid(), signal.SIGTERM)  # what KFP does to a cancelled run's pod

    assert threading.current_thread() is threading.main_thread()
    with fake_api_server() as (cluster, api):
        controller = Controller(cluster, "trainjob", script)
        controller.start()
        with pytest.raises(launch.Cancelled, match="SIGTERM"):
            _run(cluster, api, tmp_path)
        controller.join(10)
        assert controller.error is None
    assert cluster.objects == {}
    assert any(
        m == "DELETE" and f"/trainjobs/{controller.created['metadata']['name']}" in p
        for m, p in cluster.requests
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM)
    )


def _existing(owner_uid: str, name: str) -> dict:
    job = manifests.trainjob(
        manifests.DistributedTrain(
            name=name,
            namespace=NAMESPACE,
            image="x:1",
            workers=2,
            worker_args=[],
            owner=manifests.OwnerPod("other-pod", owner_uid),
        )
    )
    return job


def test_conflict_with_another_tasks_job_is_an_error_and_deletes_nothing(tmp_path):
    name = launch.job_name("train", OWNER_UID)
    with fake_api_server() as (cluster, api):
        cluster.put("trainjobs", _existing("someone-else", name))
        with pytest.raises(PipelineError, match="already exists and belongs to another task"):
            _run(cluster, api, tmp_path)
    assert len(cluster.objects) == 1
    assert [m for m, _ in cluster.requests] == ["POST", "GET"]


def test_conflict_with_our_own_job_follows_it(tmp_path):
    """A retried executor in the same pod finds its job (409) and follows it to the end."""
    name = launch.job_name("train", OWNER_UID)
    with fake_api_server() as (cluster, api):
        cluster.put("trainjobs", _existing(OWNER_UID, name))

        def finish():
            cluster.wait_for(
                lambda: any(m == "GET" and p.endswith(name) for m, p in cluster.requests)
            )
            write_chief_results(results_dir(tmp_path), b"adopted")
            cluster.update_status("trainjobs", NAMESPACE, name, success_condition("trainjob"))

        thread = threading.Thread(target=finish, daemon=True)
        thread.start()
        _run(cluster, api, tmp_path)
        thread.join(10)
    assert (tmp_path / "out" / "model").read_bytes() == b"adopted"
    assert [m for m, _ in cluster.requests][:2] == ["POST", "GET"]


def test_job_deleted_under_us_is_a_clear_error(tmp_path):
    def script(ctl, name):
        ctl.cluster.update_status(ctl.plural, NAMESPACE, name, {"conditions": []})
        ctl.cluster.remove(ctl.plural, NAMESPACE, name)

    with fake_api_server() as (cluster, api):
        controller = Controller(cluster, "trainjob", script)
        controller.start()
        with pytest.raises(PipelineError, match="was deleted"):
            _run(cluster, api, tmp_path)
        controller.join(10)


def test_404_on_get_after_expiry_is_a_clear_error(tmp_path):
    """The watch expired (410) and the re-GET finds nothing (404)."""
    with fake_api_server() as (cluster, api):
        runner = launch.Launcher(api, "trainjob", NAMESPACE, poll_s=0.05, watch_timeout_s=1)
        cluster.expire_before(10**9)
        stale = {"kind": "TrainJob", "metadata": {"name": "gone", "resourceVersion": "5"}}
        with pytest.raises(PipelineError, match="was deleted before it ended"):
            runner.follow(stale)
    assert (
        "GET",
        f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{NAMESPACE}/trainjobs/gone",
    ) in cluster.requests


def test_watch_expiry_is_resumed_from_a_fresh_get(tmp_path):
    def script(ctl, name):
        # The launcher's first watch gets 410 Expired; it must GET and watch again.
        ctl.cluster.wait_for(
            lambda: any(m == "GET" and p.endswith("/" + name) for m, p in ctl.cluster.requests)
        )
        write_chief_results(results_dir(tmp_path))
        ctl.cluster.update_status(ctl.plural, NAMESPACE, name, success_condition("trainjob"))

    with fake_api_server() as (cluster, api):
        cluster.expire_once()
        controller = Controller(cluster, "trainjob", script)
        controller.start()
        outcome = _run(cluster, api, tmp_path)
        controller.join(10)
        assert controller.error is None
    assert outcome.metrics["mAP"] == 0.61
    verbs = [
        "watch" if "watch=" in p else ("get" if "/trainjobs/" in p else m)
        for m, p in cluster.requests
        if "/pods" not in p
    ]
    assert verbs[:4] == ["POST", "watch", "get", "watch"], verbs


def test_unknown_launcher_and_one_worker_are_refused():
    with pytest.raises(PipelineError, match="choose from trainjob, tfjob"):
        launch.Launcher(None, "mpijob", NAMESPACE)
    from tlt_core.errors import UsageError

    with pytest.raises(UsageError, match="at least 2"):
        manifests.trainjob(
            manifests.DistributedTrain(
                name="x", namespace="n", image="i:1", workers=1, worker_args=[]
            )
        )
