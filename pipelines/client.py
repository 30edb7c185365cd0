"""Submit runs and recurring runs to a Kubeflow Pipelines endpoint (``kfp.Client``).

The SDK is pinned (pyproject.toml: ``kfp>=2.9,<2.18``) to the KFP 2.x backends this project
is deployed with; the IR it compiles is the v2 pipeline spec those backends accept.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from components.secrets import SecretNames
from pipelines.compile import compile_pipeline
from pipelines.cron import validate_cron
from tlt_core.errors import PipelineError
from tlt_core.networks import DEFAULT_NETWORK

log = logging.getLogger(__name__)


def git_commit(repo_dir: str | Path = ".") -> str:
    """The commit the specs come from: what a GitOps job submits for."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        raise PipelineError(f"{repo_dir}: not a git checkout; pass --commit explicitly") from None
    return out.stdout.strip()


def run_name(pipeline: str, commit: str) -> str:
    """``train-deploy-<sha12>``; a refresh also gets the UTC time (it reruns one commit)."""
    name = f"{pipeline.replace('_', '-')}-{commit[:12]}"
    if pipeline == "calibration_refresh":
        name += time.strftime("-%Y%m%d-%H%M%S", time.gmtime())
    return name


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK prints UI links to stdout, where scripts read the run id: log them instead.
    Also drop the FutureWarning every ``kfp.Client()`` emits."""
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.filterwarnings("ignore", "This client only works", FutureWarning)
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip():
                log.info("kfp: %s", line.strip())


def _describe(error: Exception) -> str:
    """One line for an SDK error (``ApiException`` text spans lines and dumps headers)."""
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError

    text = str(error)
    if isinstance(error, MaxRetryError):  # the pool's text repeats the host and query
        text = str(error.reason)
    if isinstance(error, ApiException) and error.status:
        text = f"HTTP {error.status} {error.reason}"
        try:
            message = json.loads(error.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = error.body if isinstance(error.body, str) else ""
        if message:
            text += f": {message}"
    return " ".join(text.split())


def connect(host: str, namespace: str | None = None, token: str | None = None):
    import kfp

    try:
        with _quiet_sdk():
            return kfp.Client(host=host, namespace=namespace, existing_token=token)
    except Exception as error:  # kfp raises plain exceptions for connection problems
        raise PipelineError(f"{host}: cannot reach the KFP API: {_describe(error)}") from None


def _caching(pipeline: str) -> bool | None:
    """The SDK's run-wide caching override. None keeps the per-task settings compiled into
    the IR (True would force caching on for every root task, undoing any task compiled
    with caching off); calibration_refresh must never reuse a cached step, because its
    inputs look the same every night while the images behind them change."""
    return False if pipeline == "calibration_refresh" else None


def _compiled(
    pipeline: str,
    targets_file: str | Path | None,
    secrets: SecretNames | None,
    workdir: Path,
    network: str,
) -> Path:
    return compile_pipeline(
        pipeline,
        workdir / f"{pipeline}.yaml",
        targets_file=targets_file,
        secrets=secrets,
        network=network,
    )


def submit(
    host: str,
    pipeline: str,
    arguments: dict,
    *,
    commit: str,
    experiment: str | None = None,
    namespace: str | None = None,
    token: str | None = None,
    targets_file: str | Path | None = None,
    secrets: SecretNames | None = None,
    network: str = DEFAULT_NETWORK,
) -> str:
    """Compile (for ``network``: ``tlt-<network>-<pipeline>``) and submit one run; returns
    the run id."""
    client = connect(host, namespace, token)
    with tempfile.TemporaryDirectory() as tmp:
        package = _compiled(pipeline, targets_file, secrets, Path(tmp), network)
        try:
            with _quiet_sdk():
                run = client.create_run_from_pipeline_package(
                    str(package),
                    arguments=arguments,
                    run_name=run_name(pipeline, commit),
                    experiment_name=experiment or f"tlt-{pipeline.replace('_', '-')}",
                    namespace=namespace,
                    enable_caching=_caching(pipeline),
                )
        except Exception as error:
            raise PipelineError(
                f"{host}: submitting {pipeline} failed: {_describe(error)}"
            ) from None
    log.info("submitted %s as run %s", pipeline, run.run_id)
    return run.run_id


def schedule(
    host: str,
    pipeline: str,
    cron: str,
    arguments: dict,
    *,
    job_name: str,
    experiment: str | None = None,
    namespace: str | None = None,
    token: str | None = None,
    targets_file: str | Path | None = None,
    max_concurrency: int = 1,
    secrets: SecretNames | None = None,
    network: str = DEFAULT_NETWORK,
) -> str:
    """Register a recurring run (of the pipeline compiled for ``network``) on a 6-field
    cron; returns the recurring run id."""
    cron = validate_cron(cron)
    client = connect(host, namespace, token)
    with tempfile.TemporaryDirectory() as tmp:
        package = _compiled(pipeline, targets_file, secrets, Path(tmp), network)
        try:
            with _quiet_sdk():
                exp = client.create_experiment(
                    experiment or f"tlt-{pipeline.replace('_', '-')}", namespace=namespace
                )
                job = client.create_recurring_run(
                    experiment_id=exp.experiment_id,
                    job_name=job_name,
                    cron_expression=cron,
                    max_concurrency=max_concurrency,
                    no_catchup=True,
                    pipeline_package_path=str(package),
                    params=arguments,
                    enable_caching=_caching(pipeline),
                )
        except Exception as error:
            raise PipelineError(
                f"{host}: scheduling {pipeline} failed: {_describe(error)}"
            ) from None
    log.info("scheduled %s (%s) as recurring run %s", pipeline, cron, job.recurring_run_id)
    return job.recurring_run_id
