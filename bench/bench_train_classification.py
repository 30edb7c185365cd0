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
import sys
from pathlib import Path

from bench import BenchRow
from bench.training import pipeline_and_memory_rates, run_child, slowdown_row

BATCH = 32
SIZE = 224


def child(work_dir: str, warmup: int, steps: int) -> dict:
    import keras

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

    return pipeline_and_memory_rates(train_model, pipeline, batch=BATCH, warmup=warmup, steps=steps)


def run(quick: bool) -> list[BenchRow]:
    warmup, steps = (1, 3) if quick else (2, 8)
    result = run_child("bench.bench_train_classification", warmup, steps)
    return [
        slowdown_row(
            f"classification train images/s, resnet18 {SIZE}x{SIZE} batch {BATCH}, input pipeline",
            result,
        )
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
