"""Start a ``TF_CONFIG`` cluster of worker processes on 127.0.0.1, without a port race.

A port found free by binding port 0 is free only until the socket closes: another process
(another test, another job on the machine) may take it before the worker's gRPC server
binds it, and TensorFlow's server turns ``SO_REUSEPORT`` off, so the port cannot stay
reserved while the worker binds it. So: the ports of one cluster are picked together
(distinct), and a start whose gRPC server could not bind is retried on fresh ports. Every
other failure is returned to the caller as it is.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# What a worker prints when its gRPC server cannot bind its address.
BIND_FAILURES = ("Could not start gRPC server", "Address already in use")


def pick_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (all sockets held while picking)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses: Sequence[str], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}
    )


def run_workers(
    command: Callable[[int], list[str]],
    count: int,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    attempts: int = 3,
    ports: Callable[[int], list[int]] = pick_ports,
) -> tuple[list[int], list[str], int]:
    """Run ``command(index)`` for each worker with its ``TF_CONFIG``; returns the exit
    codes, the outputs (stdout and stderr) and the number of starts it took."""
    for attempt in range(1, attempts + 1):
        addresses = [f"127.0.0.1:{port}" for port in ports(count)]
        codes, outputs = _run_once(command, addresses, env or dict(os.environ), timeout)
        bind_failed = any(
            code != 0 and any(text in output for text in BIND_FAILURES)
            for code, output in zip(codes, outputs, strict=True)
        )
        if not bind_failed or attempt == attempts:
            return codes, outputs, attempt
    raise AssertionError("unreachable")


def _run_once(command, addresses, env, timeout) -> tuple[list[int], list[str]]:
    with tempfile.TemporaryDirectory(prefix="workers-") as tmp:
        logs = [Path(tmp) / f"worker{i}.log" for i in range(len(addresses))]
        procs = []
        for index, log_path in enumerate(logs):
            with open(log_path, "w") as log_file:
                procs.append(
                    subprocess.Popen(
                        command(index),
                        env={**env, "TF_CONFIG": tf_config(addresses, index)},
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        deadline = time.monotonic() + timeout
        try:
            # A worker that failed leaves the others waiting for it in a collective: stop
            # them as soon as one fails.
            while any(p.poll() is None for p in procs):
                if any(p.returncode not in (None, 0) for p in procs):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return [p.returncode for p in procs], [path.read_text() for path in logs]
