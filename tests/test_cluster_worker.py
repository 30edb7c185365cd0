"""The worker entry point of distributed jobs (tlt_core.cluster.worker), and a simulation of a
TrainJob: N pods, each in its own network namespace with its own address and the JobSet
environment a pod gets, resolving its peers' stable DNS names through a hosts file; they
run the real ``python -m tlt_core.cluster.worker`` -> ``tlt ssd train`` and must train
together and end with the same weights."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tlt_core.cluster import tf_config, worker
from tlt_core.data.sample import generate_sample_data
from tlt_core.errors import UsageError
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

KEY = "sim-key"


def _args(tmp_path: Path, **extra) -> list[str]:
    argv = ["--dataset", str(tmp_path / "tfrecords"), "--spec", str(tmp_path / "spec.txt")]
    argv += ["--results", str(tmp_path / "results"), "--gpus", "1"]
    for name, value in extra.items():
        argv += [f"--{name.replace('_', '-')}", value]
    return argv


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """Sample KITTI data converted to TFRecord folds (what dataset_convert hands train)."""
    from tlt_core import pipeline_support as support

    root = tmp_path_factory.mktemp("sim")
    generate_sample_data(root / "data", num_train=16, num_val=4, seed=4, width=160, height=120)
    convert = (root / "data" / "specs" / "convert_random.txt").read_text()
    support.run_dataset_convert(str(root / "data" / "training"), convert, str(root / "tfrecords"))
    spec = sample_experiment_spec(
        root / "data",
        arch="resnet",
        nlayers=10,
        output_width=64,
        output_height=64,
        batch_size=4,
        num_epochs=2,
        validation_period=2,
    )
    (root / "spec.txt").write_text(spec)
    return root


def _jobset_env(index: int, total: int, name: str = "tlt-sim") -> dict[str, str]:
    return {
        tf_config.JOBSET_NAME: name,
        tf_config.REPLICATED_JOB: "node",
        tf_config.JOB_INDEX: "0",
        tf_config.REPLICATED_JOB_REPLICAS: "1",
        tf_config.COMPLETION_INDEX: str(index),
        tf_config.NUM_WORKERS: str(total),
        "TLT_MODEL_KEY": KEY,
    }


def test_chief_writes_to_the_shared_results_and_others_locally(converted, tmp_path):
    chief_env = _jobset_env(0, 2)
    argv = worker.train_command(worker.parse_args(_args(converted)), chief_env, tmp_path / "w0")
    assert argv[:3] == ["tlt", "ssd", "train"]
    assert argv[argv.index("-r") + 1] == str(converted / "results")
    assert json.loads(chief_env["TF_CONFIG"])["task"] == {"type": "worker", "index": 0}
    spec_text = Path(argv[argv.index("-e") + 1]).read_text()
    assert str(tmp_path / "w0" / "dataset") in spec_text  # data sources point at the copy
    other_env = _jobset_env(1, 2)
    argv = worker.train_command(worker.parse_args(_args(converted)), other_env, tmp_path / "w1")
    assert argv[argv.index("-r") + 1] == str(tmp_path / "w1" / "results")
    assert "-m" not in argv


def test_tfrecords_is_an_alias_of_dataset(converted, tmp_path):
    """Jobs created by older pipeline tasks pass --tfrecords; they still train."""
    new = worker.parse_args(_args(converted))
    old = worker.parse_args(["--tfrecords", *_args(converted)[1:]])
    assert old == new and new.dataset == str(converted / "tfrecords")
    argv = worker.train_command(old, _jobset_env(0, 2), tmp_path / "w0")
    assert argv[:3] == ["tlt", "ssd", "train"]
    assert str(tmp_path / "w0" / "dataset") in Path(argv[argv.index("-e") + 1]).read_text()


def test_an_unknown_network_or_no_dataset_is_refused(converted, capsys):
    with pytest.raises(SystemExit) as info:
        worker.parse_args(["--network", "yolo", *_args(converted)])
    assert info.value.code == 2 and "--network: invalid choice: 'yolo'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        worker.parse_args(_args(converted)[2:])
    assert info.value.code == 2
    assert "--dataset/--tfrecords" in capsys.readouterr().err


def test_classification_worker_trains_on_the_class_folders(tmp_path):
    """--network classification: the data step's train/ and val/ class folders become the
    spec's train and val datasets, and the worker runs `tlt classification train`."""
    from tlt_core import pipeline_support as support
    from tlt_core.networks import get_network

    net = get_network("classification")
    data = tmp_path / "data"
    _, spec_file = net.generate_sample(data, num_train=6, num_val=3, seed=1, spec_root=data)
    support.run_dataset_convert(str(data), "", str(tmp_path / "artifact"), "classification")
    (tmp_path / "spec.txt").write_text((data / spec_file).read_text())
    argv = ["--network", "classification", "--dataset", str(tmp_path / "artifact")]
    argv += ["--spec", str(tmp_path / "spec.txt"), "--results", str(tmp_path / "results")]
    command = worker.train_command(worker.parse_args(argv), _jobset_env(0, 2), tmp_path / "w0")
    assert command[:3] == ["tlt", "classification", "train"]
    assert command[command.index("-r") + 1] == str(tmp_path / "results")
    spec = net.load_spec(command[command.index("-e") + 1])
    copy = tmp_path / "w0" / "dataset"
    assert (spec.train_dataset_path, spec.val_dataset_path) == (
        str(copy / "train"),
        str(copy / "val"),
    )
    assert sorted(p.name for p in (copy / "train").iterdir() if p.is_dir()) == sorted(
        p.name for p in (data / "train").iterdir() if p.is_dir()
    )
    # classification validates on val/: a fold is refused in one line, before training.
    bad = worker.parse_args([*argv, "--validation-fold", "1"])
    with pytest.raises(UsageError, match="validation fold 1: classification"):
        worker.train_command(bad, _jobset_env(0, 2), tmp_path / "w1")


def test_restarted_workers_resume_from_the_chiefs_last_checkpoint(converted, tmp_path):
    results = tmp_path / "results"
    (results / "weights").mkdir(parents=True)
    (results / "weights" / "ssd_resnet10_epoch_001.tlt").write_bytes(b"ckpt")
    status = {
        "state": "interrupted",
        "last_checkpoint": "weights/ssd_resnet10_epoch_001.tlt",
        "epochs": [{"epoch": 1, "loss": 2.0}],
    }
    (results / "status.json").write_text(json.dumps(status))
    args = worker.parse_args(
        [
            "--dataset",
            str(converted / "tfrecords"),
            "--spec",
            str(converted / "spec.txt"),
            "--results",
            str(results),
        ]
    )
    argv = worker.train_command(args, _jobset_env(1, 2), tmp_path / "w")
    assert argv[argv.index("--initial_epoch") + 1] == "1"
    assert Path(argv[argv.index("-m") + 1]).read_bytes() == b"ckpt"
    status["state"] = "done"
    (results / "status.json").write_text(json.dumps(status))
    assert worker.train_command(args, _jobset_env(0, 2), tmp_path / "w2") is None


def test_missing_key_is_a_one_line_error(converted, tmp_path, capsys):
    env = _jobset_env(0, 2)
    del env["TLT_MODEL_KEY"]
    os_env = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        code = worker.main(_args(converted))
    finally:
        os.environ.clear()
        os.environ.update(os_env)
    assert code != 0
    assert capsys.readouterr().err.strip().startswith("tlt-worker: error: TLT_MODEL_KEY")


# --- the simulation -------------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def pod_network(hostnames: list[str]):
    """One network namespace per pod, wired to a bridge in a hub namespace (nothing changes
    in this machine's own namespace); /etc/netns/<ns>/hosts gives every pod the peers'
    names, as the JobSet's headless Service does."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    tag = uuid.uuid4().hex[:6]
    hub = f"tlt{tag}-hub"
    pods = [f"tlt{tag}-p{i}" for i in range(len(hostnames))]
    addresses = [f"10.251.{int(tag[:2], 16)}.{i + 10}" for i in range(len(hostnames))]
    made: list[str] = []
    try:
        try:
            _ip("netns", "add", hub)
        except subprocess.CalledProcessError as error:
            pytest.skip(f"cannot make network namespaces here: {error.stderr.strip()}")
        made.append(hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{address} {name} {name.split('.')[0]}\n"
            for address, name in zip(addresses, hostnames, strict=True)
        )
        for index, (ns, address) in enumerate(zip(pods, addresses, strict=True)):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip(
                "-n",
                hub,
                "link",
                "add",
                f"v{index}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            _ip("-n", hub, "link", "set", f"v{index}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)
        yield pods
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def _digest(output: str) -> str:
    found = re.findall(r"final weights sha256 ([0-9a-f]{64})", output)
    assert len(found) == 1, output[-3000:]
    return found[0]


@pytest.mark.slow
def test_two_pod_trainjob_simulation_trains_together(converted, tmp_path):
    total = 2
    names = [f"tlt-sim-node-0-{i}.tlt-sim" for i in range(total)]
    results = tmp_path / "results"
    with pod_network(names) as namespaces:
        procs = []
        for index, ns in enumerate(namespaces):
            env = {
                **os.environ,
                **_jobset_env(index, total),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "CUDA_VISIBLE_DEVICES": "",
                "TF_CPP_MIN_LOG_LEVEL": "2",
            }
            env.pop("TF_CONFIG", None)
            argv = [sys.executable, "-m", "tlt_core.cluster.worker"]
            argv += [
                "--dataset",
                str(converted / "tfrecords"),
                "--spec",
                str(converted / "spec.txt"),
            ]
            argv += ["--results", str(results)]
            procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", ns, *argv],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        try:
            outputs = [p.communicate(timeout=900)[0] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text[-3000:]
        assert "2 worker(s), 2 replica(s)" in text, text[-3000:]
    assert "worker 0 of 2 (chief)" in outputs[0] and "worker 1 of 2" in outputs[1]
    assert _digest(outputs[0]) == _digest(outputs[1])
    status = json.loads((results / "status.json").read_text())
    assert status["state"] == "done" and len(status["epochs"]) == 2
    from tlt_core import modelfile
    from tlt_core.train.distributed import weights_digest

    saved, meta = modelfile.load_model(results / status["last_checkpoint"], KEY)
    assert weights_digest(saved) == _digest(outputs[1]) and meta["epoch"] == 2
