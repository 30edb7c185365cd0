"""Training throughput: the real input pipeline vs in-memory tensors, and peak memory.

resnet18 SSD at 300x300, batch 16, on the generated sample data. The same compiled Keras
training model is fed (a) by ``tlt_core.train.loop.target_dataset`` (decode, augment,
resize, encode targets: what ``tlt ssd train`` runs) and (b) by one batch of those tensors
repeated from memory. Target: (a) no slower than 1.15x (b). Peak RSS of the process that ran
both (a child process, so other benchmarks do not count): target <= 6 GiB.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import BenchRow, peak_rss_bytes
from bench.training import pipeline_and_memory_rates, run_child, slowdown_row

BATCH = 16
SIZE = 300


def child(work_dir: str, warmup: int, steps: int) -> dict:
    import keras

    from tlt_core.data.sample import generate_sample_data
    from tlt_core.networks import get_network
    from tlt_core.networks.ssd.loss import SsdLoss
    from tlt_core.networks.ssd.model import build_ssd
    from tlt_core.networks.ssd.network import MOMENTUM
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
    from tlt_core.networks.ssd.spec import load_experiment
    from tlt_core.train.loop import target_dataset

    root = Path(work_dir)
    generate_sample_data(root / "data", num_train=BATCH * 4, num_val=2, seed=0)
    spec = root / "spec.txt"
    spec.write_text(
        sample_experiment_spec(
            root / "data",
            arch="resnet",
            nlayers=18,
            output_width=SIZE,
            output_height=SIZE,
            batch_size=BATCH,
        )
    )
    experiment = load_experiment(spec)
    keras.utils.set_random_seed(0)
    model = build_ssd(experiment, len(experiment.class_names))
    ssd = get_network("ssd")
    train_model = ssd.training_model(model)
    train_model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=MOMENTUM),
        loss=SsdLoss(),
        jit_compile=False,
    )
    targets = ssd.training_targets(experiment, model)

    def pipeline():
        return target_dataset(
            ssd,
            experiment,
            targets=targets,
            batch_size=BATCH,
            seed=0,
        ).repeat()

    return {
        **pipeline_and_memory_rates(train_model, pipeline, batch=BATCH, warmup=warmup, steps=steps),
        "peak_rss_mib": peak_rss_bytes() / 2**20,
    }


def run(quick: bool) -> list[BenchRow]:
    warmup, steps = (2, 4) if quick else (3, 10)
    result = run_child("bench.bench_train", warmup, steps)
    peak = result["peak_rss_mib"]
    return [
        slowdown_row(
            f"train images/s, resnet18 {SIZE}x{SIZE} batch {BATCH}, input pipeline", result
        ),
        BenchRow(
            benchmark="peak RSS of that training process",
            value=round(peak, 1),
            unit="MiB",
            target="<= 6144 MiB",
            ok=peak <= 6144,
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
