"""The whole ``train_deploy`` DAG through kfp.local, with its data, calibration images and
published version in a real S3 server on 127.0.0.1 (SeaweedFS, tests/s3server.py)."""

import hashlib
import json
import tempfile
from pathlib import Path

from pipelines.local_run import run_local
from pipelines.targets import load_targets
from tlt_core import storage
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
    s3_server, s3_bucket, sample_dataset, tmp_path, monkeypatch
):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    data = f"s3://{s3_bucket}/kitti"
    storage.upload_dir(sample_dataset.train_image_dir.parent, f"{data}/training")
    storage.upload_dir(sample_dataset.val_image_dir, f"{data}/val/image_2")
    publish = f"s3://{s3_bucket}/models/ssd"

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
    manifest = VersionLocation(publish, "v1").read_manifest()
    assert manifest["model_version"] == "v1"
    artifacts = manifest["artifacts"]
    expected = {
        "model.onnx",
        "calibration.cache",
        "deepstream/labels.txt",
        "deepstream/nvinfer_config.txt",
        "metrics.json",
        "experiment_spec.txt",
    }
    expected |= {f"engines/{t.name}/build_report.json" for t in load_targets()}
    assert expected <= set(artifacts)
    assert set(manifest["metrics"]) >= {"mAP"}

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
