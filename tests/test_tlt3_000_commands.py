"""000's SSD command lines, copied from the document, run on the sample data (issue 13).

Each command below is the text 000 prints (checked against the document when it is on this
machine, whitespace and line continuations aside). What the test changes, and nothing else:

- paths and keys: ``/path/to/...``, ``/workspace/...``, ``$USER_EXPERIMENT_DIR``,
  ``$SPECS_DIR``, ``/export``, ``/ws``, ``$KEY`` / ``<model_key>``, point at this test's files;
- the spec is the sample dataset's (``sample_experiment_spec``: resnet10, 64x64, one
  epoch), as 000's spec points at KITTI;
- ``tlt-converter -d 3,384,1248`` becomes the exported model's ``3,64,64`` (a dimension of
  the model, checked before TensorRT);
- ``--gpus 2`` runs on two logical CPU devices (set up before the command, as on a 2-GPU
  machine; the command line is unchanged);
- the export example builds an engine (``--engine_file``): run as printed it stops at the
  TensorRT call (no TensorRT here) with one line and leaves nothing behind; it is then run
  without ``--engine_file`` and with ``--gen_ds_config`` (the issue's "export with int8 and
  --gen_ds_config"), and ``tlt-converter`` runs on that export up to the TensorRT call.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SEED_000 = Path("/work/shared/seeds/000_5e1fd274cdc440ea.txt")

TRAIN = "tlt ssd train --gpus 2 -e /path/to/spec.txt -r /path/to/result -k $KEY"
EVALUATE = (
    "tlt ssd evaluate -m /path/to/trained_tlt_ssd_model -k <model_key> -e /path/to/ssd_spec.txt"
)
INFERENCE = (
    "tlt ssd inference -i /path/to/input/images_dir -o /path/to/output/dir "
    "-m /path/to/trained_tlt_ssd_model -k <model_key> -e /path/to/ssd_spec.txt"
)
PRUNE = """tlt ssd prune -m /workspace/output/weights/resnet_003.tlt \\
              -o /workspace/output/weights/resnet_003_pruned.tlt \\
              -eq union \\
              -pth 0.7 -k $KEY"""
EXPORT = """tlt ssd export -m $USER_EXPERIMENT_DIR/data/ssd/ssd_kitti_retrain_epoch12.tlt \\
               -o $USER_EXPERIMENT_DIR/data/ssd/ssd_kitti_retrain.int8.etlt \\
               -e $SPECS_DIR/ssd_kitti_retrain_spec.txt \\
               --key $KEY \\
               --cal_image_dir  $USER_EXPERIMENT_DIR/data/KITTI/val/image_2 \\
               --data_type int8 \\
               --batch_size 8 \\
               --batches 10 \\
               --cal_data_file $USER_EXPERIMENT_DIR/data/ssd/cal.tensorfile \\
               --cal_cache_file $USER_EXPERIMENT_DIR/data/ssd/cal.bin \\
               --engine_file $USER_EXPERIMENT_DIR/data/ssd/detection.trt"""
CONVERTER = """tlt-converter -k $KEY  \\
            -d 3,384,1248 \\
            -o NMS \\
            -e /export/trt.fp16.engine \\
            -t fp16 \\
            -i nchw \\
            -m 1 \\
            /ws/ssd_resnet18_epoch_100.etlt"""

# Runs one command line: `tlt` or `tlt-converter` (their console-script functions), in a
# process whose CPU is split into two logical devices (what `--gpus 2` trains on here).
RUNNER = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tlt_core.cli import main
from tlt_core.cli.converter import main as converter_main
program, *args = sys.argv[1:]
sys.exit({"tlt": main, "tlt-converter": converter_main}[program](args))
"""


def _flat(text: str) -> str:
    return " ".join(text.replace("\\\n", " ").split())


def test_the_commands_are_000s():
    if not SEED_000.is_file():
        pytest.skip("000 is not on this machine")
    document = _flat(SEED_000.read_text())
    for command in (TRAIN, EVALUATE, INFERENCE, PRUNE, EXPORT, CONVERTER):
        assert _flat(command) in document, command


def _run(command: str, paths: dict[str, str], timeout: int = 900):
    text = _flat(command)
    # Longest first, so /path/to/trained_tlt_ssd_model wins over a shorter prefix.
    for old in sorted(paths, key=len, reverse=True):
        text = text.replace(old, paths[old])
    argv = shlex.split(text)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return done, argv


@pytest.mark.slow
def test_000_ssd_commands_run_on_the_sample_data(tmp_path):
    from tlt_core.data.sample import generate_sample_data
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    data = tmp_path / "data"
    generate_sample_data(data, num_train=80, num_val=16, seed=0)
    spec = tmp_path / "specs" / "ssd_spec.txt"
    spec.parent.mkdir()
    spec.write_text(
        sample_experiment_spec(
            data,
            arch="resnet",
            nlayers=10,
            output_width=64,
            output_height=64,
            num_epochs=1,
            batch_size=8,
            validation_period=1,
        )
    )
    experiment_dir = tmp_path / "experiment"
    (experiment_dir / "data" / "ssd").mkdir(parents=True)
    (experiment_dir / "data" / "KITTI" / "val").mkdir(parents=True)
    (experiment_dir / "data" / "KITTI" / "val" / "image_2").symlink_to(
        data / "training" / "image_2"
    )
    results = tmp_path / "result"
    key = "tlt_encode"
    paths = {
        "$KEY": key,
        "<model_key>": key,
        "/path/to/spec.txt": str(spec),
        "/path/to/ssd_spec.txt": str(spec),
        "$SPECS_DIR/ssd_kitti_retrain_spec.txt": str(spec),
        "/path/to/result": str(results),
        "/path/to/input/images_dir": str(data / "val" / "image_2"),
        "/path/to/output/dir": str(tmp_path / "inference"),
        "$USER_EXPERIMENT_DIR": str(experiment_dir),
        "/export/": f"{tmp_path}/export/",
    }

    done, _ = _run(TRAIN, paths)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 replicas on logical CPU devices" in done.stderr
    trained = sorted((results / "weights").glob("*.tlt"))[-1]
    paths["/path/to/trained_tlt_ssd_model"] = str(trained)
    paths["/workspace/output/weights/resnet_003.tlt"] = str(trained)
    pruned = tmp_path / "weights" / "resnet_003_pruned.tlt"
    paths["/workspace/output/weights/resnet_003_pruned.tlt"] = str(pruned)

    done, _ = _run(EVALUATE, paths)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("runner: Keras (.tlt)")
    assert re.search(r"mAP\s", done.stdout), done.stdout

    done, _ = _run(INFERENCE, paths)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "inference").iterdir())) == 16

    done, _ = _run(PRUNE, paths)
    assert done.returncode == 0, done.stderr[-3000:]
    assert pruned.is_file()
    retrained = experiment_dir / "data" / "ssd" / "ssd_kitti_retrain_epoch12.tlt"
    retrained.write_bytes(pruned.read_bytes())  # 000 exports its retrained pruned model

    ssd_dir = experiment_dir / "data" / "ssd"
    done, _ = _run(EXPORT, paths)
    if done.returncode != 0:  # no TensorRT: stops at the engine build, one line
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert errors == [
            "tlt: error: tensorrt Python package not installed "
            "(pip install tlt-pipelines[tensorrt])"
        ], done.stderr[-3000:]
        assert not (ssd_dir / "ssd_kitti_retrain.int8.etlt").exists()
        assert not (ssd_dir / "cal.bin").exists()
    without_engine = EXPORT.replace(
        "--engine_file $USER_EXPERIMENT_DIR/data/ssd/detection.trt", "--gen_ds_config"
    )
    assert without_engine != EXPORT
    done, _ = _run(without_engine, paths)
    assert done.returncode == 0, done.stderr[-3000:]
    etlt = ssd_dir / "ssd_kitti_retrain.int8.etlt"
    for name in ("cal.bin", "cal.tensorfile", "labels.txt", "nvinfer_config.txt"):
        assert (ssd_dir / name).is_file(), name
    assert etlt.is_file()
    assert "network-mode=1" in (ssd_dir / "nvinfer_config.txt").read_text()

    # tlt-converter as printed (dims aside) on that export, -o NMS included.
    paths["/ws/ssd_resnet18_epoch_100.etlt"] = str(etlt)
    paths["3,384,1248"] = "3,64,64"
    (tmp_path / "export").mkdir()
    done, argv = _run(CONVERTER, paths)
    assert argv[argv.index("-o") + 1] == "NMS"
    if done.returncode != 0:
        assert done.stderr.strip().splitlines()[-1] == (
            "tlt-converter: error: tensorrt Python package not installed "
            "(pip install tlt-pipelines[tensorrt])"
        ), done.stderr[-3000:]
    assert "-o NMS: the tlt_nms outputs of this ssd export" in done.stderr
