"""The compiled IR of both DAGs: stages, edges, gate, fan-out per target, secrets, caching."""

from pathlib import Path

import pytest
import yaml

from pipelines.compile import compile_all
from pipelines.cron import validate_cron
from pipelines.targets import load_targets, parse_targets
from tlt_core.errors import PipelineError, UsageError

TARGETS = load_targets()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    out = tmp_path_factory.mktemp("ir")
    documents = {}
    for path in compile_all(out):
        pipeline_spec, platform_spec = list(yaml.safe_load_all(path.read_text()))
        documents[path.stem] = (pipeline_spec, platform_spec)
    return documents


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the DAG, nested DAGs (conditions) included, by task name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def executor(spec: dict, platform: dict, task: dict) -> tuple[dict, dict]:
    component = spec["components"][task["componentRef"]["name"]]
    name = component["executorLabel"]
    container = spec["deploymentSpec"]["executors"][name]["container"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].get(name, {})
    return container, k8s


def test_train_deploy_has_every_stage_and_edge(compiled):
    spec, _ = compiled["train_deploy"]
    tasks = all_tasks(spec)
    for stage in (
        "dataset-convert",
        "train",
        "evaluate",
        "prune",
        "retrain",
        "evaluate-2",
        "quality-gate",
        "export",
        "calibrate",
        "publish",
    ):
        assert stage in tasks, stage
    deps = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert deps["train"] == {"dataset-convert"}
    assert deps["prune"] == {"train"}
    assert deps["retrain"] == {"prune", "dataset-convert"}
    assert deps["evaluate-2"] >= {"retrain"}
    assert deps["quality-gate"] == {"evaluate", "evaluate-2"}
    assert deps["calibrate"] == {"export"}
    builds = [name for name in tasks if name.startswith("build-engines")]
    assert deps["publish"] >= set(builds) | {"export", "calibrate"}


def test_gate_condition_wraps_the_deployment(compiled):
    spec, _ = compiled["train_deploy"]
    condition_tasks = [t for t in spec["root"]["dag"]["tasks"].values() if "triggerPolicy" in t]
    assert len(condition_tasks) == 1
    condition = condition_tasks[0]["triggerPolicy"]["condition"]
    assert "quality-gate" in condition and "== 'pass'" in condition
    inner = spec["components"][condition_tasks[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"export", "calibrate", "publish"} <= set(inner)


def test_one_engine_build_per_target_on_its_node_pool(compiled):
    spec, platform = compiled["train_deploy"]
    builds = {
        t["taskInfo"]["name"]: t
        for t in all_tasks(spec).values()
        if t["taskInfo"]["name"].startswith("build-engines-")
    }
    assert sorted(builds) == sorted(f"build-engines-{t.name}" for t in TARGETS)
    for target in TARGETS:
        task = builds[f"build-engines-{target.name}"]
        container, k8s = executor(spec, platform, task)
        assert container["image"] == target.image
        assert container["resources"]["accelerator"]["resourceType"] == target.accelerator_type
        assert container["resources"]["accelerator"]["resourceCount"] == str(
            target.accelerator_count
        )
        assert k8s["nodeSelector"]["labels"] == target.node_selector
        assert k8s["tolerations"] == target.tolerations
        params = task["inputs"]["parameters"]
        assert params["target"]["runtimeValue"]["constant"] == target.name
        assert params["precisions"]["runtimeValue"]["constant"] == list(target.precisions)


def test_secrets_are_env_from_kubernetes_secrets_never_parameters(compiled):
    spec, platform = compiled["train_deploy"]
    tasks = all_tasks(spec)
    for name in ("train", "retrain", "evaluate", "prune", "export"):
        _, k8s = executor(spec, platform, tasks[name])
        envs = {m["envVar"] for s in k8s["secretAsEnv"] for m in s["keyToEnv"]}
        assert "TLT_MODEL_KEY" in envs, name
    for name in ("dataset-convert", "calibrate", "publish"):
        _, k8s = executor(spec, platform, tasks[name])
        envs = {m["envVar"] for s in k8s["secretAsEnv"] for m in s["keyToEnv"]}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= envs, name
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in parameters if "key" in p.lower() or "secret" in p.lower()]


def test_components_do_not_install_kfp_and_use_our_image(compiled):
    spec, _ = compiled["train_deploy"]
    for name, exe in spec["deploymentSpec"]["executors"].items():
        command = " ".join(exe["container"]["command"])
        assert "pip install" not in command, name
        assert exe["container"]["image"].startswith("ghcr.io/tlt-pipelines/"), name


def test_training_requests_a_gpu_and_retries(compiled):
    spec, _ = compiled["train_deploy"]
    tasks = all_tasks(spec)
    container, _ = executor(spec, compiled["train_deploy"][1], tasks["train"])
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert tasks["dataset-convert"]["retryPolicy"]["maxRetryCount"] == 3


def test_calibration_refresh_has_caching_off_and_int8_builds(compiled):
    spec, _ = compiled["calibration_refresh"]
    tasks = all_tasks(spec)
    assert {"fetch-published", "calibrate", "publish"} <= set(tasks)
    for name, task in tasks.items():
        assert not task.get("cachingOptions", {}).get("enableCache", False), name
    builds = [t for t in tasks.values() if t["taskInfo"]["name"].startswith("build-engines-")]
    assert len(builds) == sum("int8" in t.precisions for t in TARGETS)
    for task in builds:
        assert task["inputs"]["parameters"]["precisions"]["runtimeValue"]["constant"] == ["int8"]


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 2 * * *",
        "0 */15 * * * *",
        "0 0 3 * * MON-FRI",
        "@every 24h",
        "@daily",
        "0 0 0 1,15 * ?",
    ],
)
def test_valid_cron(expression):
    assert validate_cron(expression) == expression


@pytest.mark.parametrize(
    "expression",
    [
        "0 2 * * *",
        "60 0 0 * * *",
        "0 0 25 * * *",
        "0 0 0 * * FRI-MON",
        "0 0 0 * 13 *",
        "@every soon",
        "0 0 0 * * * *",
        "0 0/0 0 * * *",
    ],
)
def test_invalid_cron_is_a_one_line_usage_error(expression):
    with pytest.raises(UsageError) as info:
        validate_cron(expression)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"name": "Bad_Name", "image": "a:1", "node_selector": {"kubernetes.io/arch": "amd64"}},
            "DNS-1123",
        ),
        (
            {"name": "t", "image": "repo/img", "node_selector": {"kubernetes.io/arch": "amd64"}},
            "pinned by tag",
        ),
        (
            {"name": "t", "image": "img:latest", "node_selector": {"kubernetes.io/arch": "amd64"}},
            "latest",
        ),
        ({"name": "t", "image": "img:1", "node_selector": {}}, "kubernetes.io/arch"),
        (
            {
                "name": "t",
                "image": "img:1",
                "node_selector": {"kubernetes.io/arch": "arm64"},
                "precisions": ["int4"],
            },
            "int4",
        ),
    ],
)
def test_bad_target_matrix_is_rejected(entry, message):
    with pytest.raises(PipelineError, match=message):
        parse_targets({"targets": [entry]}, Path("targets.yaml"))


def test_every_pipeline_parameter_has_a_description(compiled):
    """The KFP run form shows these: each parameter of each pipeline is described."""
    from pipelines.names import pipeline_name

    for name, (spec, _) in compiled.items():
        assert spec["pipelineInfo"]["name"] == pipeline_name(name)
        assert len(spec["pipelineInfo"].get("description", "")) > 40, name
        parameters = spec["root"]["inputDefinitions"]["parameters"]
        assert parameters, name
        for parameter, definition in parameters.items():
            description = definition.get("description", "").strip()
            assert len(description) > 15, f"{name}: parameter {parameter} has no description"


def test_reports_are_artifacts_the_ui_renders(compiled):
    def outputs(spec, component):
        return {
            name: art["artifactType"]["schemaTitle"]
            for name, art in spec["components"][component]["outputDefinitions"]["artifacts"].items()
        }

    spec, _ = compiled["train_deploy"]
    assert outputs(spec, "comp-evaluate")["report"] == "system.HTML"
    assert outputs(spec, "comp-evaluate")["metrics"] == "system.Metrics"
    assert outputs(spec, "comp-quality-gate")["gate_report"] == "system.Markdown"
    assert outputs(spec, "comp-prune")["prune_report"] == "system.Markdown"
    assert outputs(spec, "comp-build-engines")["engine_report"] == "system.Markdown"
    assert outputs(spec, "comp-run-summary")["summary"] == "system.Markdown"
    tasks = all_tasks(spec)
    assert "publish" in tasks["run-summary"]["dependentTasks"]
    refresh, _ = compiled["calibration_refresh"]
    assert "run-summary" in all_tasks(refresh)


def _graph(document: dict, name: str, default_name: str) -> str:
    """Tasks, components and executors, the pipeline's name (which the run summary is
    given) written as the default network's."""
    parts = {k: document[k] for k in ("components", "deploymentSpec")}
    parts["tasks"] = document["root"]["dag"]["tasks"]
    parts["parameters"] = sorted(document["root"]["inputDefinitions"]["parameters"])
    return yaml.safe_dump(parts).replace(name, default_name)


@pytest.mark.parametrize("network", ["detectnet_v2", "classification"])
def test_every_network_gets_the_same_dags_under_its_own_name(compiled, network, tmp_path):
    """One DAG for every network of the table: compiled for another network, each pipeline
    differs from the default's only in its name, its description, the help naming the
    gate's metric and the default of its ``network`` parameter (no per-network copies)."""
    from pipelines.names import pipeline_name
    from tlt_core.networks import get_network

    metric = get_network(network).primary_metric.name
    for path in compile_all(tmp_path, network=network):
        spec, platform = list(yaml.safe_load_all(path.read_text()))
        default_spec, default_platform = compiled[path.stem]
        assert spec["pipelineInfo"]["name"] == pipeline_name(path.stem, network)
        assert network in spec["pipelineInfo"]["description"]
        parameters = spec["root"]["inputDefinitions"]["parameters"]
        assert parameters["network"]["defaultValue"] == network
        if "min_map" in parameters:
            assert metric in parameters["min_map"]["description"]
        assert platform == default_platform

        default_name = pipeline_name(path.stem)
        assert _graph(spec, pipeline_name(path.stem, network), default_name) == _graph(
            default_spec, default_name, default_name
        ), (network, path.stem)


def test_compiling_for_an_unknown_network_is_a_usage_error(tmp_path):
    from pipelines.compile import compile_pipeline

    with pytest.raises(UsageError, match="unknown network 'yolo'"):
        compile_pipeline("train_deploy", tmp_path / "x.yaml", network="yolo")


def test_int8_mode_per_target_reaches_its_build_with_the_qdq_model(compiled):
    """targets.yaml's int8_mode goes to each target's build; calibrate makes both forms."""
    for pipeline in ("train_deploy", "calibration_refresh"):
        spec, _ = compiled[pipeline]
        tasks = all_tasks(spec)
        by_target = {t.name: t for t in TARGETS}
        for name, task in tasks.items():
            if not task["taskInfo"]["name"].startswith("build-engines-"):
                continue
            target = by_target[task["taskInfo"]["name"].removeprefix("build-engines-")]
            mode = task["inputs"]["parameters"]["int8_mode"]["runtimeValue"]["constant"]
            assert mode == target.int8_mode, name
            source = task["inputs"]["artifacts"]["qdq_model"]["taskOutputArtifact"]
            assert source == {"outputArtifactKey": "qdq_model", "producerTask": "calibrate"}
        published = tasks["publish"]["inputs"]["artifacts"]["qdq_model"]["taskOutputArtifact"]
        assert published["producerTask"] == "calibrate"
    assert {t.int8_mode for t in TARGETS} == {"cache", "qdq"}


def test_int8_mode_is_validated(tmp_path):
    from pipelines.targets import parse_targets
    from tlt_core.errors import PipelineError

    entry = {
        "name": "t",
        "image": "x/y:1",
        "node_selector": {"kubernetes.io/arch": "amd64"},
        "int8_mode": "implicit",
    }
    with pytest.raises(PipelineError, match=r"targets\[t\]\.int8_mode: 'implicit' not in"):
        parse_targets({"targets": [entry]}, tmp_path / "targets.yaml")
    entry["int8_mode"] = "qdq"
    assert parse_targets({"targets": [entry]}, tmp_path / "t.yaml")[0].int8_mode == "qdq"
    del entry["int8_mode"]
    assert parse_targets({"targets": [entry]}, tmp_path / "t.yaml")[0].int8_mode == "cache"
