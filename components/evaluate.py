"""Component: mAP and per-class AP of a model on the validation fold."""

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
    report_frames: int = 12,
    report_title: str = "Evaluation",
) -> float:
    """Evaluate; logs mAP and AP per class (shown in the KFP UI) and an HTML report: the
    per-class table, PR curves and ``report_frames`` validation frames drawn (worst, best)."""
    import time

    from tlt_core import pipeline_support as support

    start = time.time()
    result = support.run_evaluate(
        model.path,
        tfrecords.path,
        experiment_spec,
        report.path,
        validation_fold=validation_fold,
        tfrecords_uri=tfrecords.uri,
        frames=report_frames,
        title=report_title,
    )
    support.log_metrics(metrics, result)
    support.record_stage(report, "evaluate", start)
    return float(result["mAP"])
