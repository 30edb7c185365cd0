"""Component: train a model from TFRecords (``tlt <network> train``)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def train(
    dataset: Input[Dataset],
    experiment_spec: str,
    model: Output[Model],
    metrics: Output[Metrics],
    validation_fold: int = 0,
    use_amp: bool = False,
    gpus: int = 1,
    workers: int = 1,
    gpus_per_worker: int = 1,
    launcher: str = "trainjob",
    network: str = "ssd",
) -> float:
    """Train; the model key comes from the TLT_MODEL_KEY environment variable (a Secret).

    With ``workers`` > 1 the task runs a TrainJob (``launcher`` trainjob) or TFJob (tfjob)
    of that many pods with ``gpus_per_worker`` GPUs each, follows it and keeps the chief's
    model (tlt_core.cluster). Returns the last validation value of the network's primary
    metric (SSD: mAP).
    """
    from tlt_core.cluster.task import train_task

    return train_task(
        dataset,
        experiment_spec,
        model,
        metrics,
        stage="train",
        validation_fold=validation_fold,
        use_amp=use_amp,
        gpus=gpus,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        launcher=launcher,
        network=network,
    )
