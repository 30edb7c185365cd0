"""Quality (slow): a resnet10 classifier trained from scratch on the generated sample data
reaches >= 0.95 top-1 accuracy on its validation split, on CPU, within 10 minutes; a
``tlt classification evaluate`` of the final model agrees with the last validation.

Run: ``.venv/bin/python -m pytest tests/test_classification_quality.py -m slow -n 0 -s``.
The wall-clock bound is loose on a shared machine (timing is noisy; the figure is printed).
"""

from __future__ import annotations

import json
import time

import pytest

from tlt_core.cli import main

KEY = "cls-quality"
MIN_TOP1 = 0.95
MAX_SECONDS = 600


@pytest.mark.slow
def test_resnet10_reaches_095_top1_within_10_minutes(tmp_path):
    data = tmp_path / "data"
    assert main(["sample-data", "--task", "classification", "-o", str(data)]) == 0
    spec = data / "specs" / "classification_train.txt"
    results = tmp_path / "results"
    start = time.monotonic()
    assert main(["classification", "train", "-e", str(spec), "-r", str(results), "-k", KEY]) == 0
    seconds = time.monotonic() - start
    status = json.loads((results / "status.json").read_text())
    history = [(e["epoch"], e["top1_accuracy"]) for e in status["epochs"]]
    print(f"\nclassification quality: {seconds:.0f} s, top-1 per epoch {history}")
    final = history[-1][1]
    assert final >= MIN_TOP1, history
    assert seconds <= MAX_SECONDS, f"{seconds:.0f} s"

    model = results / "weights" / f"resnet10_epoch_{history[-1][0]:03d}.tlt"
    out = tmp_path / "eval"
    argv = ["classification", "evaluate", "-m", str(model), "-e", str(spec), "-k", KEY]
    assert main([*argv, "-o", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["top1_accuracy"] == pytest.approx(final)
