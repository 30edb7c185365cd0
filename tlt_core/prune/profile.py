"""What pruning changed in a model, for its report: parameters per layer group and the
latency of one batch on this machine's CPU (Keras), measured before and after side by side."""

from __future__ import annotations

import re
import statistics
import time

import numpy as np

# Layer name -> group: a backbone stage, an SSD extra block or a head family; other
# weighted layers (the stem convolution and its batch norm) are the "stem".
_GROUPS = (
    re.compile(r"^(ssd_conf|ssd_loc)_\d+$"),
    re.compile(r"^(ssd_expand_block_\d+)_"),
    re.compile(r"^(block_\d+)[a-z]?_"),
    re.compile(r"^(inception_\w+?)_"),
    re.compile(r"^(fire\d+)_"),
    re.compile(r"^(expanded_conv)_"),
)


def layer_group(name: str) -> str:
    for pattern in _GROUPS:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return "stem"


def params_by_layer_group(model) -> dict[str, int]:
    """Parameters per layer group, groups in the order their first layer appears."""
    groups: dict[str, int] = {}
    for layer in model.layers:
        count = int(layer.count_params()) if layer.weights else 0
        if count:
            group = layer_group(layer.name)
            groups[group] = groups.get(group, 0) + count
    return groups


def cpu_latency_ms(models: list, input_shape, *, runs: int = 10, warmup: int = 2) -> list[float]:
    """Median milliseconds of ``predict_on_batch`` on one zero image for each model, the
    runs interleaved (model A, B, A, B, ...) so both see the same machine load."""
    batch = np.zeros((1, *input_shape), np.float32)
    for model in models:
        for _ in range(warmup):
            model.predict_on_batch(batch)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(runs):
        for index, model in enumerate(models):
            start = time.perf_counter()
            model.predict_on_batch(batch)
            times[index].append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(t) for t in times]
