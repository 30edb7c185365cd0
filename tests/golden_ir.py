"""Golden files of the compiled pipeline IR (``tests/golden/<pipeline>.yaml``).

The IR is compiled with the default target matrix and Secret names, and normalised: the
KFP SDK version is dropped (it changes with every kfp release, not with this project) and
the YAML documents are re-dumped with sorted keys. ``make golden`` rewrites the files; the
diff is then reviewed like code.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

GOLDEN_DIR = Path(__file__).parent / "golden"
VERSION_FIELDS = ("sdkVersion",)


def normalised_ir(name: str) -> str:
    from pipelines.compile import compile_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = compile_pipeline(name, Path(tmp) / f"{name}.yaml")
        documents = list(yaml.safe_load_all(path.read_text()))
    for document in documents:
        for key in VERSION_FIELDS:
            document.pop(key, None)
    return yaml.safe_dump_all(documents, sort_keys=True, width=100)


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.yaml"


def write_all() -> list[Path]:
    from pipelines.compile import PIPELINES

    GOLDEN_DIR.mkdir(exist_ok=True)
    written = []
    for name in PIPELINES:
        path = golden_path(name)
        path.write_text(normalised_ir(name))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
    sys.exit(0)
