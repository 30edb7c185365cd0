"""Compile the DAGs to KFP IR YAML."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler

from components.secrets import SecretNames
from pipelines import calibration_refresh, train_deploy
from pipelines.targets import Target, load_targets
from tlt_core.errors import PipelineError
from tlt_core.io_utils import atomic_path
from tlt_core.networks import DEFAULT_NETWORK, get_network

PIPELINES = {
    "train_deploy": train_deploy.build,
    "calibration_refresh": calibration_refresh.build,
}


def pipeline_function(
    name: str,
    targets: list[Target],
    secrets: SecretNames | None = None,
    network: str = DEFAULT_NETWORK,
):
    """The pipeline ``name`` for a network of the table (``tlt-<network>-<pipeline>``)."""
    try:
        factory = PIPELINES[name]
    except KeyError:
        raise PipelineError(
            f"unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}"
        ) from None
    return factory(targets, secrets, get_network(network).name)


def compile_pipeline(
    name: str,
    output: str | Path,
    *,
    targets_file: str | Path | None = None,
    secrets: SecretNames | None = None,
    network: str = DEFAULT_NETWORK,
) -> Path:
    """Compile one pipeline for ``network`` to ``output`` (a ``.yaml`` file) atomically."""
    function = pipeline_function(name, load_targets(targets_file), secrets, network)
    output = Path(output)
    with atomic_path(output) as tmp:
        yaml_tmp = tmp.with_suffix(".yaml")
        compiler.Compiler().compile(function, str(yaml_tmp))
        yaml_tmp.replace(tmp)
    return output


def compile_all(
    output_dir: str | Path,
    *,
    targets_file: str | Path | None = None,
    secrets: SecretNames | None = None,
    network: str = DEFAULT_NETWORK,
) -> list[Path]:
    output_dir = Path(output_dir)
    return [
        compile_pipeline(
            name,
            output_dir / f"{name}.yaml",
            targets_file=targets_file,
            secrets=secrets,
            network=network,
        )
        for name in PIPELINES
    ]
