"""What the training-throughput benchmarks share: the same compiled model fed by the real
input pipeline and by one of its batches repeated from memory, timed in a child process (so
other benchmarks do not count in its memory), and the row comparing the two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench import BenchRow

SLOWDOWN_TARGET = 1.15


def _fit_seconds(train_model, dataset, steps: int) -> float:
    start = time.perf_counter()
    train_model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def pipeline_and_memory_rates(
    train_model, pipeline: Callable[[], Any], *, batch: int, warmup: int, steps: int
) -> dict[str, float]:
    """Images/s of ``train_model`` fed by ``pipeline()`` and by its first batch repeated."""
    import tensorflow as tf

    x, y = next(iter(pipeline()))
    memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    _fit_seconds(train_model, memory, warmup)  # traces the train step
    _fit_seconds(train_model, pipeline(), warmup)
    t_memory = _fit_seconds(train_model, memory, steps)
    t_pipeline = _fit_seconds(train_model, pipeline(), steps)
    return {"pipeline_ips": steps * batch / t_pipeline, "memory_ips": steps * batch / t_memory}


def run_child(module: str, warmup: int, steps: int) -> dict[str, float]:
    """Run ``python -m module WORK_DIR WARMUP STEPS`` and return the JSON it prints last."""
    with tempfile.TemporaryDirectory(prefix=f"{module.rsplit('.', 1)[-1]}_") as tmp:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [sys.executable, "-m", module, tmp, str(warmup), str(steps)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def slowdown_row(benchmark: str, result: dict[str, float]) -> BenchRow:
    slowdown = result["memory_ips"] / result["pipeline_ips"]
    return BenchRow(
        benchmark=benchmark,
        value=round(result["pipeline_ips"], 2),
        unit="images/s",
        baseline="same model fed in-memory tensors",
        baseline_value=round(result["memory_ips"], 2),
        ratio=round(slowdown, 3),
        target=f"slowdown <= {SLOWDOWN_TARGET}x",
        ok=slowdown <= SLOWDOWN_TARGET,
    )
