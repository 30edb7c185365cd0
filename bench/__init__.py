"""Benchmarks: `make bench` runs every `bench/bench_*.py` and prints one table.

Each module exposes ``run(quick: bool) -> list[BenchRow]``. A row compares a measured figure
with a baseline measured side by side in the same run, and states its target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchRow:
    benchmark: str  # what was measured, e.g. "dataset-convert images/s"
    value: float  # the measured figure
    unit: str  # "images/s", "s", "MiB", ...
    baseline: str = ""  # what it is compared with, e.g. "plain read"
    baseline_value: float | None = None
    ratio: float | None = None  # value / baseline_value (or as the row explains)
    target: str = ""  # e.g. ">= 0.7x", "<= 1 s"
    ok: bool | None = None  # whether the target is met (None: no target)
