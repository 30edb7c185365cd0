"""The Helm chart charts/tlt-pipelines, rendered by Helm's own engine (helm-python-sdk).

Every rendered manifest is validated against the Kubernetes OpenAPI schemas
(kubernetes-validate); the Argo Events resources, whose CRDs those schemas lack, are checked
structurally, and the Job the Sensor creates is validated as a batch/v1 Job.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "tlt-pipelines"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
NAMESPACE = "kubeflow-user-example-com"
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Not in kubernetes-validate's schemas: Argo Events (checked structurally) and Kubeflow
# Trainer (validated against tests/crd_schemas).
CRD_GROUPS = ("argoproj.io/", "trainer.kubeflow.org/")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
TOKEN_DIR = "/var/run/secrets/kubeflow/pipelines"


def _all_features() -> dict[str, Any]:
    return yaml.safe_load(ALL_FEATURES.read_text())


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values=values, name="tlt", namespace=NAMESPACE, is_install=True)
    documents = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


@pytest.fixture(scope="module", params=["default", "all-features"])
def manifests(request) -> list[dict[str, Any]]:
    return render(None if request.param == "default" else _all_features())


@pytest.fixture(scope="module")
def full() -> list[dict[str, Any]]:
    return render(_all_features())


def _one(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {len(found)} found"
    return found[0]


def _sensor_job(sensor: dict[str, Any]) -> dict[str, Any]:
    (trigger,) = sensor["spec"]["triggers"]
    return trigger["template"]["k8s"]["source"]["resource"]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], list[dict]]]:
    """(where, pod-level spec, containers) of every pod the manifests would run."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        spec = doc.get("spec", {})
        if kind == "CronJob":
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
            yield f"CronJob/{name}", pod, pod["containers"] + pod.get("initContainers", [])
        elif kind in ("Job",):
            pod = spec["template"]["spec"]
            yield f"Job/{name}", pod, pod["containers"] + pod.get("initContainers", [])
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
            pod = spec["template"]["spec"] if kind != "Pod" else spec
            yield f"{kind}/{name}", pod, pod["containers"] + pod.get("initContainers", [])
        elif kind in ("EventSource", "Sensor"):
            template = spec["template"]
            yield f"{kind}/{name}", template, [template["container"]]
            if kind == "Sensor":
                job = _sensor_job(doc)
                pod = job["spec"]["template"]["spec"]
                yield (
                    f"Sensor/{name} Job",
                    pod,
                    pod["containers"] + pod.get("initContainers", []),
                )


# ----------------------------------------------------------------------------------------
# Helm's own checks


@pytest.mark.parametrize("values_file", [None, ALL_FEATURES], ids=["default", "all-features"])
def test_helm_lint_is_clean(values_file):
    values = yaml.safe_load(values_file.read_text()) if values_file else None
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_default_values_pass_the_schema_and_match_chart_yaml():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(None)
        chart.validate_schema(_all_features())
        assert chart.metadata["apiVersion"] == "v2"
        assert chart.schema is not None


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"schedule": 5}, "/schedule"),
        ({"schedule": "every day"}, "/schedule"),
        ({"resources": {"limits": {"cpu": "-1", "memory": "1Gi"}}}, "/resources/limits/cpu"),
        ({"resources": {"requests": {"memory": -5}}}, "/resources/requests/memory"),
        ({"securityContext": {"runAsUser": 0, "runAsGroup": 1, "fsGroup": 1}}, "runAsUser"),
        ({"calibrationRefresh": {"enabled": True}}, "/calibrationRefresh/sourceVersion"),
        ({"secrets": {"s3": {"name": "s3", "accessKey": "AKIA..."}}}, "/secrets/s3"),
        ({"storage": {"publishUri": "/local/path"}}, "/storage/publishUri"),
        (
            {
                "targets": [
                    {
                        "name": "x",
                        "image": "trt:latest",
                        "node_selector": {"kubernetes.io/arch": "amd64"},
                        "precisions": ["fp16"],
                    }
                ]
            },
            "/targets/0/image",
        ),
        (
            {
                "targets": [
                    {
                        "name": "x",
                        "image": "trt:1",
                        "node_selector": {"nvidia.com/gpu.product": "T4"},
                        "precisions": ["fp16"],
                    }
                ]
            },
            "/targets/0/node_selector",
        ),
        ({"gitops": {"webhook": {"port": 70000}}}, "/gitops/webhook/port"),
        ({"unknownKey": True}, "unknownKey"),
        ({"network": "yolo"}, "/network"),
        ({"network": "SSD"}, "/network"),
        # classification reads class folders: a convert spec is a mistake, not ignored.
        ({"network": "classification", "specs": {"convertSpec": "x"}}, "/specs/convertSpec"),
        (
            {"network": "classification", "gitops": {"git": {"convertSpecPath": "c.txt"}}},
            "/gitops/git/convertSpecPath",
        ),
    ],
)
def test_schema_rejects_bad_values(bad, where):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as info:
            chart.validate_schema(bad)
        assert where in str(info.value)
        with pytest.raises(helm.HelmError):  # an install would refuse them too
            chart.render(values=bad, name="tlt", namespace=NAMESPACE)


# ----------------------------------------------------------------------------------------
# Kubernetes validity


def test_every_manifest_validates_against_kubernetes_schemas(manifests):
    checked = 0
    for doc in manifests:
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue  # checked structurally below
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 5


def test_the_job_the_sensor_creates_validates_as_a_job(full):
    job = _sensor_job(_one(full, "Sensor"))
    assert job["metadata"]["generateName"].endswith("-")
    named = {**job, "metadata": {**job["metadata"], "name": "placeholder"}}
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(named, version, strict=True)


def test_standard_labels_and_namespace(manifests):
    for doc in manifests:
        labels = doc["metadata"].get("labels", {})
        for label in STANDARD_LABELS:
            assert label in labels, f"{doc['kind']}/{doc['metadata']['name']}: no {label}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "tlt-pipelines-0.1.0"
        assert doc["metadata"]["namespace"] == NAMESPACE


def test_default_install_runs_no_pods_and_all_features_runs_four_kinds(full):
    assert list(pod_specs(render(None))) == []
    assert sorted(where.split("/")[0] for where, _, _ in pod_specs(full)) == [
        "CronJob",
        "EventSource",
        "Sensor",
        "Sensor",
    ]


# ----------------------------------------------------------------------------------------
# Security


def test_every_pod_is_locked_down(full):
    pods = list(pod_specs(full))
    assert len(pods) == 4
    for where, pod, containers in pods:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] > 0, where
        assert security["seccompProfile"]["type"] == "RuntimeDefault", where
        assert containers, where
        for container in containers:
            what = f"{where} container {container.get('name', '(template)')}"
            csc = container["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, what
            assert csc["readOnlyRootFilesystem"] is True, what
            assert csc["runAsNonRoot"] is True, what
            assert csc.get("privileged", False) is False, what
            assert "ALL" in csc["capabilities"]["drop"], what
            assert not csc["capabilities"].get("add"), what
            assert csc["seccompProfile"]["type"] == "RuntimeDefault", what
            limits = container["resources"]["limits"]
            assert limits["cpu"] and limits["memory"], what
            assert container["resources"]["requests"], what
        assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, where


def test_rbac_is_namespaced_and_minimal(manifests):
    kinds = {doc["kind"] for doc in manifests}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    assert "Secret" not in kinds  # secrets are referenced by name only
    roles = [doc for doc in manifests if doc["kind"] == "Role"]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard {field}"
            if "secrets" in rule["resources"] and "" in rule["apiGroups"]:
                assert set(rule["verbs"]) <= {"get"}, rule
                assert rule.get("resourceNames"), "secret access must name the secrets"
    for binding in (doc for doc in manifests if doc["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        role_names = {role["metadata"]["name"] for role in roles}
        assert binding["roleRef"]["name"] in role_names
        accounts = {doc["metadata"]["name"] for doc in manifests if doc["kind"] == "ServiceAccount"}
        # The trainer Role goes to the account KFP runs the pipeline's pods as (values).
        accounts.add("default-editor")
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
            assert subject["namespace"] == NAMESPACE


def test_kfp_token_is_projected_with_the_pipelines_audience(full):
    submitter = _one(full, "ServiceAccount", "tlt-submitter")
    assert submitter["automountServiceAccountToken"] is False
    for where, pod, containers in pod_specs(full):
        if where.startswith(("EventSource", "Sensor/tlt-train-deploy")) and "Job" not in where:
            continue  # the Argo Events pods use their own identity
        assert pod["serviceAccountName"] == "tlt-submitter", where
        assert pod["automountServiceAccountToken"] is False, where
        (token,) = [v for v in pod["volumes"] if v["name"] == "kfp-token"]
        (source,) = token["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
        assert source["serviceAccountToken"]["expirationSeconds"] == 3600
        submit = next(c for c in containers if c["name"] == "submit")
        mounts = {m["name"]: m["mountPath"] for m in submit["volumeMounts"]}
        assert mounts["kfp-token"] == TOKEN_DIR
        env = {e["name"]: e.get("value") for e in submit["env"]}
        assert env["KF_PIPELINES_SA_TOKEN_PATH"] == f"{TOKEN_DIR}/token"


def test_secret_references_are_names_only(full):
    text = json.dumps(full)
    for value in ("team-s3", "team-model-key"):
        assert value in text  # handed to the submitting pods as TLT_*_SECRET
    for _, _, containers in pod_specs(full):
        for container in containers:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert set(ref) == {"name", "key"}


# ----------------------------------------------------------------------------------------
# Content: specs, targets


def test_spec_configmap_holds_parseable_specs(manifests, tmp_path):
    from tlt_core.networks.ssd.spec import load_experiment
    from tlt_core.spec import load_convert_spec

    specs = _one(manifests, "ConfigMap", "-specs")["data"]
    assert set(specs) == {"ssd_train.txt", "dataset_convert.txt"}
    train = tmp_path / "ssd_train.txt"
    train.write_text(specs["ssd_train.txt"])
    experiment = load_experiment(train)
    assert experiment.class_names
    convert = tmp_path / "dataset_convert.txt"
    convert.write_text(specs["dataset_convert.txt"])
    load_convert_spec(convert)


SHIPPED_SAMPLES = {
    "ssd_train.txt": "ssd_kitti_train.txt",
    "detectnet_v2_train.txt": "detectnet_v2_kitti_train.txt",
    "classification_train.txt": "classification_train.txt",
    "dataset_convert.txt": "kitti_dataset_convert.txt",
}


@pytest.mark.parametrize("shared", [REPO / "specs" / "samples", REPO.parent / "shared" / "specs"])
def test_chart_ships_the_shared_spec_samples(shared):
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside the checkout")
    assert sorted(p.name for p in (CHART / "files" / "specs").iterdir()) == sorted(SHIPPED_SAMPLES)
    for shipped, sample in SHIPPED_SAMPLES.items():
        assert (CHART / "files/specs" / shipped).read_text() == (shared / sample).read_text()


def test_target_matrix_configmap_is_the_pipelines_matrix(manifests, tmp_path):
    from pipelines.targets import parse_targets

    text = _one(manifests, "ConfigMap", "-targets")["data"]["targets.yaml"]
    data = yaml.safe_load(text)
    targets = parse_targets(data, tmp_path / "targets.yaml")
    assert [t.name for t in targets] == ["x86-t4", "x86-a100", "jetson-orin", "jetson-xavier"]
    arch = {t.name: t.node_selector["kubernetes.io/arch"] for t in targets}
    assert arch == {
        "x86-t4": "amd64",
        "x86-a100": "amd64",
        "jetson-orin": "arm64",
        "jetson-xavier": "arm64",
    }
    for target in targets:
        assert set(target.node_selector) - {"kubernetes.io/arch"}, f"{target.name}: no GPU label"
        assert target.tolerations and target.precisions
    # The chart's copy must not drift from the file the pipelines read by default.
    pipelines_file = REPO / "pipelines" / "targets.yaml"
    assert data == yaml.safe_load(pipelines_file.read_text())


# ----------------------------------------------------------------------------------------
# What the pods run: the shell scripts, with `tlt` replaced by a recorder of its argv whose
# argv is then parsed by the real `tlt` argument parser.


def _run_script(container: dict[str, Any], env: dict[str, str], tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    record = tmp_path / "argv.json"
    recorder = bin_dir / "tlt"
    recorder.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        "open(os.environ['ARGV_RECORD'], 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    recorder.chmod(recorder.stat().st_mode | stat.S_IEXEC)
    assert container["command"] == ["/bin/sh", "-c"]
    declared = {e["name"]: e.get("value", "") for e in container["env"] if "value" in e}
    result = subprocess.run(
        ["/bin/sh", "-c", container["args"][0]],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "ARGV_RECORD": str(record),
            **declared,
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    argv = json.loads(record.read_text()) if record.exists() else None
    return result, argv


def _parse_tlt(argv: list[str]):
    from tlt_core.cli import build_parser

    return build_parser().parse_args(argv)


def test_cronjob_submits_calibration_refresh_on_the_schedule(full, tmp_path):
    cron = _one(full, "CronJob")
    assert cron["spec"]["schedule"] == "30 2 * * 1-5"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ml/tlt-core:0.1.0"
    result, argv = _run_script(container, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    args = _parse_tlt(argv)
    assert (args.command, args.action, args.pipeline) == (
        "pipeline",
        "submit",
        "calibration_refresh",
    )
    assert args.host == "https://kubeflow.example.com/pipeline"
    assert args.namespace == NAMESPACE and args.experiment == "tlt-ssd"
    assert args.targets == "/etc/tlt/targets/targets.yaml"
    assert args.source_version == "3f2a9c1d0b7e"
    assert args.new_version.startswith("3f2a9c1d0b7e-cal-") and args.new_version.endswith("Z")
    assert args.publish_uri == "s3://team-models/ssd"
    assert args.calibration_images_uri == "s3://team-data/kitti/cal"


def test_gitops_sensor_submits_train_deploy_for_the_pushed_commit(full, tmp_path):
    source = _one(full, "EventSource")
    sensor = _one(full, "Sensor")
    hook = source["spec"]["webhook"]["push"]
    assert (hook["method"], hook["endpoint"], hook["port"]) == ("POST", "/push", "12000")
    assert hook["authSecret"] == {"name": "webhook-token", "key": "token"}
    (dependency,) = sensor["spec"]["dependencies"]
    assert dependency["eventSourceName"] == source["metadata"]["name"]
    assert dependency["eventName"] in source["spec"]["webhook"]
    filters = {f["path"]: f["value"] for f in dependency["filters"]["data"]}
    assert filters["body.ref"] == ["^refs/heads/release$"]
    assert filters["body.after"] == ["^[0-9a-f]{40}$"]
    # The sensor runs as its own account, allowed to create Jobs only.
    sensor_account = sensor["spec"]["template"]["serviceAccountName"]
    (binding,) = [
        b for b in full if b["kind"] == "RoleBinding" and b["subjects"][0]["name"] == sensor_account
    ]
    role = _one(full, "Role", binding["roleRef"]["name"].rsplit("-", 1)[-1])
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]

    job = _sensor_job(sensor)
    (trigger,) = sensor["spec"]["triggers"]
    sha = "0123456789abcdef0123456789abcdef01234567"
    for parameter in trigger["template"]["k8s"]["parameters"]:
        assert parameter["src"] == {"dependencyName": "push", "dataKey": "body.after"}
        node: Any = job
        for part in parameter["dest"].split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node == ""  # the COMMIT_SHA placeholder the trigger fills in
        parent = job
        for part in parameter["dest"].split(".")[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        assert parent["name"] == "COMMIT_SHA"
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["clone"]
    (submit,) = pod["containers"]
    result, argv = _run_script(submit, {"COMMIT_SHA": sha}, tmp_path)
    assert result.returncode == 0, result.stderr
    args = _parse_tlt(argv)
    assert (args.action, args.pipeline, args.commit) == ("submit", "train_deploy", sha)
    assert args.experiment_spec == "/work/repo/specs/ssd_train.txt"
    assert args.convert_spec == "/work/repo/specs/dataset_convert.txt"
    assert args.dataset_uri == "s3://team-data/kitti"
    assert args.param == ["launcher=trainjob"]  # trainer.launcher of the values
    for index, bad in enumerate(("", "abc", "0123456789abcdef0123456789abcdef0123456; rm -rf /")):
        result, argv = _run_script(submit, {"COMMIT_SHA": bad}, tmp_path / f"bad{index}")
        assert result.returncode == 2 and argv is None, bad


def test_gitops_without_a_repository_submits_the_configmap_specs(tmp_path):
    values = _all_features()
    values["gitops"]["git"] = {"repoUrl": ""}
    docs = render(values)
    job = _sensor_job(_one(docs, "Sensor"))
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    (trigger,) = _one(docs, "Sensor")["spec"]["triggers"]
    assert len(trigger["template"]["k8s"]["parameters"]) == 1
    result, argv = _run_script(pod["containers"][0], {"COMMIT_SHA": "a" * 40}, tmp_path)
    assert result.returncode == 0, result.stderr
    args = _parse_tlt(argv)
    assert args.experiment_spec == "/etc/tlt/specs/ssd_train.txt"
    assert args.commit == "a" * 40


# ----------------------------------------------------------------------------------------
# Issue 16, class 6: namespace everywhere, images by digest, token as a file, egress policy

DIGEST = "sha256:" + "ab" * 32


def test_every_namespaced_object_and_the_sensor_job_name_the_namespace(full):
    assert all(doc["metadata"]["namespace"] == NAMESPACE for doc in full)
    assert _sensor_job(_one(full, "Sensor"))["metadata"]["namespace"] == NAMESPACE


def test_tlt_core_image_by_digest():
    values = _all_features()
    values["images"]["digest"] = DIGEST
    docs = render(values)
    cron = _one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    job = _sensor_job(_one(docs, "Sensor"))["spec"]["template"]["spec"]
    want = f"registry.example.com/ml/tlt-core@{DIGEST}"
    assert cron["containers"][0]["image"] == want
    assert job["containers"][0]["image"] == want


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "ab" * 16, "ab" * 32])
def test_schema_rejects_a_malformed_digest(digest):
    values = _all_features()
    values["images"]["digest"] = digest
    with pytest.raises(helm.HelmError):
        render(values)


def test_git_token_is_mounted_as_a_file_not_an_env_var(full):
    job = _sensor_job(_one(full, "Sensor"))["spec"]["template"]["spec"]
    (clone,) = job["initContainers"]
    env = {e["name"]: e for e in clone["env"]}
    assert "GIT_TOKEN" not in env
    assert env["GIT_TOKEN_FILE"]["value"] == "/var/run/secrets/git/token"
    assert not any("valueFrom" in e for e in clone["env"])
    mount = next(m for m in clone["volumeMounts"] if m["name"] == "git-token")
    assert mount == {"name": "git-token", "mountPath": "/var/run/secrets/git", "readOnly": True}
    volume = next(v for v in job["volumes"] if v["name"] == "git-token")
    assert volume["secret"]["secretName"] == "git-token"
    assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert "$GIT_TOKEN_FILE" in clone["args"][0] and '$GIT_TOKEN"' not in clone["args"][0]
    # Only the submit container mounts no token.
    assert all(m["name"] != "git-token" for m in job["containers"][0]["volumeMounts"])


def test_network_policy_is_off_by_default():
    assert not [d for d in render(None) if d["kind"] == "NetworkPolicy"]


def test_network_policy_allows_dns_kfp_s3_and_git_only(full):
    policy = _one(full, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    rules = spec["egress"]
    ports = [sorted((p["protocol"], p["port"]) for p in rule["ports"]) for rule in rules]
    assert ports == [[("TCP", 53), ("UDP", 53)], [("TCP", 8888)], [("TCP", 443)], [("TCP", 9000)]]
    kfp = rules[1]["to"][0]
    assert kfp["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kubeflow"}
    assert kfp["podSelector"]["matchLabels"] == {"app": "ml-pipeline"}
    cidrs = sorted(rule["to"][0]["ipBlock"]["cidr"] for rule in rules[2:])
    assert cidrs == ["10.20.0.0/24", "140.82.112.0/20"]
    # It selects exactly the pods that submit runs: the CronJob's and the GitOps Job's.
    selector = spec["podSelector"]
    (expression,) = selector["matchExpressions"]
    cron = _one(full, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    job = _sensor_job(_one(full, "Sensor"))["spec"]["template"]["metadata"]
    for pod in (cron, job):
        labels = pod["labels"]
        assert all(labels[k] == v for k, v in selector["matchLabels"].items())
        assert labels["app.kubernetes.io/component"] in expression["values"]


# ----------------------------------------------------------------------------------------
# Distributed training: TrainingRuntime and the task pods' Role


def test_trainer_is_off_by_default():
    docs = render(None)
    assert not [d for d in docs if d["kind"] == "TrainingRuntime"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-trainer")]


def test_training_runtime_validates_and_hands_the_jobset_env_to_tlt(full):
    from tests.crd_validation import assert_valid
    from tlt_core.cluster import tf_config

    runtime = _one(full, "TrainingRuntime")
    assert_valid(runtime)
    assert runtime["metadata"]["name"] == "tlt-train"
    spec = runtime["spec"]["template"]["spec"]
    assert spec["failurePolicy"]["maxRestarts"] == 2
    assert spec["network"]["enableDNSHostnames"] is True
    (node,) = spec["replicatedJobs"]
    assert node["name"] == "node"  # the trainer step Trainer puts numNodes on
    assert node["template"]["spec"]["completionMode"] == "Indexed"
    pod = node["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/ml/tlt-core:0.1.0"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    fields = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert fields == tf_config.DOWNWARD_API
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[tf_config.PORT] == "2222"
    assert container["ports"][0]["containerPort"] == 2222
    # A pod of this runtime, validated as a Kubernetes PodTemplateSpec too.
    template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "x"},
        "template": node["template"]["spec"]["template"],
    }
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(template, version, strict=True)


@pytest.mark.parametrize(
    ("launcher", "group", "resource"),
    [("trainjob", "trainer.kubeflow.org", "trainjobs"), ("tfjob", "kubeflow.org", "tfjobs")],
)
def test_trainer_role_allows_exactly_the_launcher(launcher, group, resource):
    values = _all_features()
    values["trainer"]["launcher"] = launcher
    docs = render(values)
    role = _one(docs, "Role", "-trainer")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        ((group,), (resource,)): {"get", "list", "watch", "create", "delete"},
        (("",), ("pods",)): {"get", "list", "watch"},
        (("",), ("pods/log",)): {"get"},
    }
    binding = _one(docs, "RoleBinding", "-trainer")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "default-editor", "namespace": NAMESPACE}
    ]
    runtimes = [d for d in docs if d["kind"] == "TrainingRuntime"]
    assert len(runtimes) == (1 if launcher == "trainjob" else 0)


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"trainer": {"enabled": True, "launcher": "mpijob"}}, "/trainer/launcher"),
        ({"trainer": {"enabled": True, "launcher": "tfjob", "port": 80}}, "/trainer/port"),
        ({"trainer": {"enabled": "yes", "launcher": "tfjob"}}, "/trainer/enabled"),
    ],
)
def test_schema_rejects_bad_trainer_values(bad, where):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as info:
        chart.validate_schema(bad)
    assert where in str(info.value)


# ----------------------------------------------------------------------------------------
# The network: every submit passes it, the specs are that network's


def _network_values(network: str) -> dict[str, Any]:
    values = _all_features()
    values["network"] = network
    if network == "classification":
        del values["specs"]["convertSpec"]  # the schema refuses one with classification
    return values


@pytest.fixture(scope="module")
def pipeline_inputs(tmp_path_factory):
    """(network, pipeline) -> the compiled pipeline's root inputs: {name: required}."""
    from pipelines.compile import compile_pipeline

    cache: dict[tuple[str, str], dict[str, bool]] = {}

    def inputs(network: str, pipeline: str) -> dict[str, bool]:
        if (network, pipeline) not in cache:
            out = tmp_path_factory.mktemp("ir") / f"{pipeline}.yaml"
            compile_pipeline(pipeline, out, network=network)
            spec = next(yaml.safe_load_all(out.read_text()))
            assert spec["pipelineInfo"]["name"] == f"tlt-{network}-{pipeline}".replace("_", "-")
            declared = spec["root"]["inputDefinitions"]["parameters"]
            cache[(network, pipeline)] = {
                name: not d.get("isOptional", False) for name, d in declared.items()
            }
        return cache[(network, pipeline)]

    return inputs


def _run_arguments(args, spec_files: dict[str, str], tmp_path: Path) -> dict:
    """The run's arguments `tlt pipeline submit` would send, its spec paths (in the pod)
    read from ``spec_files`` (path -> text)."""
    from tlt_core.cli.pipeline import _arguments

    local = tmp_path / "pod-files"
    local.mkdir(exist_ok=True)
    for name in ("experiment_spec", "convert_spec", "retrain_spec"):
        path = getattr(args, name)
        if path is not None:
            copy = local / name
            copy.write_text(spec_files[path])
            setattr(args, name, str(copy))
    return _arguments(args)


def _assert_fits(arguments: dict, inputs: dict[str, bool]) -> None:
    """Every argument is an input of the pipeline and every required input is given (KFP
    fails a run whose arguments do not match its root inputs)."""
    assert set(arguments) <= set(inputs), set(arguments) - set(inputs)
    required = {name for name, needed in inputs.items() if needed}
    assert required <= set(arguments), required - set(arguments)


def test_network_enum_is_the_network_table():
    from tlt_core.networks import DEFAULT_NETWORK, NETWORKS

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert sorted(schema["properties"]["network"]["enum"]) == sorted(NETWORKS)
    assert yaml.safe_load((CHART / "values.yaml").read_text())["network"] == DEFAULT_NETWORK


@pytest.mark.parametrize("network", ["detectnet_v2", "classification"])
def test_helm_lint_is_clean_for_the_other_networks(network):
    report = helm.lint(str(CHART), _network_values(network), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("network", ["ssd", "detectnet_v2", "classification"])
def test_every_submit_passes_the_network_and_its_specs(network, pipeline_inputs, tmp_path):
    from tlt_core.networks import get_network

    docs = render(_network_values(network))
    for doc in docs:
        if not doc["apiVersion"].startswith(CRD_GROUPS):
            kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    detector = network != "classification"

    # The ConfigMap: the network's spec, parsed by that network's own parser.
    specs = _one(docs, "ConfigMap", "-specs")["data"]
    train_file = f"{network}_train.txt"
    assert set(specs) == ({train_file, "dataset_convert.txt"} if detector else {train_file})
    net = get_network(network)
    spec = net.parse_spec(specs[train_file], path=train_file)
    assert net.training_settings(spec).num_epochs > 0
    mounted = {f"/etc/tlt/specs/{name}": text for name, text in specs.items()}

    # The CronJob: calibration_refresh of that network, with exactly the pipeline's inputs.
    (cron,) = _one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    result, argv = _run_script(cron, {}, tmp_path / "cron")
    assert result.returncode == 0, result.stderr
    args = _parse_tlt(argv)
    assert (args.action, args.pipeline, args.network) == ("submit", "calibration_refresh", network)
    _assert_fits(
        _run_arguments(args, mounted, tmp_path) | {"git_commit": "c"},
        pipeline_inputs(network, "calibration_refresh"),
    )

    # The GitOps Job, with the repository's specs and with the ConfigMap's.
    sha = "b" * 40
    for repo in ("https://github.com/example/tlt-specs.git", ""):
        values = _network_values(network)
        values["gitops"]["git"]["repoUrl"] = repo
        (submit,) = _sensor_job(_one(render(values), "Sensor"))["spec"]["template"]["spec"][
            "containers"
        ]
        result, argv = _run_script(submit, {"COMMIT_SHA": sha}, tmp_path / f"git{bool(repo)}")
        assert result.returncode == 0, result.stderr
        args = _parse_tlt(argv)
        assert (args.action, args.pipeline, args.network) == ("submit", "train_deploy", network)
        specs_dir = "/work/repo/specs" if repo else "/etc/tlt/specs"
        assert args.experiment_spec == f"{specs_dir}/{train_file}"
        want_convert = f"{specs_dir}/dataset_convert.txt" if detector else None
        assert args.convert_spec == want_convert
        assert args.dataset_uri == "s3://team-data/kitti"
        files = mounted | {f"/work/repo/specs/{name}": text for name, text in specs.items()}
        arguments = _run_arguments(args, files, tmp_path) | {"git_commit": sha}
        arguments["model_version"] = sha[:12]
        _assert_fits(arguments, pipeline_inputs(network, "train_deploy"))


def test_gitops_spec_paths_of_the_values_are_kept(tmp_path):
    values = _network_values("detectnet_v2")
    values["gitops"]["git"].update(
        {"experimentSpecPath": "dnv2/train.txt", "convertSpecPath": "dnv2/convert.txt"}
    )
    (submit,) = _sensor_job(_one(render(values), "Sensor"))["spec"]["template"]["spec"][
        "containers"
    ]
    result, argv = _run_script(submit, {"COMMIT_SHA": "c" * 40}, tmp_path)
    assert result.returncode == 0, result.stderr
    args = _parse_tlt(argv)
    assert args.network == "detectnet_v2"
    assert args.experiment_spec == "/work/repo/dnv2/train.txt"
    assert args.convert_spec == "/work/repo/dnv2/convert.txt"


@pytest.mark.parametrize(
    ("network", "sample", "section"),
    [
        ("detectnet_v2", "ssd_kitti_train.txt", "bbox_rasterizer_config"),
        ("classification", "detectnet_v2_kitti_train.txt", "train_config"),
        ("ssd", "classification_train.txt", "ssd_config"),
    ],
)
def test_a_spec_of_another_network_fails_rendering(network, sample, section):
    values = _network_values(network)
    values["specs"]["experimentSpec"] = (REPO / "specs" / "samples" / sample).read_text()
    with pytest.raises(helm.HelmError) as info:
        render(values)
    message = str(info.value)
    assert f"specs.experimentSpec: not a {network} experiment spec" in message
    assert f"no {section} section" in message
    # A comment naming the section does not make it one.
    values["specs"]["experimentSpec"] = f"# {section} {{\n" + values["specs"]["experimentSpec"]
    with pytest.raises(helm.HelmError):
        render(values)


def test_a_classification_convert_spec_fails_rendering_by_the_schema():
    values = _network_values("classification")
    values["specs"]["convertSpec"] = _all_features()["specs"]["convertSpec"]
    with pytest.raises(helm.HelmError) as info:
        render(values)
    assert "/specs/convertSpec" in str(info.value)
