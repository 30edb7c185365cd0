"""Run ``train_deploy`` on this machine with ``kfp.local`` (what ``make run`` does).

Every component runs as a subprocess of this Python (``SubprocessRunner(use_venv=False)``):
the same code as in the cluster, without containers. ``network`` picks the entry of the
network table (default SSD). With no dataset given, the network's sample dataset is
generated first (the KITTI sample for the detectors, class folders for classification),
with the network's fast sample spec so the whole DAG finishes in minutes on a CPU.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.local_logs import routed_task_logs
from pipelines.names import pipeline_name
from pipelines.targets import load_targets
from tlt_core.errors import PipelineError
from tlt_core.networks import DEFAULT_NETWORK

log = logging.getLogger(__name__)

SAMPLE_KEY = "tlt-sample-key"  # only for the generated sample data; say so when used
LOCAL_SAMPLE_SIZE = {"num_train": 320, "num_val": 50}  # the KITTI sample
# classification's class folders: 200 training and 40 validation images per class of five
LOCAL_CLASSIFICATION_SAMPLE_SIZE = {"num_train": 200 * 5, "num_val": 40 * 5}


@dataclass
class LocalRunResult:
    output_dir: Path
    publish_dir: Path
    model_version: str
    seconds: float
    network: str = DEFAULT_NETWORK
    manifest: dict | None = None
    gate: str = ""
    files: list[str] = field(default_factory=list)
    stage_timings: list[str] = field(default_factory=list)
    reports: list = field(default_factory=list)  # local_reports.LocalReport under OUT/reports

    def summary(self) -> str:
        lines = [
            f"train_deploy ({self.network}) finished in {self.seconds / 60:.1f} min",
            *self.stage_timings,
        ]
        if self.manifest is None:
            lines.append(f"quality gate did not pass: nothing published ({self.gate})")
            lines.extend(_report_lines(self.reports))
            return "\n".join(lines)
        metric = self.manifest.get("metric", "mAP")
        value = self.manifest.get("metrics", {}).get(metric)
        if value is not None:
            lines.append(f"{metric} of the published (pruned, retrained) model: {value:.4f}")
        lines.append(f"published version {self.model_version} in {self.publish_dir}:")
        lines.extend(f"  {name}" for name in self.files)
        lines.extend(_engine_lines(self.publish_dir))
        lines.extend(_report_lines(self.reports))
        return "\n".join(lines)


def _engine_lines(publish_dir: Path) -> list[str]:
    """One line per engine outcome (built, or skipped/failed for one reason), naming the
    target/precision pairs it applies to: eight engines skipped for want of TensorRT are
    one line, not eight."""
    outcomes: dict[str, list[str]] = {}
    for report in sorted(publish_dir.glob("engines/*/build_report.json")):
        for precision, entry in json.loads(report.read_text()).items():
            state = entry["status"]
            if state != "built":
                state += f" ({entry.get('reason', '')})"
            outcomes.setdefault(state, []).append(f"{report.parent.name}/{precision}")
    return [f"  engines {', '.join(engines)}: {state}" for state, engines in outcomes.items()]


def _sample_inputs(
    output_dir: Path, epochs: int | None, network: str = DEFAULT_NETWORK
) -> dict[str, str]:
    """The DAG's data inputs for the network's sample data (generated once, then reused)
    and its fast sample spec: the whole DAG fits 15 minutes on 2 CPU cores."""
    from tlt_core.networks import get_network

    net = get_network(network)
    if net.sample_task == "detection":
        inputs = _kitti_sample_inputs(output_dir)
        root = Path(inputs.pop("root"))
    else:
        root = _own_sample(output_dir / f"sample-data-{net.sample_task}", network)
        # train/ and val/ class folders; calibration reads val/ class by class.
        inputs = {"dataset_uri": str(root), "calibration_images_uri": str(root / "val")}
    inputs["experiment_spec"] = net.sample_spec(root, fast=True, epochs=epochs)
    return inputs


def _kitti_sample_inputs(output_dir: Path) -> dict[str, str]:
    from tlt_core.data.sample import MANIFEST, sample_convert_spec, sample_paths
    from tlt_core.stages.sample_data import generate

    root = output_dir / "sample-data"
    if (root / MANIFEST).exists():
        log.info("reusing sample data in %s", root)
        data = sample_paths(root)
    else:
        log.info("generating sample data in %s", root)
        data = generate(root, seed=0, **LOCAL_SAMPLE_SIZE)
    return {
        "root": str(data.root),
        "dataset_uri": str(data.train_image_dir.parent),
        "convert_spec": sample_convert_spec(data.root, "random"),
        "calibration_images_uri": str(data.val_image_dir),
    }


def _own_sample(root: Path, network: str) -> Path:
    """A network's own sample dataset (``tlt sample-data --task <its task>``) at ``root``."""
    from tlt_core.data.sample import MANIFEST
    from tlt_core.stages.sample_data import generate_network_sample

    if (root / MANIFEST).exists():
        log.info("reusing sample data in %s", root)
        return root
    log.info("generating sample data in %s", root)
    return generate_network_sample(root, network, seed=0, **LOCAL_CLASSIFICATION_SAMPLE_SIZE).root


def run_local(
    output_dir: Path,
    *,
    key: str | None = None,
    dataset_uri: str | None = None,
    convert_spec: str | None = None,
    experiment_spec: str | None = None,
    calibration_images_uri: str | None = None,
    publish_uri: str | None = None,
    targets_file: str | None = None,
    epochs: int | None = None,
    model_version: str | None = None,
    require_tensorrt: bool = False,
    min_map: float = 0.3,
    max_map_drop: float = 0.1,
    prune_threshold: float = 0.1,
    cal_batches: int = 4,
    cal_batch_size: int = 8,
    verbose: bool = False,
    network: str = DEFAULT_NETWORK,
) -> LocalRunResult:
    """Run ``train_deploy`` for ``network`` (a name of the network table) with kfp.local;
    without ``dataset_uri``, on the network's sample data."""
    from pipelines import train_deploy
    from tlt_core.networks import get_network

    network = get_network(network).name  # an unknown name fails here, before any work
    output_dir = Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    if dataset_uri is None:
        inputs = _sample_inputs(output_dir, epochs, network)
    else:
        if not experiment_spec:
            raise PipelineError("with --dataset, give --experiment-spec too")
        inputs = {
            "dataset_uri": dataset_uri,
            "convert_spec": convert_spec or "",
            "experiment_spec": experiment_spec,
            "calibration_images_uri": calibration_images_uri or "",
        }
    if calibration_images_uri:
        inputs["calibration_images_uri"] = calibration_images_uri
    if not key:
        log.warning("no model key given (-k or TLT_MODEL_KEY): using the sample key %r", SAMPLE_KEY)
        key = SAMPLE_KEY
    publish_uri = publish_uri or str(output_dir / "published")
    model_version = model_version or time.strftime("local-%Y%m%d-%H%M%S")

    os.environ["TLT_MODEL_KEY"] = key  # the component reads it as it would from a Secret
    _init_kfp_local(output_dir)
    pipeline = train_deploy.build(load_targets(targets_file), network=network)
    seconds, stage_timings = _run_pipeline(
        pipeline,
        output_dir,
        verbose=verbose,
        **inputs,
        publish_uri=publish_uri,
        model_version=model_version,
        min_map=min_map,
        max_map_drop=max_map_drop,
        prune_threshold=prune_threshold,
        cal_batches=cal_batches,
        cal_batch_size=cal_batch_size,
        require_tensorrt=require_tensorrt,
        network=network,
    )
    from tlt_core.publish import VersionLocation

    version = VersionLocation(publish_uri, model_version)
    result = LocalRunResult(output_dir, Path(version.uri), model_version, seconds, network)
    result.stage_timings = stage_timings
    result.reports = _collect_reports(output_dir, pipeline_name("train_deploy", network))
    try:
        result.manifest = version.read_manifest()
        result.files = sorted(result.manifest["artifacts"])
    except Exception:
        result.gate = f"see {output_dir / 'logs' / 'quality-gate.log'}"
    return result


def _run_pipeline(
    pipeline, output_dir: Path, *, verbose: bool, **arguments
) -> tuple[float, list[str]]:
    """Run ``pipeline`` (kfp.local) with ``arguments`` and this checkout's commit, each
    task's log routed under ``output_dir/logs``: (seconds, stage timing lines)."""
    start = time.time()
    try:
        with routed_task_logs(output_dir / "logs", verbose=verbose) as run_log:
            pipeline(git_commit=_git_commit(), **arguments)
    except Exception as error:  # kfp.local raises RuntimeError naming the failed task
        raise PipelineError(f"local run failed: {str(error).splitlines()[0]}") from None
    return time.time() - start, run_log.summary_lines()


def _init_kfp_local(output_dir: Path) -> None:
    from kfp import local

    # Locally, images, resources, node selectors and tolerations are not applied: say it
    # once instead of one warning per task.
    log.info("kfp.local: container images, resources and node pools apply on a cluster only")
    warnings.filterwarnings("ignore", message=r".*no effect in the current local runner")
    warnings.filterwarnings("ignore", message=r".*non-Python base image")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(output_dir / "kfp"),
        raise_on_error=True,
    )


@dataclass
class LocalRefreshResult:
    publish_uri: str
    source_version: str
    new_version: str
    seconds: float
    manifest: dict = field(default_factory=dict)
    stage_timings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"calibration_refresh finished in {self.seconds / 60:.1f} min: "
            f"{self.source_version} recalibrated as {self.new_version} in {self.publish_uri}",
            *self.stage_timings,
        ]
        lines.extend(f"  {name}" for name in sorted(self.manifest.get("artifacts", {})))
        return "\n".join(lines)


def run_local_refresh(
    output_dir: Path,
    *,
    publish_uri: str,
    source_version: str,
    new_version: str,
    calibration_images_uri: str,
    targets_file: str | None = None,
    require_tensorrt: bool = False,
    cal_batches: int = 4,
    cal_batch_size: int = 8,
    verbose: bool = False,
    network: str = DEFAULT_NETWORK,
) -> LocalRefreshResult:
    """Run ``calibration_refresh`` with ``kfp.local``: recalibrate a published version (of
    ``network``) on the images at ``calibration_images_uri`` and publish it as
    ``new_version``."""
    from pipelines import calibration_refresh
    from tlt_core.publish import VersionLocation

    output_dir = Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    _init_kfp_local(output_dir)
    pipeline = calibration_refresh.build(load_targets(targets_file), network=network)
    seconds, stage_timings = _run_pipeline(
        pipeline,
        output_dir,
        verbose=verbose,
        publish_uri=publish_uri,
        source_version=source_version,
        new_version=new_version,
        calibration_images_uri=calibration_images_uri,
        cal_batches=cal_batches,
        cal_batch_size=cal_batch_size,
        require_tensorrt=require_tensorrt,
        network=network,
    )
    manifest = VersionLocation(publish_uri, new_version).read_manifest()
    return LocalRefreshResult(
        publish_uri, source_version, new_version, seconds, manifest, stage_timings
    )


def _report_lines(reports: list) -> list[str]:
    if not reports:
        return []
    lines = [f"reports (what the KFP UI shows), in {reports[0].path.parent}:"]
    lines.extend(f"  {r.path}  ({r.title})" if r.title else f"  {r.path}" for r in reports)
    return lines


def _collect_reports(output_dir: Path, name: str) -> list:
    from pipelines.local_reports import collect_reports, latest_run_dir

    run_dir = latest_run_dir(output_dir / "kfp", name)
    return collect_reports(run_dir, output_dir / "reports") if run_dir else []


def _git_commit() -> str:
    from pipelines.client import git_commit

    try:
        return git_commit(Path(__file__).parent)
    except PipelineError:
        return "unknown"
