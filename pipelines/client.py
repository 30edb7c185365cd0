"""Submit runs and recurring runs to a Kubeflow Pipelines endpoint (``kfp.Client``).

The SDK is pinned to the KFP 2.x backend this project is deployed with (see pyproject.toml);
``submit`` warns when the backend reports another major version.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

from components.secrets import SecretNames
from pipelines.compile import compile_pipeline
from pipelines.cron import validate_cron
from tlt_core.errors import PipelineError

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
    return f"{pipeline.replace('_', '-')}-{commit[:12]}"


def connect(host: str, namespace: str | None = None, token: str | None = None):
    import kfp

    try:
        return kfp.Client(host=host, namespace=namespace, existing_token=token)
    except Exception as error:  # kfp raises plain exceptions for connection problems
        raise PipelineError(f"{host}: cannot reach the KFP API: {error}") from None


def _compiled(
    pipeline: str, targets_file: str | Path | None, secrets: SecretNames | None, workdir: Path
) -> Path:
    return compile_pipeline(
        pipeline, workdir / f"{pipeline}.yaml", targets_file=targets_file, secrets=secrets
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
) -> str:
    """Compile and submit one run; returns the run id."""
    client = connect(host, namespace, token)
    with tempfile.TemporaryDirectory() as tmp:
        package = _compiled(pipeline, targets_file, secrets, Path(tmp))
        try:
            run = client.create_run_from_pipeline_package(
                str(package),
                arguments=arguments,
                run_name=run_name(pipeline, commit),
                experiment_name=experiment or f"tlt-{pipeline.replace('_', '-')}",
                namespace=namespace,
                enable_caching=pipeline != "calibration_refresh",
            )
        except Exception as error:
            raise PipelineError(f"{host}: submitting {pipeline} failed: {error}") from None
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
) -> str:
    """Register a recurring run on a 6-field cron; returns the recurring run id."""
    cron = validate_cron(cron)
    client = connect(host, namespace, token)
    with tempfile.TemporaryDirectory() as tmp:
        package = _compiled(pipeline, targets_file, secrets, Path(tmp))
        try:
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
                enable_caching=pipeline != "calibration_refresh",
            )
        except Exception as error:
            raise PipelineError(f"{host}: scheduling {pipeline} failed: {error}") from None
    log.info("scheduled %s (%s) as recurring run %s", pipeline, cron, job.recurring_run_id)
    return job.recurring_run_id
