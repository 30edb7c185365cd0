"""The training loop of every network: Keras ``fit`` one epoch at a time, with TLT's
checkpoints. The network supplies the model, the targets, the loss, the optimizer and the
metric (``tlt_core.networks.base.Network``); the loop itself knows none of them.

Why one ``fit`` call per epoch: each epoch's input pipeline is built after seeding with
``random_seed + epoch``, so epoch ``e`` sees the same shuffle and augmentation whether the
run started at epoch 0 or resumed at ``e``; a checkpoint written on SIGTERM in the middle of
an epoch records the step, and resuming skips exactly those batches. Together with the
optimizer state saved in the checkpoint, an interrupted and resumed run ends with the weights
of an uninterrupted one.

Per epoch: the learning rate follows the soft-start annealing schedule (scaled by the number
of replicas), a checkpoint ``weights/<stem>_epoch_<NNN>.tlt`` is sealed every
``checkpoint_interval`` epochs, the validation metric (SSD: mAP) is computed every
``validation_period_during_training`` epochs, TensorBoard events go to ``events/`` and
``status.json`` is rewritten.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tlt_core.errors import ModelFileError, UsageError
from tlt_core.train.loop import (
    EVENTS_DIR,
    IMAGES_METRIC,
    LoopContext,
    Preemption,
    TrainOutcome,
    all_layers,
    epoch_dataset,
    finish_epoch,
)

log = logging.getLogger(__name__)

# BatchNorm moving-average momentum while training. Keras' 0.99 averages over ~100 steps:
# fine for TLT's 80 epochs of thousands of images, but in a short run the moving statistics
# lag the fast-changing weights and inference-mode outputs (validation, export) are garbage
# while training-mode loss is low. 0.9 (a ~10-step horizon) keeps them in step.
BATCHNORM_MOMENTUM = 0.9


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
    for layer in all_layers(model):
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
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            count += 1
    return count


def initial_model(network, spec, regularizer, source=None, *, path=None):
    """The model training starts from: built from the spec, or from a loaded ``.tlt``.

    A loaded model is used as it is (weights and, for a pruned model, its pruned shape) when
    its input shape and class count match the spec; otherwise a model is built from the
    spec and every layer whose name and weight shapes match is copied (transfer learning):
    the class heads (SSD: ``ssd_conf_*``) are re-initialised when the class count differs.
    """
    num_classes = len(spec.class_names)
    if source is None:
        return network.build_model(spec, kernel_regularizer=regularizer)
    source_model, source_meta = source
    same_input = tuple(int(v) for v in source_model.inputs[0].shape[1:]) == tuple(spec.input_shape)
    source_classes = network.model_classes(source_model)
    if same_input and source_classes == num_classes:
        set_kernel_regularizer(source_model, regularizer)
        return source_model
    if source_meta.get("pruned"):
        raise ModelFileError(
            f"{path}: pruned model has {source_classes} classes and input "
            f"{list(source_model.inputs[0].shape[1:])}; the spec asks for {num_classes} classes "
            f"and input {list(spec.input_shape)}: a pruned model keeps its shape"
        )
    model = network.build_model(spec, kernel_regularizer=regularizer)
    copied, skipped = 0, []
    source_layers = {layer.name: layer for layer in all_layers(source_model)}
    for layer in all_layers(model):
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
            "%s: pretrained model has %d classes, the spec %d: %s re-initialised",
            path,
            source_classes,
            num_classes,
            network.head_layers_description(),
        )
    log.info(
        "transfer learning from %s: %d layers copied, %d re-initialised%s",
        path,
        copied,
        len(skipped),
        f" ({', '.join(skipped[:8])}{'...' if len(skipped) > 8 else ''})" if skipped else "",
    )
    return model


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


# --- the loop ---------------------------------------------------------------------------------


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
            if ctx.input_stats is not None:
                ctx.input_stats.deliver(int(logs.get(IMAGES_METRIC, 0)))
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
            if record[ctx.metric_name] is not None:
                logs[f"val_{ctx.metric_name}"] = record[ctx.metric_name]

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
        for epoch in range(initial_epoch, ctx.stop_epoch):
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
