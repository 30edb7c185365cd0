"""The training loop under ``tf.distribute`` (Mirrored / MultiWorkerMirrored strategies).

Why not ``fit``: Keras 3 ``Model.fit`` under ``MultiWorkerMirroredStrategy`` fails converting
the distributed batches ("PerReplica to Tensor", keras-team/keras#20585), so a strategy with
more than one replica (or worker) trains with the loop here instead. This is the TF backend's
distribution mechanism, kept in this one module: the model math stays ``keras.ops`` and
the network's loss.

Per step (a ``tf.function`` run with ``strategy.run`` on each replica):

- the global batch (``batch_size_per_gpu`` x replicas) is split over the replicas by
  ``strategy.experimental_distribute_dataset``; across workers every worker builds the same
  seeded pipeline and keeps its own part (auto-shard policy DATA);
- the per-replica loss is the sum of the loss's per-image values divided by the *global*
  batch size (``tf.nn.compute_average_loss`` semantics), plus the regularisation losses
  divided by the number of replicas, so that the gradients the Keras optimizer all-reduces
  (sums) over the replicas are those of the global-batch loss;
- the logged loss is summed over all replicas (``strategy.reduce``); after each step the
  workers vote (one scalar all-reduce) on "SIGTERM received": a SIGTERM on any worker stops
  every worker after the same step, so none is left waiting in a collective.

Only the chief (worker 0) writes checkpoints, ``status.json`` and TensorBoard events and runs
validation; the others write nothing into ``results_dir`` (it may be shared). Validation and
checkpoints use a plain copy of the model made outside the strategy: a model built in the
strategy scope runs ``predict`` as a distributed (collective) call, which would wait forever
for the workers that do not validate.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def uses_custom_loop(strategy) -> bool:
    """True when ``strategy`` trains more than one replica or spans more than one worker."""
    import tensorflow as tf

    if int(strategy.num_replicas_in_sync) > 1:
        return True
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def num_workers(strategy) -> int:
    extended = strategy.extended
    return int(getattr(extended, "_num_workers", 1) or 1)


def weights_digest(model) -> str:
    """SHA-256 over the model weights (in ``get_weights`` order): equal on every worker."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value, dtype=value.dtype).tobytes())
    return digest.hexdigest()


def distributed_dataset(strategy, dataset):
    """``dataset`` (global batches) split over the replicas; workers shard by data."""
    import tensorflow as tf

    options = tf.data.Options()
    # Every worker reads the same (seeded) pipeline and keeps its part of each global batch:
    # file-level sharding would need at least one file per worker (KITTI dirs have none).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def make_train_step(strategy, train_model, loss_fn, global_batch: int):
    """A ``tf.function(batch) -> (loss, images)``: one optimizer step, loss summed over all
    replicas, and the number of images of the global batch (``InputStats.deliver``)."""
    import tensorflow as tf
    from keras import ops

    optimizer = train_model.optimizer
    replicas = float(strategy.num_replicas_in_sync)
    variables = train_model.trainable_variables

    def replica_step(images, y_true):
        with tf.GradientTape() as tape:
            y_pred = train_model(images, training=True)
            per_image = loss_fn.call(y_true, y_pred)
            loss = ops.sum(ops.cast(per_image, "float32")) / float(global_batch)
            if train_model.losses:
                loss = loss + ops.sum(ops.stack(train_model.losses)) / replicas
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss, ops.cast(ops.shape(images)[0], "float32")

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        images, y_true = batch
        loss, images = strategy.run(replica_step, args=(images, y_true))
        total = tf.distribute.ReduceOp.SUM
        return strategy.reduce(total, loss, axis=None), strategy.reduce(total, images, axis=None)

    return train_step


def make_stop_vote(strategy):
    """A ``tf.function(flag) -> count`` of the replicas whose worker was asked to stop.

    Called after every step (one scalar all-reduce): every worker gets the same count, so
    all stop after the same step, the one during which the first SIGTERM arrived.
    """
    import tensorflow as tf
    from keras import ops

    def replica_flag(flag):
        return ops.cast(flag, "float32") + 0.0  # a value of this replica's own

    @tf.function
    def vote(flag):
        per_replica = strategy.run(replica_flag, args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return vote


def make_sync_batchnorm(strategy, model):
    """A ``tf.function`` that sets every replica's BatchNorm moving statistics to their mean.

    Each replica updates the moving mean/variance from its own part of the batch (the Keras
    variables are not aggregated), so the replicas drift apart; averaging them at the end of
    each epoch leaves one model, the same on every worker, to validate and save.
    """
    import keras
    import tensorflow as tf
    from keras import ops

    from tlt_core.train.loop import all_layers

    statistics = [
        variable
        for layer in all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]

    sizes = [int(np.prod(v.shape)) for v in statistics]

    def replica_values():  # this replica's statistics, as one flat vector
        return ops.concatenate([ops.reshape(ops.convert_to_tensor(v), [-1]) for v in statistics])

    @tf.function
    def sync():
        if not statistics:
            return
        mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(replica_values), axis=None)
        offsets = np.cumsum([0, *sizes])
        for variable, start, stop in zip(statistics, offsets[:-1], offsets[1:], strict=True):
            variable.assign(ops.reshape(mean[start:stop], variable.shape))

    return sync


def plain_copy(model):
    """A copy of ``model`` with ordinary (not distributed) variables, for validation/saving."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def run_loop(ctx, initial_epoch: int, resume_step: int):
    """The distributed counterpart of ``trainer.run_loop``; returns a ``loop.TrainOutcome``."""
    import importlib.util

    import keras
    import tensorflow as tf

    from tlt_core.train import loop

    strategy = ctx.strategy
    train_model = ctx.train_model
    optimizer = train_model.optimizer
    with strategy.scope():
        if not optimizer.built:  # its slots must be created in the scope, not in the step
            optimizer.build(train_model.trainable_variables)
    global_batch = ctx.settings.batch_size_per_replica * strategy.num_replicas_in_sync
    train_step = make_train_step(strategy, train_model, train_model.loss, global_batch)
    stop_vote = make_stop_vote(strategy)
    sync_batchnorm = make_sync_batchnorm(strategy, ctx.model)
    saved_model = plain_copy(ctx.model)

    tensorboard = None
    if ctx.chief and importlib.util.find_spec("tensorboard") is not None:
        tensorboard = keras.callbacks.TensorBoard(
            log_dir=str(ctx.results_dir / loop.EVENTS_DIR),
            update_freq="epoch",
            write_graph=False,
        )
        tensorboard.set_model(train_model)
    elif ctx.chief:
        log.warning("the tensorboard package is not installed: no event files are written")
    extra = list(ctx.extra_callbacks)
    for callback in extra:
        callback.set_model(train_model)

    state: dict[str, Any] = {"history": [], "last_checkpoint": None}
    preemption = loop.Preemption()
    interrupted = False
    completed = initial_epoch
    log.info(
        "distributed training: %s, %d worker(s), %d replica(s), chief %s",
        type(strategy).__name__,
        num_workers(strategy),
        strategy.num_replicas_in_sync,
        ctx.chief,
    )
    with preemption.installed():
        if tensorboard is not None:
            tensorboard.on_train_begin()
        for epoch in range(initial_epoch, ctx.stop_epoch):
            skip = resume_step if epoch == initial_epoch else 0
            dataset = loop.epoch_dataset(ctx, epoch, batch_size=global_batch, skip_batches=skip)
            started = time.time()
            steps, losses, stop_all = skip, [], False
            for batch in distributed_dataset(strategy, dataset):
                loss, images = train_step(batch)
                losses.append(float(loss))
                ctx.input_stats.deliver(round(float(images)))
                steps += 1
                for callback in extra:
                    callback.on_train_batch_end(steps - 1)
                flag = tf.constant(1.0 if preemption.requested else 0.0)
                stop_all = float(stop_vote(flag)) > 0
                if stop_all or steps >= ctx.steps_per_epoch:
                    break
            # A stop seen on another worker counts here too: every worker ends the same way.
            preemption.requested = preemption.requested or stop_all
            sync_batchnorm()
            saved_model.set_weights(ctx.model.get_weights())
            lr = float(np.asarray(optimizer.learning_rate))
            record = loop.finish_epoch(
                ctx,
                epoch,
                steps=steps,
                loss=float(np.mean(losses)) if losses else math.nan,
                lr=lr,
                started=started,
                preempted=preemption.requested,
                state=state,
                optimizer=optimizer,
                model=saved_model,
            )
            if tensorboard is not None:
                logs = {"loss": record["loss"], "learning_rate": lr}
                if record[ctx.metric_name] is not None:
                    logs[f"val_{ctx.metric_name}"] = record[ctx.metric_name]
                tensorboard.on_epoch_end(epoch, logs)
            if preemption.requested:
                interrupted = steps < ctx.steps_per_epoch
                completed = epoch + (0 if interrupted else 1)
                break
            completed = epoch + 1
        if tensorboard is not None:
            tensorboard.on_train_end()
    log.info("final weights sha256 %s", weights_digest(ctx.model))
    return loop.TrainOutcome(
        final_model_path=state["last_checkpoint"],
        last_epoch=completed,
        interrupted=interrupted or preemption.requested,
        history=state["history"],
    )
