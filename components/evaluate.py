"""Component: the network's primary metric (SSD: mAP and per-class AP) of a model on the
validation fold."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    dataset: Input[Dataset],
    experiment_spec: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    validation_fold: int = 0,
    report_frames: int = 12,
    report_title: str = "Evaluation",
    network: str = "ssd",
) -> float:
    """Evaluate; logs the primary metric and its per-class values (SSD: mAP, AP per class;
    shown in the KFP UI) and an HTML report: the per-class table, PR curves and
    ``report_frames`` validation frames drawn (worst, best) for a detector. Returns the
    primary metric (the gate's input)."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    result = support.run_evaluate(
        model.path,
        dataset.path,
        experiment_spec,
        report.path,
        validation_fold=validation_fold,
        dataset_uri=dataset.uri,
        frames=report_frames,
        title=report_title,
        network=network,
    )
    support.log_metrics(metrics, {k: v for k, v in result.items() if k != "primary_metric"})
    support.record_stage(report, "evaluate", start)
    return float(result["primary_metric"])
