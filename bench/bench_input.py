"""Input pipeline throughput: SSD training input (decode + full augmentation + resize to
300x300, batch 16) against decode + resize only, in the same run, on generated KITTI-sized
PNG frames (1248x384, the sample-data generator). Target: >= 150 images/s for training.

Besides wall-clock images/s, each row's companion reports the process CPU time per image
and the throughput that implies if every core of the machine were free
(cores / CPU-seconds per image): on a shared machine the wall figure mostly measures the
other processes' load. Measured in a child process of its own.
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

TARGET_IMAGES_PER_S = 150.0
BATCH = 16
WIDTH, HEIGHT = 1248, 384


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _measure(dataset, batches: int, warmup: int = 3) -> tuple[float, float]:
    """(images per wall second, CPU seconds per image)."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    images = 0
    for _ in range(batches):
        images += int(next(iterator)["image"].shape[0])
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return images / wall, cpu / images


def measure(quick: bool) -> dict:
    """Both pipelines measured in this process (the child of :func:`run`)."""
    from tlt_core.data.sample import generate_sample_data
    from tlt_core.networks import get_network
    from tlt_core.networks.ssd.spec import load_experiment

    SSD = get_network("ssd")

    frames = 32 if quick else 96
    batches = 6 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_sample_data(
            Path(tmp) / "data",
            num_train=frames,
            num_val=0,
            seed=0,
            width=WIDTH,
            height=HEIGHT,
            experiment_specs={"ssd": SSD.sample_spec},
        )
        experiment = load_experiment(data.experiment_spec).with_overrides(
            {"augmentation_config.output_width": 300, "augmentation_config.output_height": 300}
        )

        def dataset(training: bool):
            return SSD.input_pipeline(
                experiment,
                training=training,
                batch_size=BATCH,
                repeat=True,
                shuffle=True,
                sources=experiment.data_sources,
            )

        decode_rate, decode_cpu = _measure(dataset(False), batches)
        train_rate, train_cpu = _measure(dataset(True), batches)
    return {
        "decode_rate": decode_rate,
        "decode_cpu": decode_cpu,
        "train_rate": train_rate,
        "train_cpu": train_cpu,
    }


def run(quick: bool) -> list[BenchRow]:
    # A fresh process, as `tlt ssd train` is: in the process that ran the other benchmarks
    # the same pipeline measured 10-20 % slower (their heap and thread pools stay behind).
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_input", "--child", "quick" if quick else "full"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_input child failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    decode_rate, decode_cpu = result["decode_rate"], result["decode_cpu"]
    train_rate, train_cpu = result["train_rate"], result["train_cpu"]
    cores = len(os.sched_getaffinity(0))
    what = f"1248x384 PNG -> 300x300, batch {BATCH}"
    return [
        BenchRow(
            benchmark=f"SSD training input images/s, wall ({what})",
            value=train_rate,
            unit="images/s",
            baseline="decode + resize only",
            baseline_value=decode_rate,
            ratio=train_rate / decode_rate,
            target=f">= {TARGET_IMAGES_PER_S:.0f} images/s",
            ok=train_rate >= TARGET_IMAGES_PER_S,
        ),
        BenchRow(
            benchmark=f"SSD training input CPU ms/image ({what})",
            value=train_cpu * 1000,
            unit="CPU ms",
            baseline="decode + resize only",
            baseline_value=decode_cpu * 1000,
            ratio=train_cpu / decode_cpu,
        ),
        BenchRow(
            benchmark=f"SSD training input images/s on {cores} free cores (cores / CPU s per image)",
            value=cores / train_cpu,
            unit="images/s",
            baseline="decode + resize only",
            baseline_value=cores / decode_cpu,
            ratio=decode_cpu / train_cpu,
            target=f">= {TARGET_IMAGES_PER_S:.0f} images/s",
            ok=cores / train_cpu >= TARGET_IMAGES_PER_S,
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(quick=sys.argv[2] == "quick")))
    else:
        for row in run(quick=False):
            print(row)
