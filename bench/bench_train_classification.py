"""Classification training throughput: the real input pipeline vs in-memory tensors.

resnet18 classifier at 224x224 (002's sample spec size), batch 32, on the generated
class-per-directory sample. The same compiled Keras model (the network's loss and
optimizer) is fed (a) by ``tlt_core.train.loop.target_dataset`` over the network's
``input_pipeline`` (decode, random crop, flip, resize, preprocess: what
``tlt classification train`` runs) and (b) by one batch of those tensors repeated from
memory. Target: (a) no slower than 1.15x (b).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import BenchRow

BATCH = 32
SIZE = 224


def _fit_seconds(model, dataset, steps: int) -> float:
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def child(work_dir: str, warmup: int, steps: int) -> dict:
    import keras
    import tensorflow as tf

    from tlt_core.networks import get_network
    from tlt_core.networks.classification.sample import generate_classification_sample, sample_spec
    from tlt_core.train.loop import target_dataset

    root = Path(work_dir)
    generate_classification_sample(root / "data", num_train=BATCH * 4, num_val=5, seed=0)
    spec_path = root / "spec.txt"
    spec_path.write_text(sample_spec(root / "data", n_layers=18, input_size=SIZE, batch_size=BATCH))
    network = get_network("classification")
    spec = network.load_spec(spec_path)
    keras.utils.set_random_seed(0)
    model = network.build_model(spec)
    train_model = network.training_model(model)
    train_model.compile(
        optimizer=network.optimizer(spec, total_steps=1000, replicas=1),
        loss=network.loss(spec),
        jit_compile=False,
    )
    targets = network.training_targets(spec, model)

    def pipeline():
        return target_dataset(network, spec, targets=targets, batch_size=BATCH, seed=0).repeat()

    x, y = next(iter(pipeline()))
    memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    _fit_seconds(train_model, memory, warmup)
    _fit_seconds(train_model, pipeline(), warmup)
    t_memory = _fit_seconds(train_model, memory, steps)
    t_pipeline = _fit_seconds(train_model, pipeline(), steps)
    return {"pipeline_ips": steps * BATCH / t_pipeline, "memory_ips": steps * BATCH / t_memory}


def run(quick: bool) -> list[BenchRow]:
    warmup, steps = (1, 3) if quick else (2, 8)
    with tempfile.TemporaryDirectory(prefix="bench_train_cls_") as tmp:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_train_classification",
                tmp,
                str(warmup),
                str(steps),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_train_classification child failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    slowdown = result["memory_ips"] / result["pipeline_ips"]
    return [
        BenchRow(
            benchmark=f"classification train images/s, resnet18 {SIZE}x{SIZE} batch {BATCH}, "
            "input pipeline",
            value=round(result["pipeline_ips"], 2),
            unit="images/s",
            baseline="same model fed in-memory tensors",
            baseline_value=round(result["memory_ips"], 2),
            ratio=round(slowdown, 3),
            target="slowdown <= 1.15x",
            ok=slowdown <= 1.15,
        )
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
