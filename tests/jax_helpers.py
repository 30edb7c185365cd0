"""Running a snippet under Keras's JAX backend: the backend is fixed at import, so the snippet
runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_under_jax(script: str, timeout: int = 300) -> dict:
    """Run ``script`` with KERAS_BACKEND=jax on the CPU (skipped without jax) and return the
    JSON object it prints on its last line."""
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    # The repository (``tests.<module>`` imports) and tests/ (what those modules import by
    # their bare names, as pytest's rootdir insertion lets them).
    paths = [str(REPO), str(REPO / "tests"), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
