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
    from tlt_core import pipeline_support as support
    from tlt_core.cluster.task import train_task

    return train_task(
        dataset,
        support.retrain_spec_text(experiment_spec, retrain_spec, network),
        model,
        metrics,
        stage="retrain",
        validation_fold=validation_fold,
        use_amp=use_amp,
        gpus=gpus,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        launcher=launcher,
        network=network,
        pruned_model=pruned_model,
    )
