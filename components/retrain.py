"""Component: retrain a pruned model, keeping its pruned shape."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def retrain(
    pruned_model: Input[Model],
    dataset: Input[Dataset],
    experiment_spec: str,
    model: Output[Model],
    metrics: Output[Metrics],
    retrain_spec: str = "",
    validation_fold: int = 0,
    use_amp: bool = False,
    gpus: int = 1,
    network: str = "ssd",
    workers: int = 1,
    gpus_per_worker: int = 1,
    launcher: str = "trainjob",
) -> float:
    """Retrain from ``pruned_model`` with ``retrain_spec``; when it is empty, with the
    training spec without its regularizer (as 000 recommends: NO_REG). ``workers`` > 1: as in train,
    a TrainJob/TFJob of that many pods."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    spec = support.retrain_spec_text(experiment_spec, retrain_spec, network)
    if workers > 1:
        from tlt_core.cluster.task import run_distributed_train

        result = run_distributed_train(
            dataset_uri=dataset.uri,
            spec_text=spec,
            model_uri=model.uri,
            model_out=model.path,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            launcher=launcher,
            network=network,
            validation_fold=validation_fold,
            use_amp=use_amp,
            pruned_model_uri=pruned_model.uri,
        )
    else:
        result = support.run_train(
            dataset.path,
            spec,
            model.path,
            validation_fold=validation_fold,
            use_amp=use_amp,
            gpus=gpus,
            pruned_model_path=pruned_model.path,
            network=network,
        )
    support.log_metrics(metrics, result.metrics)
    model.metadata.update(result.model_metadata)
    support.record_stage(model, "retrain", start)
    return float(result.metrics.get(support.primary_metric_name(network), 0.0))
