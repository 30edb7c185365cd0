"""In-image checks of tlt-core, run as a build step (`make test-images`) by the image's
non-root user: `podman run` cannot start containers on the build machine, `podman build`
can run steps.

1. ``tlt --help``;
2. ``tlt sample-data`` (a tiny deterministic KITTI set);
3. a tiny ``tlt ssd train`` (ResNet-10, 64x64, one epoch) whose checkpoint must load;
4. the ``dataset_convert`` KFP component through its compiled container command (the one
   a KFP pod runs: ``python3 -m kfp.dsl.executor_main`` on the component's source), with an
   executor input as the KFP driver writes it.

Everything goes under a fresh temporary folder; any failure exits non-zero, which fails the
build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KEY = "image-check-key"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(argv)[:300], flush=True)
    result = subprocess.run(argv, text=True, capture_output=True, check=False, **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"check failed ({result.returncode}): {argv[:3]}")
    return result


def check_user() -> None:
    uid = os.getuid()
    print(f"running as uid {uid}, HOME={os.environ.get('HOME')}", flush=True)
    if uid == 0:
        raise SystemExit("the checks must run as the image's non-root user")


def check_cli(work: Path) -> tuple[Path, Path]:
    help_text = run(["tlt", "--help"]).stdout
    for command in ("ssd", "dataset-convert", "sample-data", "pipeline"):
        if command not in help_text:
            raise SystemExit(f"tlt --help does not list {command!r}")
    data = work / "data"
    size = ["--width", "160", "--height", "120", "--seed", "3"]
    run(["tlt", "sample-data", "-o", str(data), "--num-train", "8", "--num-val", "2", *size])
    if len(list((data / "training" / "image_2").iterdir())) != 8:
        raise SystemExit("tlt sample-data wrote the wrong number of images")
    return data, data / "specs"


def check_train(work: Path, data: Path) -> None:
    from tlt_core.data.sample import sample_experiment_spec

    spec = work / "tiny_train.txt"
    spec.write_text(
        sample_experiment_spec(
            data,
            arch="resnet",
            nlayers=10,
            output_width=64,
            output_height=64,
            batch_size=4,
            num_epochs=1,
            validation_period=1,
        )
    )
    results = work / "results"
    run(["tlt", "ssd", "train", "-e", str(spec), "-r", str(results), "-k", KEY])
    (checkpoint,) = sorted((results / "weights").glob("*.tlt"))
    from tlt_core import modelfile

    _model, meta = modelfile.load_model(checkpoint, KEY)
    if meta["epoch"] != 1 or meta["input_shape"] != [64, 64, 3]:
        raise SystemExit(f"unexpected checkpoint metadata: {meta}")
    status = json.loads((results / "status.json").read_text())
    if status["state"] != "done":
        raise SystemExit(f"training state {status['state']!r}")
    print(f"tiny train done: {checkpoint.name}, mAP {status['epochs'][-1]['mAP']}", flush=True)


def _executor_input(work: Path, dataset: Path, convert_spec: str) -> tuple[dict, Path]:
    outputs = work / "kfp-outputs"
    artifact = outputs / "tfrecords"
    executor_input = {
        "inputs": {"parameterValues": {"dataset_uri": str(dataset), "convert_spec": convert_spec}},
        "outputs": {
            "artifacts": {
                "tfrecords": {
                    "artifacts": [
                        {
                            "name": "tfrecords",
                            "type": {"schemaTitle": "system.Dataset"},
                            "uri": str(artifact),
                            "metadata": {},
                        }
                    ]
                }
            },
            "parameters": {"Output": {"outputFile": str(outputs / "Output")}},
            "outputFile": str(outputs / "executor_output.json"),
        },
    }
    return executor_input, artifact


def check_component(work: Path, data: Path, specs: Path) -> None:
    """Run the dataset_convert component the way a KFP pod does."""
    import yaml
    from kfp import compiler

    from components.dataset_convert import dataset_convert

    package = work / "dataset_convert.yaml"
    compiler.Compiler().compile(dataset_convert, str(package))
    spec = yaml.safe_load(package.read_text())
    (executor,) = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    convert_spec = (specs / "convert_random.txt").read_text()
    executor_input, artifact = _executor_input(work, data / "training", convert_spec)
    argv = [*container["command"], *container["args"]]
    argv = [
        a.replace("{{$}}", json.dumps(executor_input)) if isinstance(a, str) else a for a in argv
    ]
    run(argv)
    written = sorted(p.name for p in artifact.iterdir()) if artifact.is_dir() else []
    if not any(name.startswith("tfrecords-fold-") for name in written):
        raise SystemExit(f"dataset_convert wrote no TFRecord folds: {written}")
    executor_output = json.loads((work / "kfp-outputs" / "executor_output.json").read_text())
    print(f"executor output keys: {sorted(executor_output)}", flush=True)
    print(f"component dataset_convert wrote {len(written)} files", flush=True)


def main() -> int:
    check_user()
    with tempfile.TemporaryDirectory(prefix="tlt-image-check-") as tmp:
        work = Path(tmp)
        data, specs = check_cli(work)
        check_train(work, data)
        check_component(work, data, specs)
    print("image checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
