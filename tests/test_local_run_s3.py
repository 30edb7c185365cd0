"""The whole ``train_deploy`` DAG through kfp.local, with its data, calibration images and
published version in a real S3 server on 127.0.0.1 (SeaweedFS, tests/s3server.py)."""

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from pipeline_helpers import assert_refreshed_from, version_files

from pipelines.local_run import run_local
from pipelines.targets import load_targets
from tlt_core import storage
from tlt_core.cli import main as cli_main
from tlt_core.data.sample import sample_convert_spec
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.publish import VersionLocation

TINY = {
    "arch": "resnet",
    "nlayers": 10,
    "output_width": 96,
    "output_height": 96,
    "batch_size": 4,
    "num_epochs": 1,
    "validation_period": 1,
}


def test_train_deploy_runs_locally_against_s3(
    s3_server, s3_bucket, sample_dataset, tmp_path, monkeypatch, capfd
):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    data = f"s3://{s3_bucket}/kitti"
    storage.upload_dir(sample_dataset.train_image_dir.parent, f"{data}/training")
    storage.upload_dir(sample_dataset.val_image_dir, f"{data}/val/image_2")
    publish = f"s3://{s3_bucket}/models/ssd"
    capfd.readouterr()  # the test's own uploads above are not the run's terminal

    result = run_local(
        tmp_path / "out",
        key="test-key",
        dataset_uri=f"{data}/training",
        convert_spec=sample_convert_spec(sample_dataset.root),
        experiment_spec=sample_experiment_spec(sample_dataset.root, **TINY),
        calibration_images_uri=f"{data}/val/image_2",
        publish_uri=publish,
        model_version="v1",
        min_map=0.0,
        max_map_drop=1.0,
        cal_batches=2,
        cal_batch_size=4,
    )

    assert result.manifest is not None, result.summary()
    # The terminal: a line per task start and end, the epochs, warnings; the rest is in the
    # task logs (about 800 lines before they were routed there).
    terminal = capfd.readouterr()
    shown = (terminal.out + terminal.err).splitlines()
    assert len(shown) < 100, "\n".join(shown)
    assert not any("executor_input" in line or "NodeDef" in line for line in shown)
    assert (
        sum(" start " in line for line in shown)
        == len(list(result.output_dir.glob("logs/*.log"))) - 1
    )
    assert "epoch 1/1" in (result.output_dir / "logs" / "train.log").read_text()
    assert any(line.startswith("stage timings") for line in result.summary().splitlines())
    manifest = VersionLocation(publish, "v1").read_manifest()
    assert manifest["model_version"] == "v1"
    artifacts = manifest["artifacts"]
    assert version_files() <= set(artifacts)
    assert set(manifest["metrics"]) >= {"mAP"} and manifest["metric"] == "mAP"

    stored = {
        info.uri.removeprefix(f"{publish}/v1/"): info
        for info in storage.list_objects(f"{publish}/v1/")
        if Path(info.key).name not in {"manifest.json", storage.MARKER_NAME}
    }
    assert set(stored) == set(artifacts), "the manifest lists exactly what was published"
    with tempfile.TemporaryDirectory() as tmp:
        for relative, entry in artifacts.items():
            local = storage.download(f"{publish}/v1/{relative}", Path(tmp) / relative)
            data_bytes = local.read_bytes()
            assert len(data_bytes) == entry["size"], relative
            assert hashlib.sha256(data_bytes).hexdigest() == entry["sha256"], relative

        report = json.loads((Path(tmp) / "engines/x86-t4/build_report.json").read_text())
        assert report["int8"]["status"] == "skipped"
        assert "tensorrt" in report["int8"]["reason"]
        labels = (Path(tmp) / "deepstream/labels.txt").read_text().split()
        assert labels[0] == "background" and labels[1:] == sorted(labels[1:])
        _published_metrics_are_reproducible(Path(tmp), manifest)

    _calibration_refresh_publishes_a_new_version(
        publish, f"{data}/val/image_2", manifest, tmp_path / "refresh"
    )


def _published_metrics_are_reproducible(version_dir: Path, manifest: dict) -> None:
    """The published model evaluated with the published spec gives the published mAP, on
    the data the version names (same label set)."""
    from tlt_core.stages.evaluate import evaluate

    published = json.loads((version_dir / "metrics.json").read_text())
    data = published["evaluation"]["data"]
    assert manifest["evaluation_data"] == data
    assert data["dataset_uri"] and len(data["label_set_sha256"]) == 64
    assert data["validation_sources"] and data["num_images"] > 0
    spec = (version_dir / "experiment_spec.txt").read_text()
    assert all(source in spec for source in data["validation_sources"])
    result = evaluate(version_dir / "model.onnx", version_dir / "experiment_spec.txt", None)
    assert result.label_set_sha256 == data["label_set_sha256"]
    assert result.num_images == data["num_images"]
    assert result.mAP == pytest.approx(published["mAP"], abs=1e-4)
    assert manifest["metrics"]["mAP"] == published["mAP"]


def _calibration_refresh_publishes_a_new_version(publish, images, source, output) -> None:
    """``tlt pipeline run --local --pipeline calibration_refresh``: the whole DAG against
    the version published above."""
    code = cli_main(
        [
            *("pipeline", "run", "--local", "--pipeline", "calibration_refresh"),
            *("-o", str(output), "--publish", publish),
            *("--source-version", "v1", "--new-version", "v2", "--calibration-images", images),
            *("--cal-batches", "2", "--cal-batch-size", "4"),
        ]
    )
    assert code == 0
    manifest = VersionLocation(publish, "v2").read_manifest()
    assert manifest["model_version"] == "v2"
    assert_refreshed_from(manifest, source)
    artifacts = manifest["artifacts"]
    assert artifacts["calibration.cache"]["size"] > 0
    int8_targets = {t.name for t in load_targets() if "int8" in t.precisions}
    assert {f"engines/{t}/build_report.json" for t in int8_targets} <= set(artifacts)
    assert manifest["experiment_spec_sha256"] == source["experiment_spec_sha256"]
    with tempfile.TemporaryDirectory() as tmp:
        for target in int8_targets:
            local = storage.download(
                f"{publish}/v2/engines/{target}/build_report.json", Path(tmp) / f"{target}.json"
            )
            report = json.loads(local.read_text())
            assert set(report) == {"int8"} and report["int8"]["status"] == "skipped"
