"""Stage ``tlt <network> train``: train a model from an experiment spec into ``results_dir``.

Outputs (``results_dir``): ``weights/<stem>_epoch_<NNN>.tlt`` (sealed with ``key``; SSD's
stem is ``ssd_<arch><n>``), ``status.json`` (per-epoch loss, learning rate, the primary
metric, time), ``events/`` (TensorBoard),
``experiment_spec.txt`` (the spec as resolved and used).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.errors import DataError, ModelFileError, SpecError, UsageError, located

log = logging.getLogger(__name__)

SPEC_COPY = "experiment_spec.txt"


@dataclass
class TrainResult:
    final_model_path: Path | None  # the last checkpoint written
    results_dir: Path
    status_path: Path
    epochs_completed: int
    interrupted: bool  # stopped by SIGTERM (a checkpoint to resume from was written)
    history: list[dict[str, Any]] = field(default_factory=list)
    final_map: float | None = None  # the last validation value of the primary metric
    metric: str = "mAP"  # the primary metric's name (the network's)


@contextlib.contextmanager
def _log_to(log_file: str | Path | None) -> Iterator[None]:
    if not log_file:
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def _process_settings() -> Iterator[None]:
    """Restore the process-wide Keras dtype policy and TF op determinism afterwards (a
    component or test process may go on to run other stages)."""
    import keras
    from tensorflow.python.framework import config as tf_config

    policy = keras.mixed_precision.global_policy()
    deterministic = tf_config.is_op_determinism_enabled()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        if not deterministic and tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()


def _source_model_path(settings, model_path: str | Path | None) -> tuple[Path | None, bool]:
    """The model to start from: ``-m`` or the spec's pruned/resume/pretrain path."""
    if model_path:
        return Path(model_path), False
    for value, pruned in settings.start_models:
        return Path(value), pruned
    return None, False


def train(
    spec_path: str | Path,
    results_dir: str | Path,
    key: str,
    *,
    model_path: str | Path | None = None,
    initial_epoch: int = 0,
    gpus: int = 1,
    gpu_index: Sequence[int] | None = None,
    use_amp: bool = False,
    log_file: str | Path | None = None,
    multi_worker: bool = False,
    verbose: int = 0,
    callbacks: Sequence[Any] = (),
    network: str | None = None,
    enable_qat: bool = False,
) -> TrainResult:
    """Train the ``network`` model (default SSD) of ``spec_path``.

    ``model_path``: a ``.tlt`` to resume from (with ``initial_epoch`` > 0: weights and
    optimizer state, and the step inside the epoch for a SIGTERM checkpoint) or to start from
    (pretrained or pruned: weights; heads re-initialised when the class count differs).
    ``gpus`` > 1: MirroredStrategy; ``multi_worker``: MultiWorkerMirroredStrategy from
    ``TF_CONFIG`` (the CLI sets it when that variable exists). The learning rate is scaled by
    the number of replicas. ``callbacks``: extra Keras callbacks (tests).
    ``enable_qat`` (or the spec's ``training_config.enable_qat``, where the network's spec
    has one): quantization-aware training (``tlt_core.models.qat``): BN folded, weights and
    activations fake-quantised where TensorRT runs INT8; the model starts as the spec's
    (or ``-m``'s) trained float or QAT model, trained with Adam at ``QAT_RATE_FACTOR`` of
    the spec's schedule. With no start model (QAT from scratch, tf.contrib.quantize's
    ``quant_delay``), or one straight from ``prune`` (not yet retrained), the first
    ``SCRATCH_FLOAT_FRACTION`` of the epochs train float with BN live, then BN is folded and
    QAT trains the rest (``tlt_core.models.qat.scratch_switch_epoch``) at that rate, its
    schedule run anew over those epochs; checkpoints say which they are
    (metadata ``qat``) and resuming works on both sides of the switch.
    """
    if not key:
        raise UsageError("an encryption key (-k) is required to write the model files")
    if initial_epoch < 0:
        raise UsageError(f"--initial_epoch must be >= 0, got {initial_epoch}")
    if gpus < 1:
        raise UsageError(f"--gpus must be >= 1, got {gpus}")
    with _log_to(log_file), _process_settings():
        return _train(
            spec_path,
            Path(results_dir),
            key,
            network=network,
            model_path=model_path,
            initial_epoch=initial_epoch,
            gpus=gpus,
            gpu_index=gpu_index,
            use_amp=use_amp,
            multi_worker=multi_worker,
            verbose=verbose,
            callbacks=callbacks,
            enable_qat=enable_qat,
        )


def _scratch_switch_epoch(
    qat_on: bool, settings, spec, cli_flag: bool, source_meta: dict | None, initial_epoch: int
) -> int | None:
    """The float epochs of a float-then-QAT run (None: not one): QAT on and no start model
    (from scratch) or a start model straight from ``prune`` (its accuracy is gone until it
    is retrained: measured, the sample SSD pruned by 63 % (mAP 0.9) and retrained 6 epochs
    scored 69.6 float but 2.4 as QAT at QAT_RATE_FACTOR), or a resume (``--initial_epoch``)
    of a checkpoint such a run wrote."""
    from tlt_core.models import qat

    if not qat_on:
        return None
    if source_meta is not None:
        saved = source_meta.get(qat.SWITCH_METADATA_KEY)
        if initial_epoch > 0:
            return int(saved) if saved is not None else None
        if not _freshly_pruned_float(source_meta):
            return None
        start = "a pruned model, not yet retrained,"
        other = "retrain it first, then fine-tune with QAT"
    else:
        start = "from scratch"
        other = "or start from a trained .tlt with -m"
    if settings.num_epochs < 2:
        raise SpecError(
            located(
                f"quantization-aware training {start} trains float, then QAT, at least "
                f"one epoch each: {settings.num_epochs_field} must be >= 2, got "
                f"{settings.num_epochs} ({other})",
                spec.path,
                field="--enable_qat"
                if cli_flag and not settings.enable_qat
                else "training_config.enable_qat",
            )
        )
    return qat.scratch_switch_epoch(settings.num_epochs)


def _freshly_pruned_float(meta: dict) -> bool:
    """``prune``'s output of a float model: pruned, and no training epoch since."""
    from tlt_core.models import qat

    return bool(meta.get("pruned")) and "epoch" not in meta and not meta.get(qat.QAT_METADATA_KEY)


def _compiled_model(net, spec, model, total_steps: int, replicas: int, *, qat: bool):
    """``net``'s training model of ``model``, compiled with the spec's optimizer (QAT: Adam on
    its schedule, at ``QAT_RATE_FACTOR`` of it). In the strategy's scope."""
    from tlt_core.train import loop, trainer

    trainer.set_batchnorm_momentum(model, trainer.BATCHNORM_MOMENTUM)
    train_model = net.training_model(model)
    optimizer = net.optimizer(spec, total_steps=total_steps, replicas=replicas)
    if qat:
        from tlt_core.models import qat as qat_layers

        # Adam, at a fraction of the spec's rates: qat_optimizer's docstring says why.
        optimizer = qat_layers.qat_optimizer(optimizer, qat_layers.QAT_RATE_FACTOR)
    train_model.compile(
        optimizer=optimizer,
        loss=net.loss(spec),
        metrics=[loop.images_metric()],  # the images the model got: InputStats.skipped
        jit_compile=False,
    )
    return train_model


def _schedule_span(
    num_epochs: int, steps_per_epoch: int, switch_epoch: int | None, qat_phase: bool
) -> tuple[int, int]:
    """(the steps the optimizer's learning-rate schedule spans, the epoch it starts at).

    The QAT part of a from-scratch run gets the spec's schedule anew over its own epochs (soft
    start, hold, anneal), as the fine-tune of NVIDIA's float-then-QAT flow would. Measured on
    the sample SSD (scripts/int8_accuracy.py, 6 epochs, switch after 4, Adam at 1 %): the
    float run's schedule continued left the QAT epochs at its annealed end (loss 6.5 -> 5.5,
    mAP 12.4 against float 23.9); the schedule anew reached 30.4. The float part keeps the
    whole run's schedule: annealing it by the switch too cost 10 points (12 epochs).
    """
    if qat_phase and switch_epoch is not None:
        return (num_epochs - switch_epoch) * steps_per_epoch, switch_epoch
    return num_epochs * steps_per_epoch, 0


def _start_schedule_at(train_model, step: int) -> None:
    """A fresh optimizer whose learning-rate schedule continues at ``step``."""
    train_model.optimizer.build(train_model.trainable_variables)
    train_model.optimizer.iterations.assign(step)


def _train(
    spec_path,
    results_dir,
    key,
    *,
    network,
    model_path,
    initial_epoch,
    gpus,
    gpu_index,
    use_amp,
    multi_worker,
    verbose,
    callbacks,
    enable_qat=False,
) -> TrainResult:
    import keras
    import tensorflow as tf

    from tlt_core.evaluate.collect import collect_predictions, score
    from tlt_core.inference_runner import KerasRunner
    from tlt_core.modelfile import load_model_with_state
    from tlt_core.networks import get_network
    from tlt_core.train import loop, trainer
    from tlt_core.train.status import STATUS_FILE, StatusWriter

    net = get_network(network)
    spec = net.spec_of(spec_path)
    spec_path = Path(spec.path)
    settings = net.training_settings(spec)
    results_dir.mkdir(parents=True, exist_ok=True)

    if use_amp:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if settings.seed is not None:
        keras.utils.set_random_seed(settings.seed)
        tf.config.experimental.enable_op_determinism()

    strategy = trainer.build_strategy(gpus, gpu_index, multi_worker)
    replicas = int(strategy.num_replicas_in_sync)
    chief = trainer.is_chief(strategy)

    global_batch = settings.batch_size_per_replica * replicas
    num_frames = net.dataset_size(spec, training=True)
    if num_frames == 0:
        raise DataError("no training images in dataset_config.data_sources", spec_path)
    steps_per_epoch = max(1, math.ceil(num_frames / global_batch))

    with strategy.scope():
        regularizer = net.kernel_regularizer(spec)
        source_path, spec_pruned = _source_model_path(settings, model_path)
        source = None
        training_state = None
        if source_path is not None:
            import tlt_core.models.qat  # noqa: F401  (a QAT model's layers)

            loaded_model, source_meta, training_state = load_model_with_state(source_path, key)
            source = (loaded_model, source_meta)
            pruned = bool(source_meta.get("pruned")) or spec_pruned
        else:
            source_meta, pruned = {}, False
        qat_on = enable_qat or settings.enable_qat
        switch_epoch = _scratch_switch_epoch(
            qat_on, settings, spec, enable_qat, source_meta if source else None, initial_epoch
        )
        model = trainer.initial_model(net, spec, regularizer, source, path=source_path)
        qat_now = qat_on and (switch_epoch is None or initial_epoch >= switch_epoch)
        # A float checkpoint of a from-scratch run resumed at or after its switch: its
        # optimizer state is the float phase's (SGD's for SSD), not the QAT Adam's.
        converted_on_resume = False
        if qat_now:
            from tlt_core.models import qat

            if not qat.is_qat_model(model):
                model = qat.to_qat(model)
                trainer.set_kernel_regularizer(model, regularizer)
                converted_on_resume = switch_epoch is not None
            log.info(
                "quantization-aware training: BN folded, INT8 fake quantisation on, Adam at "
                "%g x the spec's learning-rate schedule",
                qat.QAT_RATE_FACTOR,
            )
        elif switch_epoch is not None:
            log.info(
                "quantization-aware training %s: float (BN live) for epochs 1-%d, "
                "then BN folded and INT8 fake quantisation on for epochs %d-%d",
                "from scratch" if source is None else "of a pruned model",
                switch_epoch,
                switch_epoch + 1,
                settings.num_epochs,
            )
        schedule_steps, schedule_epoch = _schedule_span(
            settings.num_epochs, steps_per_epoch, switch_epoch, qat_now
        )
        train_model = _compiled_model(
            net,
            spec,
            model,
            schedule_steps,
            replicas,
            qat=qat_now,
        )
        resume_step = 0
        if initial_epoch > 0 and training_state is not None and not converted_on_resume:
            restored = trainer.restore_optimizer_state(
                train_model.optimizer, train_model.trainable_variables, training_state
            )
            if restored and int(source_meta.get("epoch", -1)) == initial_epoch:
                resume_step = int(source_meta.get("step", 0) or 0)
            elif source_meta.get("epoch") is not None:
                log.warning(
                    "%s was written after epoch %s; resuming at --initial_epoch %d as asked",
                    source_path,
                    source_meta.get("epoch"),
                    initial_epoch,
                )
        elif initial_epoch > 0:
            # No saved optimizer state: put the schedule where the run would be.
            _start_schedule_at(train_model, (initial_epoch - schedule_epoch) * steps_per_epoch)
    if resume_step >= steps_per_epoch:
        raise ModelFileError(
            f"{source_path}: checkpoint step {resume_step} is beyond the epoch "
            f"({steps_per_epoch} steps): the data changed since it was written"
        )

    targets = net.training_targets(spec, model)
    if chief:
        spec.save(results_dir / SPEC_COPY, absolute_paths=True)
    status = StatusWriter.resume(results_dir / STATUS_FILE, settings.num_epochs, initial_epoch)
    has_validation = net.has_validation_data(spec)
    metric = net.primary_metric.name
    postprocess = None

    def validate(base_model) -> dict[str, Any]:
        nonlocal postprocess
        runner = KerasRunner(base_model, net)
        if postprocess is None:  # built once (SSD: the anchors)
            postprocess = net.postprocessor(spec, runner)
        collected = collect_predictions(net, spec, runner, postprocess=postprocess)
        result = score(net, spec, collected)
        return {
            metric: float(result.value),
            "per_class": dict(result.per_class),
            "skipped_images": collected.skipped_images,
        }

    height, width = spec.input_shape[0], spec.input_shape[1]
    log.info(
        "training %s (%s): %d classes, input %dx%d, %d steps/epoch x %d epochs, "
        "batch %d (%d replica(s)), start epoch %d%s",
        model.name,
        net.name,
        len(spec.class_names),
        width,
        height,
        steps_per_epoch,
        settings.num_epochs,
        global_batch,
        replicas,
        initial_epoch,
        f" step {resume_step}" if resume_step else "",
    )
    ctx = loop.LoopContext(
        network=net,
        spec=spec,
        results_dir=results_dir,
        key=key,
        settings=settings,
        model=model,
        train_model=train_model,
        strategy=strategy,
        targets=targets,
        steps_per_epoch=steps_per_epoch,
        pruned=pruned,
        chief=chief,
        validate=validate if has_validation else None,
        status=status,
        verbose=verbose,
        extra_callbacks=tuple(callbacks),
        end_epoch=switch_epoch if switch_epoch is not None and not qat_now else None,
        extra_metadata=({} if switch_epoch is None else {"qat_switch_epoch": switch_epoch}),
    )
    outcome = trainer.run_loop(ctx, initial_epoch, resume_step)
    if ctx.end_epoch is not None and not outcome.interrupted:
        # The float part is done (its last epoch checkpointed): QAT for the rest.
        from tlt_core.models import qat

        log.info(
            "epoch %d: switching to quantization-aware training for epochs %d-%d: BN folded, "
            "INT8 fake quantisation on, Adam at %g x the spec's learning-rate schedule "
            "(anew over these epochs)",
            switch_epoch,
            switch_epoch + 1,
            settings.num_epochs,
            qat.QAT_RATE_FACTOR,
        )
        with strategy.scope():
            model = qat.to_qat(model)
            trainer.set_kernel_regularizer(model, regularizer)
            schedule_steps, schedule_epoch = _schedule_span(
                settings.num_epochs, steps_per_epoch, switch_epoch, True
            )
            train_model = _compiled_model(net, spec, model, schedule_steps, replicas, qat=True)
            _start_schedule_at(train_model, (switch_epoch - schedule_epoch) * steps_per_epoch)
        ctx = dataclasses.replace(
            ctx,
            model=model,
            train_model=train_model,
            targets=net.training_targets(spec, model),
            end_epoch=None,
        )
        rest = trainer.run_loop(ctx, switch_epoch, 0)
        outcome = dataclasses.replace(
            rest,
            final_model_path=rest.final_model_path or outcome.final_model_path,
            history=[*outcome.history, *rest.history],
        )
    if chief:
        status.finish("interrupted" if outcome.interrupted else "done")
    values = [r[metric] for r in outcome.history if r.get(metric) is not None]
    return TrainResult(
        final_model_path=outcome.final_model_path,
        results_dir=results_dir,
        status_path=results_dir / STATUS_FILE,
        epochs_completed=outcome.last_epoch,
        interrupted=outcome.interrupted,
        history=outcome.history,
        final_map=values[-1] if values else None,
        metric=metric,
    )
