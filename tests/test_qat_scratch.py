"""QAT from scratch (issue 14): float with BN live, then BN folded and QAT, in one run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from train_helpers import write_tiny_spec

from tlt_core import modelfile
from tlt_core.data.sample import generate_sample_data
from tlt_core.errors import SpecError
from tlt_core.models import qat
from tlt_core.networks.ssd.spec import load_experiment
from tlt_core.stages.train import train

KEY = "test-key"


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logging.getLogger().handlers.clear()


def _train_logging(spec, results_dir, **kwargs):
    """``train(...)`` and the INFO messages the train stage logged meanwhile."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Keep(logging.INFO)
    logger = logging.getLogger("tlt_core.stages.train")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        result = train(spec, results_dir, KEY, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return result, messages


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    """3 epochs (2 float, 1 QAT) of a tiny SSD from random weights, every epoch saved."""
    root = tmp_path_factory.mktemp("data")
    generate_sample_data(root, num_train=16, num_val=4, seed=1, width=160, height=120)
    out = tmp_path_factory.mktemp("scratch")
    spec = write_tiny_spec(root, out / "spec.txt", batch_size=8, num_epochs=3, validation_period=10)
    load_experiment(spec).with_overrides(
        {"training_config.enable_qat": True, "training_config.checkpoint_interval": 1}
    ).save(spec)
    result, messages = _train_logging(spec, out / "full")
    return spec, result, messages


def test_switch_epoch_is_nine_tenths_with_one_epoch_each_side():
    assert [qat.scratch_switch_epoch(n) for n in (2, 3, 4, 6, 80)] == [1, 2, 3, 5, 72]


def test_float_epochs_then_qat_epochs_in_one_run(scratch_run):
    spec, result, messages = scratch_run
    assert not result.interrupted and result.epochs_completed == 3
    switches = [m for m in messages if m.startswith("epoch 2: switching to quantization-aware")]
    assert len(switches) == 1, messages
    weights = result.results_dir / "weights"
    kinds = []
    for epoch in (1, 2, 3):
        model, meta = modelfile.load_model(weights / f"ssd_resnet10_epoch_{epoch:03d}.tlt", KEY)
        assert meta[qat.QAT_METADATA_KEY] == qat.is_qat_model(model)
        assert meta[qat.SWITCH_METADATA_KEY] == 2 and meta["epoch"] == epoch
        kinds.append(qat.is_qat_model(model))
        has_bn = any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)
        assert has_bn != kinds[-1]  # float: BN live; QAT: BN folded
    assert kinds == [False, False, True]
    status = json.loads(result.status_path.read_text())
    assert status["state"] == "done" and [e["epoch"] for e in status["epochs"]] == [1, 2, 3]
    losses = [e["loss"] for e in status["epochs"]]
    assert np.isfinite(losses).all(), losses
    # The QAT epoch runs Adam at QAT_RATE_FACTOR of the spec's schedule (annealed to its
    # minimum, 1e-4, at the end): SGD's rates diverge under Adam.
    assert status["epochs"][-1]["lr"] == pytest.approx(1e-4 * qat.QAT_RATE_FACTOR, rel=1e-3)
    assert status["epochs"][-1]["mAP"] is not None  # validated after the last epoch
    assert status["last_checkpoint"] == "weights/ssd_resnet10_epoch_003.tlt"
    events = sorted((result.results_dir / "events").rglob("*tfevents*"))
    assert events

    from tlt_core.stages.evaluate import evaluate

    evaluated = evaluate(result.final_model_path, spec, KEY)
    assert 0.0 <= evaluated.mAP <= 1.0


def test_resume_at_the_switch_matches_the_uninterrupted_run(scratch_run, tmp_path):
    """The float checkpoint of the switch epoch, resumed: BN folded on loading, a fresh Adam
    on the schedule's step, as the uninterrupted run did at its switch."""
    spec, result, _ = scratch_run
    switch = result.results_dir / "weights" / "ssd_resnet10_epoch_002.tlt"
    resumed = train(spec, tmp_path / "r", KEY, model_path=switch, initial_epoch=2)
    assert resumed.epochs_completed == 3 and not resumed.interrupted
    _assert_same_weights(result.final_model_path, resumed.final_model_path)


@pytest.mark.slow
def test_resume_before_the_switch_crosses_it(scratch_run, tmp_path):
    spec, result, _ = scratch_run
    first = result.results_dir / "weights" / "ssd_resnet10_epoch_001.tlt"
    resumed = train(spec, tmp_path / "r", KEY, model_path=first, initial_epoch=1)
    assert [r["epoch"] for r in resumed.history] == [2, 3]
    _, meta = modelfile.load_model(tmp_path / "r" / "weights" / "ssd_resnet10_epoch_002.tlt", KEY)
    assert meta[qat.QAT_METADATA_KEY] is False
    _assert_same_weights(result.final_model_path, resumed.final_model_path)


def test_too_few_epochs_from_scratch_is_a_located_error(tmp_path, capsys):
    from tlt_core.cli import main

    root = tmp_path / "data"
    generate_sample_data(root, num_train=2, num_val=1, seed=1, width=160, height=120)
    spec = write_tiny_spec(root, tmp_path / "spec.txt", num_epochs=1)
    spec.write_text(spec.read_text().replace("enable_qat: false", "enable_qat: true"))
    code = main(["ssd", "train", "-e", str(spec), "-r", str(tmp_path / "r"), "-k", KEY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert f"{spec}: training_config.enable_qat: quantization-aware training from" in err[-1]
    assert "training_config.num_epochs must be >= 2, got 1" in err[-1]
    assert not (tmp_path / "r" / "weights").exists()


def _assert_same_weights(a_path: Path, b_path: Path) -> None:
    a, _ = modelfile.load_model(a_path, KEY)
    b, _ = modelfile.load_model(b_path, KEY)
    assert qat.is_qat_model(a) and qat.is_qat_model(b)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)


def test_classification_from_scratch_through_the_shared_stage(tmp_path, capsys):
    """Classification has no enable_qat field: ``--enable_qat``, same float-then-QAT run."""
    from tlt_core.cli import main
    from tlt_core.networks.classification.sample import (
        generate_classification_sample,
        sample_spec,
    )

    data = tmp_path / "data"
    generate_classification_sample(data, num_train=20, num_val=10, seed=1)
    spec = tmp_path / "spec.txt"
    spec.write_text(sample_spec(data, input_size=32, n_epochs=1, batch_size=8))
    args = ["classification", "train", "-e", str(spec), "-k", KEY, "--enable_qat"]
    assert main([*args, "-r", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{spec}: --enable_qat: " in err and "train_config.n_epochs must be >= 2, got 1" in err
    spec.write_text(sample_spec(data, input_size=32, n_epochs=2, batch_size=8))
    results = tmp_path / "r"
    assert main([*args, "-r", str(results)]) == 0
    kinds = []
    for epoch in (1, 2):
        model, meta = modelfile.load_model(
            results / "weights" / f"resnet10_epoch_00{epoch}.tlt", KEY
        )
        assert meta[qat.QAT_METADATA_KEY] == qat.is_qat_model(model)
        kinds.append(qat.is_qat_model(model))
    assert kinds == [False, True]
    status = json.loads((results / "status.json").read_text())
    assert status["state"] == "done" and np.isfinite([e["loss"] for e in status["epochs"]]).all()
    assert 0.0 <= status["epochs"][-1]["top1_accuracy"] <= 1.0


def test_fine_tune_from_a_float_model_runs_adam_at_the_fine_tune_factor(scratch_run, tmp_path):
    """000's flow: the float model's own spec, ``enable_qat: true``, ``-m`` a trained float
    model. Adam at the spec's SGD rates wrecked the sample SSD (mAP 0.00); at
    QAT_RATE_FACTOR of them it scored 95.13 against the float model's 95.00
    (scripts/int8_accuracy.py, 20 epochs)."""
    spec, result, _ = scratch_run
    float_model = result.results_dir / "weights" / "ssd_resnet10_epoch_002.tlt"
    fine = load_experiment(spec).with_overrides({"training_config.num_epochs": 1})
    fine_spec = fine.save(tmp_path / "fine.txt")
    tuned = train(fine_spec, tmp_path / "ft", KEY, model_path=float_model)
    model, meta = modelfile.load_model(tuned.final_model_path, KEY)
    assert qat.is_qat_model(model) and meta[qat.QAT_METADATA_KEY] is True
    assert qat.SWITCH_METADATA_KEY not in meta or meta[qat.SWITCH_METADATA_KEY] is None
    epoch = json.loads(tuned.status_path.read_text())["epochs"][0]
    # One epoch: the schedule ends at the spec's minimum rate, 1e-4.
    assert epoch["lr"] == pytest.approx(1e-4 * qat.QAT_RATE_FACTOR, rel=1e-3)
    assert np.isfinite(epoch["loss"])


def test_a_freshly_pruned_model_retrains_float_then_qat(scratch_run, tmp_path):
    """000's flow, prune then retrain with enable_qat: the pruned model has lost its accuracy,
    so the run retrains it float first (BN live, the spec's optimizer) and switches to QAT
    for the last epochs, as from scratch; a retrained checkpoint fine-tunes directly."""
    from tlt_core.stages.prune import prune

    spec, result, _ = scratch_run
    float_model = result.results_dir / "weights" / "ssd_resnet10_epoch_002.tlt"
    pruned = prune(float_model, tmp_path / "pruned.tlt", KEY, threshold=0.3).output_path
    retrained, messages = _train_logging(spec, tmp_path / "re", model_path=pruned)
    expected = "quantization-aware training of a pruned model: float (BN live) for epochs 1-2"
    assert any(m.startswith(expected) for m in messages), messages
    kinds = []
    for epoch in (1, 2, 3):
        path = retrained.results_dir / "weights" / f"ssd_resnet10_epoch_{epoch:03d}.tlt"
        model, meta = modelfile.load_model(path, KEY)
        assert meta[qat.SWITCH_METADATA_KEY] == 2 and meta["pruned"]
        kinds.append(qat.is_qat_model(model))
    assert kinds == [False, False, True]
    one_epoch = load_experiment(spec).with_overrides({"training_config.num_epochs": 1})
    with pytest.raises(SpecError, match="a pruned model, not yet retrained, trains float"):
        train(one_epoch.save(tmp_path / "one.txt"), tmp_path / "one", KEY, model_path=pruned)
