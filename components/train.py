"""Component: train a model from TFRecords (``tlt <network> train``)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def train(
    tfrecords: Input[Dataset],
    experiment_spec: str,
    model: Output[Model],
    metrics: Output[Metrics],
    validation_fold: int = 0,
    use_amp: bool = False,
    gpus: int = 1,
    network: str = "ssd",
) -> float:
    """Train; the model key comes from the TLT_MODEL_KEY environment variable (a Secret).

    Returns the last validation value of the network's primary metric (SSD: mAP).
    """
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    result = support.run_train(
        tfrecords.path,
        experiment_spec,
        model.path,
        validation_fold=validation_fold,
        use_amp=use_amp,
        gpus=gpus,
        network=network,
    )
    support.log_metrics(metrics, result.metrics)
    model.metadata.update(result.model_metadata)
    support.record_stage(model, "train", start)
    return float(result.metrics.get(support.primary_metric_name(network), 0.0))
