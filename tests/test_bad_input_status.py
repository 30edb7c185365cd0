"""Issue 16, class 5: status.json after SIGTERM keeps one record per finished epoch and a
separate "interrupted at epoch E step S", and stays right after the resume."""

from __future__ import annotations

import json
import logging

import pytest
from train_helpers import SigtermAfter, write_tiny_spec

from tlt_core.stages.train import train
from tlt_core.train.status import StatusWriter

KEY = "key"


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logging.getLogger().handlers.clear()


@pytest.mark.slow  # two real (tiny) training runs: minutes on 2 shared cores
def test_sigterm_mid_epoch_then_resume(sample_dataset, tmp_path):
    spec = write_tiny_spec(
        sample_dataset.root,
        tmp_path / "spec.txt",
        batch_size=8,  # 24 training images: 3 steps per epoch
        num_epochs=2,
        validation_period=10,
    )
    results = tmp_path / "results"
    stopped = train(spec, results, KEY, callbacks=[SigtermAfter(4)])  # epoch 2, step 1
    assert stopped.interrupted and stopped.epochs_completed == 1
    status = json.loads((results / "status.json").read_text())
    assert status["state"] == "interrupted"
    assert [e["epoch"] for e in status["epochs"]] == [1]
    first = status["epochs"][0]
    assert first["steps"] == 3 and first["checkpoint"].endswith("epoch_001.tlt")
    assert status["interrupted"]["epoch"] == 2 and status["interrupted"]["step"] == 1
    assert status["interrupted"]["checkpoint"].endswith("epoch_001_step_00001.tlt")

    resumed = train(spec, results, KEY, model_path=stopped.final_model_path, initial_epoch=1)
    assert not resumed.interrupted
    status = json.loads((results / "status.json").read_text())
    assert status["state"] == "done" and status["interrupted"] is None
    assert [e["epoch"] for e in status["epochs"]] == [1, 2]
    assert status["epochs"][0] == first  # the finished epoch's record is kept as it was


def test_status_writer_keeps_interruption_apart(tmp_path):
    path = tmp_path / "status.json"
    writer = StatusWriter(path, num_epochs=3)
    writer.add_epoch({"epoch": 1, "loss": 1.0})
    writer.interrupt({"epoch": 2, "step": 5, "loss": 0.9})
    data = json.loads(path.read_text())
    assert [e["epoch"] for e in data["epochs"]] == [1]
    assert data["interrupted"] == {"epoch": 2, "step": 5, "loss": 0.9}
    resumed = StatusWriter.resume(path, 3, initial_epoch=1)
    assert resumed.interrupted == {"epoch": 2, "step": 5, "loss": 0.9}
    resumed.add_epoch({"epoch": 2, "loss": 0.8})
    data = json.loads(path.read_text())
    assert [e["epoch"] for e in data["epochs"]] == [1, 2] and data["interrupted"] is None
