"""`tlt pipeline compile`, then the compiled train task's executor run as a KFP pod runs it
(its container command, env and platform config) with ``workers: 4``: it creates a TrainJob
(or TFJob) on the loopback fake Kubernetes API that validates against the CRD schema, and
ends with the chief's model as its output artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.crd_validation import assert_valid, errors
from tests.k8s_api_server import fake_api_server
from tests.test_cluster_launcher import success_condition, write_chief_results
from tlt_core.cluster import manifests, tf_config
from tlt_core.cluster import worker as worker_cli
from tlt_core.pipeline_support import primary_metric_name

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "kubeflow-user-example-com"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[dict, dict]:
    from tlt_core.cli import main

    out = tmp_path_factory.mktemp("ir")
    assert main(["pipeline", "compile", "--pipeline", "train_deploy", "-o", str(out)]) == 0
    spec, platform = list(yaml.safe_load_all((out / "train_deploy.yaml").read_text()))
    return spec, platform


def _executor(compiled, task_name: str):
    spec, platform = compiled
    tasks = spec["root"]["dag"]["tasks"]
    label = spec["components"][tasks[task_name]["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][label]["container"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][label]
    return tasks[task_name], container, k8s


def test_pipeline_exposes_the_distributed_parameters(compiled):
    spec, _ = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["workers"]["defaultValue"] == 1
    assert parameters["gpus_per_worker"]["defaultValue"] == 1
    assert parameters["launcher"]["defaultValue"] == "trainjob"
    for name in ("train", "retrain"):
        task, container, k8s = _executor(compiled, name)
        wired = task["inputs"]["parameters"]
        for parameter in ("workers", "gpus_per_worker", "launcher"):
            assert wired[parameter] == {"componentInputParameter": parameter}, name
        fields = {f["name"]: f["fieldPath"] for f in k8s["fieldPathAsEnv"]}
        assert fields == {
            "TLT_POD_NAME": "metadata.name",
            "TLT_POD_UID": "metadata.uid",
            "TLT_POD_NAMESPACE": "metadata.namespace",
        }
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["TLT_WORKER_IMAGE"] == container["image"]


def _kubeconfig(path: Path, host: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": host}}],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return path


def _executor_input(tmp_path: Path, parameters: dict) -> tuple[dict, Path]:
    outputs = tmp_path / "outputs"
    model_uri = tmp_path / "pipeline-root" / "train" / "model"
    artifacts = {
        "model": ("system.Model", model_uri),
        "metrics": ("system.Metrics", outputs / "metrics"),
    }
    return (
        {
            "inputs": {
                "parameterValues": parameters,
                "artifacts": {
                    "dataset": {
                        "artifacts": [
                            {
                                "name": "dataset",
                                "type": {"schemaTitle": "system.Dataset"},
                                "uri": str(tmp_path / "pipeline-root" / "tfrecords"),
                                "metadata": {},
                            }
                        ]
                    }
                },
            },
            "outputs": {
                "artifacts": {
                    name: {
                        "artifacts": [
                            {
                                "name": name,
                                "type": {"schemaTitle": schema},
                                "uri": str(uri),
                                "metadata": {},
                            }
                        ]
                    }
                    for name, (schema, uri) in artifacts.items()
                },
                "parameters": {"Output": {"outputFile": str(outputs / "Output")}},
                "outputFile": str(outputs / "executor_output.json"),
            },
        },
        model_uri,
    )


@pytest.mark.parametrize(
    ("launcher", "network"),
    [("trainjob", "ssd"), ("tfjob", "detectnet_v2"), ("trainjob", "classification")],
)
def test_compiled_train_task_with_4_workers_creates_a_valid_job(
    compiled, launcher, network, tmp_path
):
    _, container, k8s = _executor(compiled, "train")
    executor_input, model_uri = _executor_input(
        tmp_path,
        {
            "experiment_spec": "ssd_config { arch: 'resnet' }\n",
            "network": network,
            "workers": 4,
            "gpus_per_worker": 2,
            "launcher": launcher,
            "validation_fold": 0,
            "use_amp": False,
            "gpus": 1,
        },
    )
    results = Path(str(model_uri) + "-distributed") / "results"
    plural = manifests.api_of(launcher)[2]
    created: dict = {}

    with fake_api_server() as (cluster, api):
        host = api.configuration.host

        def controller():
            cluster.wait_for(lambda: any(k[0] == plural for k in cluster.objects), timeout=120)
            ((key, obj),) = [(k, v) for k, v in cluster.objects.items() if k[0] == plural]
            created.update(json.loads(json.dumps(obj)))
            write_chief_results(results, b"chief-model", primary_metric_name(network))
            cluster.update_status(plural, key[1], key[2], success_condition(launcher))

        thread = threading.Thread(target=controller, daemon=True)
        thread.start()
        # The pod's environment: the container's env, the platform's fieldPath and Secret
        # env (values as the kubelet would fill them), and a kubeconfig for the fake API.
        env = {e["name"]: e["value"] for e in container["env"]}
        env.update(
            {
                "TLT_POD_NAME": "tlt-train-deploy-abc-system-container-impl-123",
                "TLT_POD_UID": "0f0e0d0c-0000-4000-8000-000000000001",
                "TLT_POD_NAMESPACE": NAMESPACE,
                "TLT_MODEL_KEY": "key",
                "AWS_ACCESS_KEY_ID": "a",
                "AWS_SECRET_ACCESS_KEY": "b",
                "S3_ENDPOINT_URL": "http://127.0.0.1:1",
                "KUBECONFIG": str(_kubeconfig(tmp_path / "kubeconfig", host)),
            }
        )
        assert {f["name"] for f in k8s["fieldPathAsEnv"]} <= set(env)
        argv = [
            a.replace("{{$}}", json.dumps(executor_input))
            for a in [*container["command"], *container["args"]]
        ]
        argv = [sys.executable if a == "python3" else a for a in argv]
        shell = argv[2].replace("python3 -m", f"{sys.executable} -m")
        result = subprocess.run(
            [argv[0], argv[1], shell, *argv[3:]],
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        thread.join(10)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_valid(created)
    assert Path(model_uri).read_bytes() == b"chief-model"
    output = json.loads((tmp_path / "outputs" / "executor_output.json").read_text())
    assert output["parameterValues"]["Output"] == pytest.approx(0.61)
    meta = created["metadata"]
    assert meta["namespace"] == NAMESPACE
    assert meta["ownerReferences"][0]["uid"] == "0f0e0d0c-0000-4000-8000-000000000001"
    image = "ghcr.io/tlt-pipelines/tlt-core:0.1.0"
    if launcher == "trainjob":
        trainer = created["spec"]["trainer"]
        assert trainer["numNodes"] == 4 and trainer["image"] == image
        assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "2"
        assert created["spec"]["runtimeRef"]["name"] == manifests.DEFAULT_RUNTIME
        env_list = trainer["env"]
        args = trainer["args"]
    else:
        worker = created["spec"]["tfReplicaSpecs"]["Worker"]
        assert worker["replicas"] == 4
        pod = worker["template"]["spec"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        (box,) = pod["containers"]
        assert box["name"] == "tensorflow" and box["image"] == image
        assert box["resources"]["limits"]["nvidia.com/gpu"] == "2"
        env_list = box["env"]
        args = box["args"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env_list if "valueFrom" in e}
    assert refs["TLT_MODEL_KEY"] == {"name": "tlt-model-key", "key": "key"}
    assert refs["AWS_ACCESS_KEY_ID"] == {"name": "tlt-s3-credentials", "key": "access_key"}
    assert not any("value" in e and e["name"].startswith(("AWS_", "TLT_MODEL")) for e in env_list)
    assert args[args.index("--results") + 1] == str(results)
    assert args[args.index("--gpus") + 1] == "2"
    # The workers run the task's network on the data step's output, named --dataset.
    assert "--tfrecords" not in args
    parsed = worker_cli.parse_args(args)
    assert parsed.network == network
    assert parsed.dataset == str(tmp_path / "pipeline-root" / "tfrecords")


def _job(**changes) -> manifests.DistributedTrain:
    base = dict(
        name="tlt-train-0123456789ab",
        namespace=NAMESPACE,
        image="registry.example.com/ml/tlt-core:0.1.0",
        workers=4,
        worker_args=["--dataset", "s3://b/t", "--spec", "s3://b/s", "--results", "s3://b/r"],
        owner=manifests.OwnerPod("p", "u"),
    )
    base.update(changes)
    return manifests.DistributedTrain(**base)


@pytest.mark.parametrize("launcher", manifests.LAUNCHERS)
@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_manifests_validate_for_any_gpu_count(launcher, gpus):
    assert_valid(manifests.build(launcher, _job(gpus_per_worker=gpus, node_selector={"a": "b"})))


def test_schemas_catch_what_the_api_server_would_refuse():
    job = manifests.trainjob(_job())
    job["spec"]["trainer"]["numNodes"] = "4"
    job["spec"]["trainer"]["nodes"] = 4
    del job["spec"]["runtimeRef"]
    found = "\n".join(errors(job))
    assert "spec/trainer/numNodes: '4' is not of type 'integer'" in found
    assert "'nodes' was unexpected" in found
    assert "'runtimeRef' is a required property" in found
    tf = manifests.tfjob(_job())
    tf["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"
    ] = "2222"
    assert any("containerPort" in line for line in errors(tf))


def test_trainjob_env_is_what_the_tf_config_derivation_reads():
    trainer = manifests.trainjob(_job())["spec"]["trainer"]
    env = {e["name"]: e.get("value") for e in trainer["env"]}
    assert env[tf_config.NUM_WORKERS] == "4"
    assert trainer["command"] == ["python3", "-m", "tlt_core.cluster.worker"]
