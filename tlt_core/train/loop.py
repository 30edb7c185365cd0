"""What the fit loop (``trainer``) and the distributed loop (``distributed``) share: the loop
context, the per-epoch input, the end-of-epoch step (validate, checkpoint, record) and SIGTERM.

Network-specific parts come from ``ctx.network`` (a ``tlt_core.networks.base.Network``): the
training targets, the checkpoint name stem, the model-file metadata and the primary metric
that validation reports.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

WEIGHTS_DIR = "weights"
EVENTS_DIR = "events"


@dataclass
class TrainOutcome:
    final_model_path: Path | None
    last_epoch: int  # epochs completed (1-based count)
    interrupted: bool
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoopContext:
    network: Any  # tlt_core.networks.base.Network
    spec: Any  # the network's validated spec
    results_dir: Path
    key: str
    settings: Any  # tlt_core.networks.base.TrainingSettings
    model: Any  # the base model (saved in checkpoints)
    train_model: Any
    strategy: Any
    targets: Callable[[Any], tuple]  # network.training_targets(spec, model)
    steps_per_epoch: int
    pruned: bool
    chief: bool
    validate: Callable[[Any], dict[str, Any]] | None  # model -> {metric name: value, ...}
    status: Any
    verbose: int = 0
    extra_callbacks: Sequence[Any] = ()
    input_stats: Any = None  # data.pipeline.InputStats of the current epoch's dataset
    # Stop after this epoch (1-based count) instead of the spec's last, with a checkpoint:
    # the float part of a from-scratch QAT run (stages.train).
    end_epoch: int | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # into every checkpoint

    @property
    def metric_name(self) -> str:
        return self.network.primary_metric.name

    @property
    def stop_epoch(self) -> int:
        return self.settings.num_epochs if self.end_epoch is None else self.end_epoch


def checkpoint_name(network, spec, epoch: int, step: int | None = None) -> str:
    """``<stem>_epoch_<NNN>.tlt`` (epoch 1-based; SSD's stem ``ssd_<arch><nlayers>``);
    ``_step_<SSSSS>`` mid-epoch."""
    base = f"{network.checkpoint_stem(spec)}_epoch_{epoch:03d}"
    return base + (f"_step_{step:05d}" if step else "") + ".tlt"


def model_metadata(
    network, spec, model, *, pruned: bool = False, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a ``.tlt`` carries besides the weights (see ``tlt_core.modelfile``): the shared
    keys, then the network's own."""
    from tlt_core.models.qat import QAT_METADATA_KEY, is_qat_model

    meta = {
        "network": network.name,
        "spec_text": spec.to_text(absolute_paths=True),
        "class_names": list(spec.class_names),
        "input_shape": [int(v) for v in model.inputs[0].shape[1:]],
        **network.model_metadata(spec, model),
        "pruned": bool(pruned),
        QAT_METADATA_KEY: is_qat_model(model),
    }
    meta.update(extra or {})
    return meta


def all_layers(model) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def optimizer_state(optimizer) -> dict[str, np.ndarray]:
    return {f"opt_{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)}


# --- input ----------------------------------------------------------------------------------


def target_dataset(
    network,
    spec,
    *,
    targets: Callable[[Any], tuple],
    batch_size: int,
    seed: int,
    skip_batches: int = 0,
    sources=None,
    stats=None,
):
    """``network.input_pipeline(training=True)`` mapped by ``targets`` to ``(images, y_true)``."""
    import tensorflow as tf

    dataset = network.input_pipeline(
        spec,
        training=True,
        batch_size=batch_size,
        sources=sources,
        repeat=False,
        seed=seed,
        stats=stats,
    )
    if skip_batches:
        dataset = dataset.skip(skip_batches)
        if stats is not None:
            # Read but never given to the model. Every batch but the last is full (decode
            # failures are dropped before batching), so this keeps ``skipped`` exact.
            stats.deliver(min(skip_batches * batch_size, stats.read))
    return dataset.map(targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


IMAGES_METRIC = "images"


def images_metric():
    """A Keras metric counting the images the training model was given in the epoch (its
    result: ``logs[IMAGES_METRIC]``). The fit loop adds it to ``InputStats``: counting in
    the model, not in the dataset, keeps tf.data's maps parallel (see ``InputStats``)."""
    import keras
    from keras import ops

    class ImagesSeen(keras.metrics.Metric):
        def __init__(self, name: str = IMAGES_METRIC, **kwargs) -> None:
            super().__init__(name=name, **kwargs)
            self.count = self.add_variable(
                shape=(), initializer="zeros", dtype="int64", aggregation="sum", name="count"
            )

        def update_state(self, y_true, y_pred, sample_weight=None) -> None:
            self.count.assign_add(ops.cast(ops.shape(y_pred)[0], "int64"))

        def result(self):
            return self.count

    return ImagesSeen()


def epoch_dataset(ctx: LoopContext, epoch: int, *, batch_size: int, skip_batches: int):
    """Seed Keras for ``epoch`` and return that epoch's training batches (the same for the
    fit loop and the distributed loop, so a resumed or distributed run sees the same data)."""
    import keras

    from tlt_core.data.pipeline import InputStats

    if ctx.settings.seed is not None:
        keras.utils.set_random_seed(ctx.settings.seed + epoch)
    # A fresh count per epoch: after the epoch's pass its ``skipped`` is exact, and
    # finish_epoch reports it (log and status.json) instead of dropping images silently.
    ctx.input_stats = InputStats()
    return target_dataset(
        ctx.network,
        ctx.spec,
        stats=ctx.input_stats,
        targets=ctx.targets,
        batch_size=batch_size,
        seed=(ctx.settings.seed or 0) + epoch,
        skip_batches=skip_batches,
    )


# --- SIGTERM ----------------------------------------------------------------------------------


class Preemption:
    """SIGTERM sets a flag; the training callback stops after the current batch."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, _frame) -> None:
        log.warning("received signal %d: checkpointing after the current batch", signum)
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[Preemption]:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, training runs as usual
            self._previous = None
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, self._previous)


# --- end of epoch -----------------------------------------------------------------------------


def finish_epoch(
    ctx: LoopContext,
    epoch: int,
    *,
    steps: int,
    loss: float,
    lr: float,
    started: float,
    preempted: bool,
    state: dict,
    optimizer,
    model=None,
) -> dict[str, Any]:
    """End of epoch ``epoch`` (0-based) after ``steps`` steps: validate, checkpoint, record.

    Shared by the ``fit`` loop and the distributed loop. ``model`` is the model validated and
    saved (default ``ctx.model``). Validation, checkpoints and ``status.json`` are the
    chief's; every worker returns (and keeps in ``state["history"]``) the same record.
    """
    from tlt_core.io_utils import write_text_atomic
    from tlt_core.modelfile import save_model

    metric = ctx.metric_name
    model = ctx.model if model is None else model
    done = epoch + 1
    partial = preempted and steps < ctx.steps_per_epoch
    record: dict[str, Any] = {
        "epoch": done,
        "loss": float(loss),
        "lr": lr,
        metric: None,
        "time_s": round(time.time() - started, 3),
        "steps": steps,
    }
    if (
        ctx.chief
        and not partial
        and ctx.validate is not None
        and _validation_due(ctx.settings, done)
    ):
        result = dict(ctx.validate(model))
        skipped = result.pop("skipped_images", 0)
        record.update(result)
        if skipped:
            record["skipped_validation_images"] = skipped
    # A partial epoch left images unread by the model: no count of skipped ones.
    if ctx.input_stats is not None and not partial:
        record["skipped_images"] = ctx.input_stats.skipped
        if record["skipped_images"]:
            log.warning(
                "epoch %d: %d training image(s) skipped (failed to decode)",
                epoch + 1,
                record["skipped_images"],
            )
    save = (
        partial
        or preempted
        or done % ctx.settings.checkpoint_interval == 0
        or done == ctx.settings.num_epochs
        or done == ctx.end_epoch
    )
    if save and ctx.chief:
        name = (
            checkpoint_name(ctx.network, ctx.spec, epoch, steps)
            if partial
            else checkpoint_name(ctx.network, ctx.spec, done)
        )
        path = ctx.results_dir / WEIGHTS_DIR / name
        meta = model_metadata(
            ctx.network,
            ctx.spec,
            model,
            pruned=ctx.pruned,
            extra={
                **ctx.extra_metadata,
                "epoch": epoch if partial else done,
                "step": steps if partial else 0,
            },
        )
        save_model(path, model, ctx.key, meta, training_state=optimizer_state(optimizer))
        for file_name, text in ctx.network.model_companion_files(meta["class_names"]).items():
            write_text_atomic(path.parent / file_name, text)
        state["last_checkpoint"] = path
        ctx.status.last_checkpoint = str(path.relative_to(ctx.results_dir))
        record["checkpoint"] = ctx.status.last_checkpoint
    if partial:
        # Not a finished epoch: status.json keeps it apart ("interrupted"), so the record of
        # the last finished epoch is never overwritten and a resume adds the real one.
        record["epoch"] = epoch + 1
        record["step"] = steps
        if ctx.chief:
            ctx.status.interrupt(record)
    else:
        state["history"].append(record)
        if ctx.chief:
            ctx.status.add_epoch(record)
    log.info(
        "epoch %d/%d%s: loss %.4f, lr %.3g%s, %.1f s",
        epoch + 1,
        ctx.settings.num_epochs,
        f" (interrupted at step {steps})" if partial else "",
        record["loss"],
        lr,
        f", {metric} {record[metric]:.4f}" if record[metric] is not None else "",
        record["time_s"],
    )
    return record


def _validation_due(settings, done: int) -> bool:
    """After epoch ``done``: from ``first_validation_epoch`` every ``validation_period``
    epochs, and after the last epoch."""
    if done == settings.num_epochs:
        return True
    first = max(int(getattr(settings, "first_validation_epoch", 1)), 1)
    if first == 1:
        return done % settings.validation_period == 0
    return done >= first and (done - first) % settings.validation_period == 0
