"""Shared helpers of the training tests: a tiny SSD spec and a simulated pod eviction."""

from __future__ import annotations

import signal
from pathlib import Path

import keras


def write_tiny_spec(dataset_root, path: Path, **fields) -> Path:
    """Write a resnet10 SSD spec on 64x64 inputs over ``dataset_root`` to ``path``; ``fields``
    are further sample_experiment_spec settings (batch_size, num_epochs, ...)."""
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    path.write_text(
        sample_experiment_spec(
            dataset_root, arch="resnet", nlayers=10, output_width=64, output_height=64, **fields
        )
    )
    return path


class SigtermAfter(keras.callbacks.Callback):
    """Deliver SIGTERM to this process after global batch ``n`` (as a pod eviction would)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.seen = n, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.n:
            signal.raise_signal(signal.SIGTERM)
