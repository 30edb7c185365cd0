"""What a local (kfp.local) run shows on the terminal, and where the rest goes.

kfp.local prints every task's executor input and outputs and streams its whole output,
TensorFlow's C++ log included: hundreds of lines for one run. Here each task's output goes
to ``<log_dir>/<task>.log`` in full; the terminal gets one line when a task starts and one
when it ends (with its time), the lines a person follows (training epochs, the quality
gate, warnings and errors of this project's code) and, when a task fails, the end of its
log. ``verbose`` shows everything as well.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

# Lines of a task's output worth a person's attention while the run goes on.
_SHOWN = re.compile(
    r"\bepoch \d+/\d+|quality gate:"
    r"|^\S+ (WARNING|ERROR|CRITICAL) (tlt_core|pipelines|components)"
    r"|^\[KFP Executor [^\]]* (WARNING|ERROR|CRITICAL)\]"
)
# How the KFP executor formats a component's log records: shown as "time [level] message".
_KFP_RECORD = re.compile(r"^\[KFP Executor \S+ (\S+?)(?:,\d+)? (\w+)\]: (.*)$")
# TensorFlow's C++ logging (E0000 00:00:... file.cc:123] ...): in the task log only.
_TF_NATIVE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]")
_TAIL_ON_FAILURE = 15


@dataclass
class TaskTiming:
    task: str
    seconds: float
    ok: bool


@dataclass
class RunLog:
    """Where the task logs went and how long each task took."""

    log_dir: Path
    timings: list[TaskTiming] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        if not self.timings:
            return []
        width = max(len(t.task) for t in self.timings)
        lines = [f"stage timings (full logs in {self.log_dir}):"]
        for t in self.timings:
            state = "" if t.ok else "  FAILED"
            lines.append(f"  {t.task:<{width}}  {_duration(t.seconds):>8}{state}")
        return lines


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


class _TaskStream(io.TextIOBase):
    """A text stream that writes every line to the task's log file and shows some."""

    def __init__(self, task: str, log_file: TextIO, terminal: TextIO, verbose: bool):
        self.task, self.log_file, self.terminal, self.verbose = task, log_file, terminal, verbose
        self.pending = ""
        self.tail: deque[str] = deque(maxlen=_TAIL_ON_FAILURE)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log_file.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.log_file.flush()
        self.terminal.flush()

    def close_lines(self) -> None:
        if self.pending:
            self._line(self.pending)
            self.pending = ""

    def _line(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        self.tail.append(stripped)
        if self.verbose:
            self.terminal.write(line + "\n")
        elif _SHOWN.search(stripped) and not _TF_NATIVE.match(stripped):
            self.terminal.write(f"    {self.task}: {_readable(stripped)}\n")


def _readable(line: str) -> str:
    record = _KFP_RECORD.match(line)
    if record is None:
        return line
    clock, level, message = record.groups()
    return f"{clock} {message}" if level == "INFO" else f"{clock} {level} {message}"


@contextlib.contextmanager
def routed_task_logs(
    log_dir: Path, *, verbose: bool = False, terminal: TextIO | None = None
) -> Iterator[RunLog]:
    """Route the output of the kfp.local tasks run inside this block (see the module doc)."""
    from kfp.local import executor_input_utils, task_dispatcher

    terminal = terminal or sys.stderr
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    run_log = RunLog(log_dir)
    original = task_dispatcher.run_single_task_implementation

    def run_task(*args, **kwargs):
        component = kwargs.get("component_name", args[1] if len(args) > 1 else "task")
        task = executor_input_utils.get_local_task_resource_name(component)
        path = log_dir / f"{task}.log"
        terminal.write(f"{time.strftime('%H:%M:%S')} start {task}\n")
        terminal.flush()
        start = time.time()
        ok = False
        with open(path, "w") as log_file:
            stream = _TaskStream(task, log_file, terminal, verbose)
            try:
                with contextlib.redirect_stdout(stream):
                    outputs, status = original(*args, **kwargs)
                ok = getattr(status, "name", str(status)).upper() == "SUCCESS"
                return outputs, status
            finally:
                stream.close_lines()
                seconds = time.time() - start
                run_log.timings.append(TaskTiming(task, seconds, ok))
                if ok:
                    terminal.write(
                        f"{time.strftime('%H:%M:%S')} done  {task} ({_duration(seconds)})\n"
                    )
                else:
                    terminal.write(
                        f"{time.strftime('%H:%M:%S')} FAILED {task} after {_duration(seconds)}; "
                        f"end of {path}:\n"
                    )
                    if not verbose:
                        terminal.writelines(f"    | {line}\n" for line in stream.tail)
                terminal.flush()

    task_dispatcher.run_single_task_implementation = run_task
    try:
        with open(log_dir / "pipeline.log", "w") as pipeline_log:
            outer = _TaskStream("pipeline", pipeline_log, terminal, verbose)
            with contextlib.redirect_stdout(outer):
                yield run_log
            outer.close_lines()
    finally:
        task_dispatcher.run_single_task_implementation = original
