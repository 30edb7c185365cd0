"""Component: the network's primary metric (SSD: mAP and per-class AP) of a model on the
validation fold."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    tfrecords: Input[Dataset],
    experiment_spec: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    validation_fold: int = 0,
    network: str = "ssd",
) -> float:
    """Evaluate; logs the primary metric and its per-class values (SSD: mAP, AP per class;
    shown in the KFP UI) and an HTML report. Returns the primary metric (the gate's input)."""
    from tlt_core import pipeline_support as support

    result = support.run_evaluate(
        model.path,
        tfrecords.path,
        experiment_spec,
        report.path,
        validation_fold=validation_fold,
        tfrecords_uri=tfrecords.uri,
        network=network,
    )
    support.log_metrics(metrics, {k: v for k, v in result.items() if k != "primary_metric"})
    return float(result["primary_metric"])
