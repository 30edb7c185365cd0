"""The layering written down in pyproject.toml ([tool.importlinter]) holds: shared packages
never import a network's folder, export and evaluation never import training, no cycles
between the layers. Runs ``lint-imports`` as ``make lint`` does, so CI checks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.exists() else (shutil.which("lint-imports") or "lint-imports")


def test_import_contracts_are_kept():
    done = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
