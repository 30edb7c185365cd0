"""CLI start-up: ``tlt dataset-convert -d missing.txt`` (a command that never imports
TensorFlow, failing on its first check) next to ``tlt --help`` (the parser alone) and
``tlt ssd evaluate`` on a missing model (a TensorFlow command, same kind of error).

Each is a fresh interpreter, timed wall-clock over a few runs (median), interleaved so that
machine load hits all of them alike; peak memory is the child's ``VmHWM``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import BenchRow

# Runs the CLI in-process and reports the peak RSS on stderr's last line.
_CHILD = """
import sys
from tlt_core.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("VMHWM_KB=" + line.split()[1], file=sys.stderr)
"""

COMMANDS = {
    "tlt --help": ["--help"],
    "tlt dataset-convert (missing spec)": ["dataset-convert", "-d", "missing.txt", "-o", "o/x"],
    "tlt ssd evaluate (missing model)": ["ssd", "evaluate", "-m", "missing.tlt", "-e", "s.txt"],
}


def _run_once(argv: list[str], cwd: Path) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    kb = next(
        (int(x.split("=")[1]) for x in done.stderr.splitlines() if x.startswith("VMHWM_KB=")), 0
    )
    return seconds, kb / 1024.0


def run(quick: bool) -> list[BenchRow]:
    repeats = 2 if quick else 5
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, argv in COMMANDS.items():
                seconds, mib = _run_once(argv, Path(tmp))
                times[name].append(seconds)
                memory[name] = max(memory.get(name, 0.0), mib)
    median = {name: statistics.median(values) for name, values in times.items()}
    help_s = median["tlt --help"]
    convert = "tlt dataset-convert (missing spec)"
    heavy = "tlt ssd evaluate (missing model)"
    return [
        BenchRow("start-up: tlt --help", help_s, "s", target="", ok=None),
        BenchRow(
            f"start-up: {convert}",
            median[convert],
            "s",
            baseline="tlt --help",
            baseline_value=help_s,
            ratio=median[convert] / help_s,
            target="<= 2x --help (no TensorFlow)",
            ok=median[convert] <= 2 * help_s,
        ),
        BenchRow(
            f"start-up: {heavy}",
            median[heavy],
            "s",
            baseline="tlt --help",
            baseline_value=help_s,
            ratio=median[heavy] / help_s,
            target="(TensorFlow command, for reference)",
        ),
        BenchRow(
            f"peak memory: {convert}",
            memory[convert],
            "MiB",
            baseline=heavy,
            baseline_value=memory[heavy],
            ratio=memory[convert] / memory[heavy] if memory[heavy] else None,
            target="(reference)",
        ),
    ]
