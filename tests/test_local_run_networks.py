"""The whole ``train_deploy`` DAG through kfp.local for the networks besides SSD (SSD's run:
tests/test_local_run_s3.py): ``tlt pipeline run --local --network detectnet_v2`` and
``--network classification`` on tiny data with one epoch, each publishing a version whose
files, DeepStream config, metric and manifest are checked; classification's version is
then recalibrated by ``calibration_refresh`` (``--pipeline calibration_refresh --network
classification``)."""

import hashlib
import json
from pathlib import Path

import pytest
from pipeline_helpers import assert_refreshed_from, version_files

from tlt_core.cli import main as cli_main
from tlt_core.data.sample import sample_convert_spec
from tlt_core.networks import get_network
from tlt_core.publish import VersionLocation
from tlt_core.stages.evaluate import evaluate
from tlt_core.stages.sample_data import generate_network_sample

KEY = "test-key"
GATE_OPEN = ("--min-metric", "0", "--max-metric-drop", "1")  # one epoch: any value passes
CALIBRATION = ("--cal-batches", "2", "--cal-batch-size", "4")


def _run(network: str, out: Path, dataset: str, spec: str, convert: str | None, images: str):
    spec_file = out.parent / f"{network}_spec.txt"
    spec_file.write_text(spec)
    args = [
        *("pipeline", "run", "--local", "--network", network, "-o", str(out), "-k", KEY),
        *("--dataset", dataset, "--experiment-spec", str(spec_file)),
        *("--calibration-images", images, "--publish", str(out / "published")),
        *GATE_OPEN,
        *CALIBRATION,
    ]
    if convert is not None:
        convert_file = out.parent / "convert_spec.txt"
        convert_file.write_text(convert)
        args += ["--convert-spec", str(convert_file)]
    assert cli_main(args) == 0
    (version,) = (out / "published").iterdir()
    return version


def _check_version(version: Path, network: str) -> tuple[dict, dict]:
    """The files every version has, the manifest listing exactly them with their hashes,
    and metrics that name the network's metric."""
    manifest = json.loads((version / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    assert set(artifacts) == version_files()
    for relative, entry in artifacts.items():
        data = (version / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], relative
    assert (version / "calibration.cache").stat().st_size > 0
    metric = get_network(network).primary_metric.name
    metrics = json.loads((version / "metrics.json").read_text())
    assert metrics["metric"] == manifest["metric"] == metric
    assert metrics["evaluation"]["metric"] == metric
    assert 0.0 <= metrics[metric] <= 1.0 and manifest["metrics"][metric] == metrics[metric]
    return manifest, metrics


def _reproduces(version: Path, network: str, metrics: dict) -> None:
    """The published model evaluated with the published spec gives the published value."""
    result = evaluate(
        version / "model.onnx", version / "experiment_spec.txt", None, network=network
    )
    data = metrics["evaluation"]["data"]
    assert result.label_set_sha256 == data["label_set_sha256"]
    assert result.num_images == data["num_images"]
    assert result.value == pytest.approx(metrics[result.metric], abs=1e-4)


@pytest.mark.slow
def test_detectnet_v2_train_deploy_publishes_a_version(sample_dataset, tmp_path):
    net = get_network("detectnet_v2")
    spec = net.sample_spec(sample_dataset.root, fast=True, epochs=1)
    out = tmp_path / "out"
    version = _run(
        "detectnet_v2",
        out,
        str(sample_dataset.train_image_dir.parent),
        spec,
        sample_convert_spec(sample_dataset.root),
        str(sample_dataset.val_image_dir),
    )
    _, metrics = _check_version(version, "detectnet_v2")
    assert metrics["metric"] == "mAP"
    config = (version / "deepstream" / "nvinfer_config.txt").read_text()
    # DeepStream's built-in DetectNet_v2 parser: raw cov/bbox blobs, no custom parser.
    assert "output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd" in config
    settings = [line for line in config.splitlines() if not line.startswith("#")]
    assert "network-type=0" in settings
    assert not any(line.startswith("parse-bbox-func-name") for line in settings)
    assert (version / "deepstream" / "labels.txt").read_text().split() == [
        "car",
        "cyclist",
        "pedestrian",
    ]
    assert "tlt-detectnet-v2-train-deploy" in " ".join(p.name for p in (out / "kfp").iterdir())
    _reproduces(version, "detectnet_v2", metrics)


@pytest.mark.slow
def test_classification_train_deploy_publishes_a_version_and_refreshes_it(tmp_path):
    net = get_network("classification")
    data = generate_network_sample(tmp_path / "data", "classification", num_train=60, num_val=20)
    spec = net.sample_spec(data.root, fast=True, epochs=1).replace(
        "batch_size_per_gpu: 32", "batch_size_per_gpu: 8"
    )
    out = tmp_path / "out"
    version = _run("classification", out, str(data.root), spec, None, str(data.val_dir))
    manifest, metrics = _check_version(version, "classification")
    config = (version / "deepstream" / "nvinfer_config.txt").read_text()
    assert "network-type=1" in config and "is-classifier=1" in config
    assert "output-blob-names=predictions/Softmax" in config
    labels = (version / "deepstream" / "labels.txt").read_text().strip()
    assert labels == "car;cyclist;pedestrian;person_sitting;van"
    gate = (out / "reports" / "quality-gate.md").read_text()
    assert "top1\\_accuracy of the pruned, retrained model" in gate
    _reproduces(version, "classification", metrics)

    # calibration_refresh of that version, for the classification network.
    code = cli_main(
        [
            *("pipeline", "run", "--local", "--pipeline", "calibration_refresh"),
            *("--network", "classification", "-o", str(tmp_path / "refresh")),
            *("--publish", str(out / "published"), "--source-version", version.name),
            *("--new-version", "refreshed", "--calibration-images", str(data.val_dir)),
            *CALIBRATION,
        ]
    )
    assert code == 0
    refreshed = VersionLocation(str(out / "published"), "refreshed").read_manifest()
    assert_refreshed_from(refreshed, manifest)
    assert refreshed["metric"] == "top1_accuracy"
