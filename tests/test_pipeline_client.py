"""``tlt pipeline submit|schedule`` through the real kfp SDK against a fake KFP API server.

The server (``tests/kfp_api_server.py``) is a protocol-level fake of the KFP v2beta1 REST
API on 127.0.0.1: it records what the SDK sends, so these tests check the requests the
CLI makes (experiment, run name, inline IR, parameters, cron trigger) and how it reports a
missing or failing server. It runs nothing; the pipelines themselves are tested elsewhere.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from kfp_api_server import API, FakeKfpApi

from components.secrets import SecretNames
from pipelines.compile import compile_pipeline
from tlt_core.cli import main
from tlt_core.data.sample import sample_convert_spec
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Values of secrets in the submitting shell: none may reach the API server.
SECRET_ENV = {
    "TLT_MODEL_KEY": "model-key-must-not-leak",
    "AWS_ACCESS_KEY_ID": "access-key-must-not-leak",
    "AWS_SECRET_ACCESS_KEY": "secret-key-must-not-leak",
}
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ [\w.]+: ")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No kfp context file, endpoint or token from this machine; secrets in the env."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
        "KFP_TOKEN",
        "TLT_MODEL_KEY_SECRET",
        "TLT_S3_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def api():
    with FakeKfpApi() as server:
        yield server


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("specs")
    experiment = root / "ssd_train.txt"
    experiment.write_text(sample_experiment_spec("/data/kitti"))
    convert = root / "convert.txt"
    convert.write_text(sample_convert_spec("/data/kitti"))
    return {"experiment": experiment, "convert": convert}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The IR the CLI must send: (PipelineSpec, PlatformSpec) per pipeline, default secrets."""
    out = tmp_path_factory.mktemp("ir")
    documents = {}
    for name in ("train_deploy", "calibration_refresh"):
        path = compile_pipeline(name, out / f"{name}.yaml", secrets=SecretNames())
        spec, platform = yaml.safe_load_all(path.read_text())
        documents[name] = (
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec()),
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec()),
        )
    return documents


def tlt(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["pipeline", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def submit_args(host: str, specs: dict[str, Path], *extra: str) -> list[str]:
    return [
        "submit",
        "--host",
        host,
        "--experiment-spec",
        str(specs["experiment"]),
        "--convert-spec",
        str(specs["convert"]),
        "--dataset",
        "s3://datasets/kitti",
        "--publish",
        "s3://models/ssd",
        *extra,
    ]


CALIBRATION_ARGS = (
    "--publish",
    "s3://models/ssd",
    "--source-version",
    "0123456789ab",
    "--new-version",
    "0123456789ab-cal",
    "--calibration-images",
    "s3://datasets/fresh",
)


def schedule_args(host: str, cron: str, *extra: str) -> list[str]:
    return ["schedule", "--host", host, "--cron", cron, *CALIBRATION_ARGS, *extra]


def the_error(err: str) -> str:
    """The one error line; everything else on stderr must be a log record."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("tlt: ")]
    assert len(errors) == 1, err
    others = [line for line in err.splitlines() if line and not line.startswith("tlt: ")]
    assert all(LOG_LINE.match(line) for line in others), others
    return errors[0]


def only_request(api: FakeKfpApi, method: str, path: str) -> dict:
    requests = api.find(method, path)
    assert len(requests) == 1, [(r.method, r.path) for r in api.requests]
    return requests[0].body


def secret_names(platform: dict) -> set[str]:
    """Every Secret a task mounts as env in a platform spec dict."""
    names = set()
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor in executors.values():
        for secret in executor.get("secretAsEnv", []):
            names.add(secret["secretName"])
    return names


def assert_no_secret_sent(api: FakeKfpApi) -> None:
    for request in api.requests:
        seen = request.raw_body.decode() + request.path + repr(request.query)
        for value in SECRET_ENV.values():
            assert value not in seen, (request.method, request.path)


def assert_parameters_fit(spec: dict, parameters: dict) -> None:
    """Every parameter is an input of the pipeline, and every required input is given
    (the backend fails a run whose root inputs do not match)."""
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) <= set(inputs), set(parameters) - set(inputs)
    required = {name for name, declared in inputs.items() if not declared.get("isOptional")}
    assert required <= set(parameters), required - set(parameters)


def all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_submit_train_deploy_sends_the_compiled_run(api, specs, compiled, capsys, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "kfp-bearer-token")
    code, out, err = tlt(capsys, *submit_args(api.url, specs, "--commit", COMMIT))

    assert code == 0, err
    (run_id,) = api.runs
    assert out == f"{run_id}\n"  # only the id on stdout: scripts read it

    # No namespace given: the SDK asks healthz whether the API is multi-user.
    assert api.find("GET", f"{API}/healthz")
    (lookup,) = api.find("GET", f"{API}/experiments")
    assert '"stringValue": "tlt-train-deploy"' in lookup.query["filter"][0]
    assert "namespace" not in lookup.query
    experiment = only_request(api, "POST", f"{API}/experiments")
    assert experiment["display_name"] == "tlt-train-deploy"
    (experiment_id,) = api.experiments

    run = only_request(api, "POST", f"{API}/runs")
    assert run["display_name"] == f"train-deploy-{COMMIT[:12]}"
    assert run["experiment_id"] == experiment_id
    assert "pipeline_version_reference" not in run  # the IR travels inline

    spec, platform = compiled["train_deploy"]
    sent_spec = run["pipeline_spec"]["pipeline_spec"]
    assert sent_spec["pipelineInfo"]["name"] == "tlt-ssd-train-deploy"
    assert json_format.ParseDict(sent_spec, pipeline_spec_pb2.PipelineSpec()) == spec
    sent_platform = run["pipeline_spec"]["platform_spec"]
    assert json_format.ParseDict(sent_platform, pipeline_spec_pb2.PlatformSpec()) == platform
    assert secret_names(sent_platform) == {"tlt-model-key", "tlt-s3-credentials"}

    assert run["runtime_config"]["parameters"] == {
        "dataset_uri": "s3://datasets/kitti",
        "publish_uri": "s3://models/ssd",
        "experiment_spec": specs["experiment"].read_text(),
        "convert_spec": specs["convert"].read_text(),
        "git_commit": COMMIT,
        "model_version": COMMIT[:12],
    }
    assert_parameters_fit(sent_spec, run["runtime_config"]["parameters"])
    assert_no_secret_sent(api)
    # The KFP token is a header, never part of a body.
    assert {r.headers.get("authorization") for r in api.requests} == {"Bearer kfp-bearer-token"}


def test_submit_reuses_the_experiment_in_a_namespace(api, specs, capsys):
    args = submit_args(
        api.url,
        specs,
        "--commit",
        COMMIT,
        "--namespace",
        "team-vision",
        "--experiment",
        "ssd-gitops",
        "--model-version",
        "v7",
        "--model-key-secret",
        "vision-model-key",
    )
    first_code, first_out, first_err = tlt(capsys, *args)
    second_code, second_out, second_err = tlt(capsys, *args)

    assert (first_code, second_code) == (0, 0), first_err + second_err
    assert not api.find("GET", f"{API}/healthz")  # a namespace given: no multi-user probe
    lookups = api.find("GET", f"{API}/experiments")
    assert len(lookups) == 2
    for lookup in lookups:
        assert lookup.query["namespace"] == ["team-vision"]
        assert '"stringValue": "ssd-gitops"' in lookup.query["filter"][0]
    # Created once, then found by name.
    experiment = only_request(api, "POST", f"{API}/experiments")
    assert (experiment["display_name"], experiment["namespace"]) == ("ssd-gitops", "team-vision")
    (experiment_id,) = api.experiments

    runs = [r.body for r in api.find("POST", f"{API}/runs")]
    assert [r["experiment_id"] for r in runs] == [experiment_id, experiment_id]
    assert [first_out, second_out] == [f"{run_id}\n" for run_id in api.runs]
    parameters = runs[0]["runtime_config"]["parameters"]
    assert parameters["model_version"] == "v7"  # given, so not the commit
    assert parameters["git_commit"] == COMMIT
    assert secret_names(runs[0]["pipeline_spec"]["platform_spec"]) == {
        "vision-model-key",
        "tlt-s3-credentials",
    }
    assert_no_secret_sent(api)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_submit_takes_the_commit_from_the_repo(api, specs, tmp_path, capsys):
    repo = tmp_path / "specs-repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "ssd_train.txt").write_text(specs["experiment"].read_text())
    git(repo, "add", "ssd_train.txt")
    git(repo, "commit", "-q", "-m", "specs")
    head = git(repo, "rev-parse", "HEAD")

    code, out, err = tlt(capsys, *submit_args(api.url, specs, "--repo", str(repo)))

    assert code == 0, err
    assert out == f"{next(iter(api.runs))}\n"
    run = only_request(api, "POST", f"{API}/runs")
    assert run["display_name"] == f"train-deploy-{head[:12]}"
    assert run["runtime_config"]["parameters"]["git_commit"] == head
    assert run["runtime_config"]["parameters"]["model_version"] == head[:12]


def test_submit_outside_a_git_checkout_fails_before_any_request(api, specs, tmp_path, capsys):
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()

    code, out, err = tlt(capsys, *submit_args(api.url, specs, "--repo", str(not_a_repo)))

    assert code == 8
    assert out == ""
    line = the_error(err)
    assert str(not_a_repo) in line and "--commit" in line
    assert api.requests == []


def test_schedule_registers_a_cron_recurring_run(api, compiled, capsys):
    code, out, err = tlt(capsys, *schedule_args(api.url, "0 0 2 * * *"))

    assert code == 0, err
    (recurring_run_id,) = api.recurring_runs
    assert out == f"{recurring_run_id}\n"
    experiment = only_request(api, "POST", f"{API}/experiments")
    assert experiment["display_name"] == "tlt-calibration-refresh"
    (experiment_id,) = api.experiments

    job = only_request(api, "POST", f"{API}/recurringruns")
    assert job["experiment_id"] == experiment_id
    assert job["display_name"] == "calibration-refresh-schedule"
    assert job["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert int(job["max_concurrency"]) == 1
    assert job["no_catchup"] is True
    assert job["mode"] == "ENABLE"
    assert job["runtime_config"]["parameters"] == {
        "publish_uri": "s3://models/ssd",
        "source_version": "0123456789ab",
        "new_version": "0123456789ab-cal",
        "calibration_images_uri": "s3://datasets/fresh",
    }

    sent_spec = job["pipeline_spec"]["pipeline_spec"]
    assert sent_spec["pipelineInfo"]["name"] == "tlt-ssd-calibration-refresh"
    assert_parameters_fit(sent_spec, job["runtime_config"]["parameters"])
    spec, platform = compiled["calibration_refresh"]
    assert json_format.ParseDict(sent_spec, pipeline_spec_pb2.PipelineSpec()) == spec
    sent_platform = job["pipeline_spec"]["platform_spec"]
    assert json_format.ParseDict(sent_platform, pipeline_spec_pb2.PlatformSpec()) == platform
    tasks = all_tasks(sent_spec)
    assert tasks
    for name, task in tasks.items():
        assert not task.get("cachingOptions", {}).get("enableCache", False), name
    assert_no_secret_sent(api)


def test_submit_calibration_refresh_run(api, compiled, capsys):
    """What the chart's CronJob runs: a one-off calibration_refresh run."""
    code, out, err = tlt(
        capsys,
        "submit",
        "--host",
        api.url,
        "--pipeline",
        "calibration_refresh",
        "--commit",
        COMMIT,
        *CALIBRATION_ARGS,
    )

    assert code == 0, err
    assert out == f"{next(iter(api.runs))}\n"
    assert only_request(api, "POST", f"{API}/experiments")["display_name"] == (
        "tlt-calibration-refresh"
    )
    run = only_request(api, "POST", f"{API}/runs")
    # A refresh reruns the same commit every night: its name also carries the UTC time.
    assert re.fullmatch(rf"calibration-refresh-{COMMIT[:12]}-\d{{8}}-\d{{6}}", run["display_name"])
    sent_spec = run["pipeline_spec"]["pipeline_spec"]
    assert (
        json_format.ParseDict(sent_spec, pipeline_spec_pb2.PipelineSpec())
        == (compiled["calibration_refresh"][0])
    )
    parameters = run["runtime_config"]["parameters"]
    assert parameters["git_commit"] == COMMIT
    assert "model_version" not in parameters  # not an input of this pipeline
    assert_parameters_fit(sent_spec, parameters)
    for name, task in all_tasks(sent_spec).items():
        assert not task.get("cachingOptions", {}).get("enableCache", False), name
    assert_no_secret_sent(api)


def test_schedule_rejects_a_five_field_cron_without_a_request(api, capsys):
    code, out, err = tlt(capsys, *schedule_args(api.url, "0 2 * * *"))

    assert code == 2
    assert out == ""
    assert "6 fields" in the_error(err)
    assert api.requests == []


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "command", [["submit"], ["submit", "--namespace", "team-vision"], ["schedule"]]
)
def test_unreachable_server_is_one_line(specs, capsys, command):
    host = f"http://127.0.0.1:{free_port()}"
    if command[0] == "submit":
        args = submit_args(host, specs, "--commit", COMMIT, *command[1:])
    else:
        args = schedule_args(host, "0 0 2 * * *")

    code, out, err = tlt(capsys, *args)

    assert code == 8
    assert out == ""
    line = the_error(err)
    assert line.startswith(f"tlt: error: {host}: ")
    assert "connection refused" in line.lower()


def test_server_error_on_runs_is_one_line_naming_the_host(api, specs, capsys):
    api.fail("POST", f"{API}/runs", 500, "database is locked")

    code, out, err = tlt(capsys, *submit_args(api.url, specs, "--commit", COMMIT))

    assert code == 8
    assert out == ""
    assert the_error(err) == (
        f"tlt: error: {api.url}: submitting train_deploy failed: "
        "HTTP 500 Internal Server Error: database is locked"
    )
    assert api.find("POST", f"{API}/runs")  # it did get that far
