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


def peak_rss_bytes() -> int:
    """Peak resident memory of this process since it was started.

    ``VmHWM`` of ``/proc/self/status``, not ``getrusage``'s ``ru_maxrss``: the latter
    survives ``exec`` and so reports the parent's peak in a child that a big benchmark
    process started (254 MiB instead of 65 MiB for a conversion run after the others).
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")
