"""The SSD training loop: Keras ``fit`` one epoch at a time, with TLT's checkpoints.

Why one ``fit`` call per epoch: each epoch's input pipeline is built after seeding with
``random_seed + epoch``, so epoch ``e`` sees the same shuffle and augmentation whether the
run started at epoch 0 or resumed at ``e``; a checkpoint written on SIGTERM in the middle of
an epoch records the step, and resuming skips exactly those batches. Together with the
optimizer state saved in the checkpoint, an interrupted and resumed run ends with the weights
of an uninterrupted one.

Per epoch: the learning rate follows the soft-start annealing schedule (scaled by the number
of replicas), a checkpoint ``weights/ssd_<arch><n>_epoch_<NNN>.tlt`` is sealed every
``checkpoint_interval`` epochs, validation mAP is computed every
``validation_period_during_training`` epochs, TensorBoard events go to ``events/`` and
``status.json`` is rewritten.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.errors import ModelFileError, UsageError

log = logging.getLogger(__name__)

WEIGHTS_DIR = "weights"
EVENTS_DIR = "events"
MOMENTUM = 0.9  # TLT's SGD momentum for SSD
# BatchNorm moving-average momentum while training. Keras' 0.99 averages over ~100 steps:
# fine for TLT's 80 epochs of thousands of images, but in a short run the moving statistics
# lag the fast-changing weights and inference-mode outputs (validation, export) are garbage
# while training-mode loss is low. 0.9 (a ~10-step horizon) keeps them in step.
BATCHNORM_MOMENTUM = 0.9


@dataclass(frozen=True)
class TrainingSettings:
    """The resolved ``training_config`` / ``eval_config`` numbers the loop needs."""

    batch_size_per_replica: int
    num_epochs: int
    min_lr: float
    max_lr: float
    soft_start: float
    annealing: float
    checkpoint_interval: int
    validation_period: int
    seed: int | None

    @classmethod
    def from_experiment(cls, experiment) -> TrainingSettings:
        training, evaluation = experiment.training, experiment.eval
        return cls(
            batch_size_per_replica=int(training.batch_size_per_gpu),
            num_epochs=int(training.num_epochs),
            min_lr=float(training.min_learning_rate),
            max_lr=float(training.max_learning_rate),
            soft_start=float(training.soft_start),
            annealing=float(training.annealing),
            checkpoint_interval=max(int(training.checkpoint_interval), 1),
            validation_period=max(int(evaluation.validation_period_during_training), 1),
            seed=int(experiment.random_seed) if experiment.random_seed else None,
        )


@dataclass
class TrainOutcome:
    final_model_path: Path | None
    last_epoch: int  # epochs completed (1-based count)
    interrupted: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_name(experiment, epoch: int, step: int | None = None) -> str:
    """``ssd_<arch><nlayers>_epoch_<NNN>.tlt`` (epoch 1-based); ``_step_<SSSSS>`` mid-epoch."""
    config = experiment.proto.ssd_config
    nlayers = config.nlayers if config.HasField("nlayers") else ""
    base = f"ssd_{config.arch}{nlayers}_epoch_{epoch:03d}"
    return base + (f"_step_{step:05d}" if step else "") + ".tlt"


def model_metadata(
    experiment, model, *, pruned: bool = False, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a ``.tlt`` carries besides the weights (see ``tlt_core.modelfile``)."""
    from tlt_core.models.ssd import ssd_feature_map_sizes

    config = experiment.proto.ssd_config
    meta = {
        "network": "ssd",
        "arch": config.arch,
        "nlayers": int(config.nlayers) if config.HasField("nlayers") else None,
        "spec_text": experiment.to_text(absolute_paths=True),
        "class_names": list(experiment.class_names),
        "anchor_spec": experiment.anchors.to_dict(),
        "input_shape": [int(v) for v in model.inputs[0].shape[1:]],
        "feature_map_sizes": [list(s) for s in ssd_feature_map_sizes(model)],
        "image_mean_bgr": list(experiment.image_mean_bgr),
        "pruned": bool(pruned),
    }
    meta.update(extra or {})
    return meta


# --- strategy --------------------------------------------------------------------------------


def check_tf_config(text: str | None) -> dict:
    """``TF_CONFIG`` parsed, or a UsageError naming the variable: TensorFlow itself fails on
    a malformed value with a bare JSON or KeyError deep in the strategy's start-up."""
    import json

    try:
        config = json.loads(text or "")
    except ValueError as error:
        raise UsageError(f"TF_CONFIG: not JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise UsageError('TF_CONFIG: expected {"cluster": {...}, "task": {...}}')
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UsageError('TF_CONFIG: "task" needs "type" and "index"')
    return config


def build_strategy(gpus: int, gpu_index: Sequence[int] | None, multi_worker: bool):
    """Default, Mirrored (``gpus`` > 1) or MultiWorkerMirrored (``TF_CONFIG`` set) strategy."""
    import os

    import tensorflow as tf

    if multi_worker:
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if gpus > 1 or (gpu_index and len(gpu_index) > 1):
        found = tf.config.list_physical_devices("GPU")
        indices = list(gpu_index) if gpu_index else list(range(gpus))
        cpus = tf.config.list_logical_devices("CPU")
        if not found and not gpu_index and len(cpus) >= gpus:
            # No GPU, but the process split its CPU into logical devices
            # (tf.config.set_logical_device_configuration): one replica per device.
            log.warning("no GPU: %d replicas on logical CPU devices", gpus)
            return tf.distribute.MirroredStrategy(devices=[d.name for d in cpus[:gpus]])
        if len(indices) != max(gpus, len(indices)) or any(i >= len(found) for i in indices):
            raise UsageError(
                f"--gpus {gpus} --gpu_index {indices}: this machine has {len(found)} GPU(s)"
            )
        return tf.distribute.MirroredStrategy(devices=[f"/gpu:{i}" for i in indices])
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", "master") or (
        resolver.task_type == "worker" and int(resolver.task_id or 0) == 0
    )


# --- model -----------------------------------------------------------------------------------


def set_kernel_regularizer(model, regularizer) -> None:
    """Apply ``regularizer`` (or none) to every conv/dense kernel of a built model."""
    for layer in _all_layers(model):
        for attr in ("kernel", "depthwise_kernel"):
            variable = getattr(layer, attr, None)
            if variable is None or not hasattr(variable, "regularizer"):
                continue
            variable.regularizer = regularizer
            if hasattr(layer, f"{attr}_regularizer"):
                setattr(layer, f"{attr}_regularizer", regularizer)


def set_batchnorm_momentum(model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNormalization layer; returns the count."""
    import keras

    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            count += 1
    return count


def _all_layers(model) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _output_classes(model) -> int:
    from tlt_core.inference_runner import split_outputs

    conf, _ = split_outputs(model.outputs if not isinstance(model.output, dict) else model.output)
    return int(conf.shape[-1]) - 1


def initial_model(experiment, num_classes: int, regularizer, source=None, *, path=None):
    """The model training starts from: built from the spec, or from a loaded ``.tlt``.

    A loaded model is used as it is (weights and, for a pruned model, its pruned shape) when
    its input shape and class count match the spec; otherwise a model is built from the
    spec and every layer whose name and weight shapes match is copied (transfer learning):
    the class heads ``ssd_conf_*`` are re-initialised when the class count differs.
    """
    from tlt_core.models.ssd import build_ssd

    if source is None:
        return build_ssd(experiment, num_classes, kernel_regularizer=regularizer)
    source_model, source_meta = source
    same_input = tuple(int(v) for v in source_model.inputs[0].shape[1:]) == tuple(
        experiment.input_shape
    )
    source_classes = _output_classes(source_model)
    if same_input and source_classes == num_classes:
        set_kernel_regularizer(source_model, regularizer)
        return source_model
    if source_meta.get("pruned"):
        raise ModelFileError(
            f"{path}: pruned model has {source_classes} classes and input "
            f"{list(source_model.inputs[0].shape[1:])}; the spec asks for {num_classes} classes "
            f"and input {list(experiment.input_shape)}: a pruned model keeps its shape"
        )
    model = build_ssd(experiment, num_classes, kernel_regularizer=regularizer)
    copied, skipped = 0, []
    source_layers = {layer.name: layer for layer in _all_layers(source_model)}
    for layer in _all_layers(model):
        other = source_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            copied += 1
        else:
            skipped.append(layer.name)
    if source_classes != num_classes:
        log.warning(
            "%s: pretrained model has %d classes, the spec %d: classification heads "
            "(ssd_conf_*) re-initialised",
            path,
            source_classes,
            num_classes,
        )
    log.info(
        "transfer learning from %s: %d layers copied, %d re-initialised%s",
        path,
        copied,
        len(skipped),
        f" ({', '.join(skipped[:8])}{'...' if len(skipped) > 8 else ''})" if skipped else "",
    )
    return model


def training_model(model):
    """The base model with ``conf`` and ``loc`` concatenated for ``SsdLoss``."""
    import keras

    from tlt_core.inference_runner import split_outputs

    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    conf, loc = split_outputs(model(inputs))
    output = keras.layers.Concatenate(axis=-1, dtype="float32", name="ssd_train_output")(
        [conf, loc]
    )
    return keras.Model(inputs, output, name="ssd_train")


def optimizer_state(optimizer) -> dict[str, np.ndarray]:
    return {f"opt_{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)}


def restore_optimizer_state(optimizer, variables, state: dict[str, np.ndarray]) -> bool:
    """Assign saved optimizer variables; False (and a warning) if they do not line up."""
    optimizer.build(variables)
    saved = [state[k] for k in sorted(k for k in state if k.startswith("opt_"))]
    current = optimizer.variables
    if len(saved) != len(current) or any(
        tuple(s.shape) != tuple(c.shape) for s, c in zip(saved, current, strict=True)
    ):
        log.warning("checkpoint optimizer state does not match this model: starting it fresh")
        return False
    for variable, value in zip(current, saved, strict=True):
        variable.assign(value)
    return True


# --- input ----------------------------------------------------------------------------------


def epoch_dataset(ctx, epoch: int, *, batch_size: int, skip_batches: int):
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
        ctx.experiment,
        anchors=ctx.anchors,
        num_classes=ctx.num_classes,
        batch_size=batch_size,
        seed=(ctx.settings.seed or 0) + epoch,
        skip_batches=skip_batches,
        stats=ctx.input_stats,
    )


def target_dataset(
    experiment,
    *,
    anchors: np.ndarray,
    num_classes: int,
    batch_size: int,
    seed: int,
    skip_batches: int = 0,
    sources=None,
    stats=None,
):
    """``build_dataset(training=True)`` mapped to ``(image, y_true [B, A, 5])`` for SsdLoss."""
    import tensorflow as tf

    from tlt_core.boxes.coding import encode_batch
    from tlt_core.data.pipeline import build_dataset

    height, width = experiment.input_shape[0], experiment.input_shape[1]
    variances = tuple(experiment.anchors.variances)
    scale = tf.constant([width, height, width, height], tf.float32)

    def to_targets(batch):
        boxes = batch["boxes"] / scale
        cls, loc = encode_batch(boxes, batch["classes"], anchors, variances, num_classes)
        y_true = tf.concat([tf.cast(cls, tf.float32)[..., None], loc], axis=-1)
        return batch["image"], y_true

    dataset = build_dataset(
        experiment,
        training=True,
        batch_size=batch_size,
        sources=sources,
        repeat=False,
        seed=seed,
        stats=stats,
    )
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    return dataset.map(to_targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


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


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class LoopContext:
    experiment: Any
    results_dir: Path
    key: str
    settings: TrainingSettings
    model: Any  # the base model (saved in checkpoints)
    train_model: Any
    strategy: Any
    anchors: np.ndarray
    num_classes: int
    steps_per_epoch: int
    pruned: bool
    chief: bool
    validate: Callable[[Any], dict[str, Any]] | None
    status: Any
    verbose: int = 0
    extra_callbacks: Sequence[Any] = ()
    input_stats: Any = None  # data.pipeline.InputStats of the current epoch's dataset


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
    from tlt_core.modelfile import save_model

    model = ctx.model if model is None else model
    done = epoch + 1
    partial = preempted and steps < ctx.steps_per_epoch
    record: dict[str, Any] = {
        "epoch": done,
        "loss": float(loss),
        "lr": lr,
        "mAP": None,
        "time_s": round(time.time() - started, 3),
        "steps": steps,
    }
    if (
        ctx.chief
        and not partial
        and ctx.validate is not None
        and (done % ctx.settings.validation_period == 0 or done == ctx.settings.num_epochs)
    ):
        result = ctx.validate(model)
        record["mAP"] = result["mAP"]
        record["AP"] = result.get("AP")
        if result.get("skipped_images"):
            record["skipped_validation_images"] = result["skipped_images"]
    if ctx.input_stats is not None:
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
    )
    if save and ctx.chief:
        name = (
            checkpoint_name(ctx.experiment, epoch, steps)
            if partial
            else checkpoint_name(ctx.experiment, done)
        )
        path = ctx.results_dir / WEIGHTS_DIR / name
        meta = model_metadata(
            ctx.experiment,
            model,
            pruned=ctx.pruned,
            extra={"epoch": epoch if partial else done, "step": steps if partial else 0},
        )
        save_model(path, model, ctx.key, meta, training_state=optimizer_state(optimizer))
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
        f", mAP {record['mAP']:.4f}" if record["mAP"] is not None else "",
        record["time_s"],
    )
    return record


def _make_callbacks(ctx: LoopContext, preemption: Preemption, tensorboard, state: dict):
    import keras

    class EpochCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["epoch_start"] = time.time()
            state["steps"] = state.get("skip", 0)

        def on_train_batch_end(self, batch, logs=None):
            state["steps"] += 1
            if preemption.requested:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            optimizer = self.model.optimizer
            lr = float(np.asarray(optimizer.learning_rate))
            logs["learning_rate"] = lr
            record = finish_epoch(
                ctx,
                epoch,
                steps=state["steps"],
                loss=float(logs.get("loss", math.nan)),
                lr=lr,
                started=state["epoch_start"],
                preempted=preemption.requested,
                state=state,
                optimizer=optimizer,
            )
            if record["mAP"] is not None:
                logs["val_mAP"] = record["mAP"]

    callbacks = [*ctx.extra_callbacks, EpochCallback()]
    if tensorboard is not None:
        callbacks.append(tensorboard)
    return callbacks


def run_loop(ctx: LoopContext, initial_epoch: int, resume_step: int) -> TrainOutcome:
    """Train from ``initial_epoch`` (skipping ``resume_step`` batches of it) to the end.

    More than one replica or worker: the custom distributed loop
    (``tlt_core.train.distributed``); otherwise Keras ``fit`` one epoch at a time.
    """
    import keras

    from tlt_core.train import distributed

    if distributed.uses_custom_loop(ctx.strategy):
        return distributed.run_loop(ctx, initial_epoch, resume_step)

    tensorboard = None
    if ctx.chief and importlib.util.find_spec("tensorboard") is not None:
        tensorboard = keras.callbacks.TensorBoard(
            log_dir=str(ctx.results_dir / EVENTS_DIR), update_freq="epoch"
        )
    elif ctx.chief:
        log.warning("the tensorboard package is not installed: no event files are written")
    state: dict[str, Any] = {"history": [], "last_checkpoint": None}
    preemption = Preemption()
    global_batch = ctx.settings.batch_size_per_replica * ctx.strategy.num_replicas_in_sync
    interrupted = False
    completed = initial_epoch
    with preemption.installed():
        callbacks = _make_callbacks(ctx, preemption, tensorboard, state)
        for epoch in range(initial_epoch, ctx.settings.num_epochs):
            skip = resume_step if epoch == initial_epoch else 0
            state["skip"] = skip
            dataset = epoch_dataset(ctx, epoch, batch_size=global_batch, skip_batches=skip)
            ctx.train_model.fit(
                dataset,
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=ctx.steps_per_epoch - skip,
                shuffle=False,
                verbose=ctx.verbose,
                callbacks=callbacks,
            )
            if preemption.requested:
                interrupted = state["steps"] < ctx.steps_per_epoch
                completed = epoch + (0 if interrupted else 1)
                break
            completed = epoch + 1
    return TrainOutcome(
        final_model_path=state["last_checkpoint"],
        last_epoch=completed,
        interrupted=interrupted or preemption.requested,
        history=state["history"],
    )
