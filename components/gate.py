"""Component: the quality gate before deployment, on the network's primary metric."""

from kfp import dsl
from kfp.dsl import Markdown, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def quality_gate(
    unpruned_metric: float,
    pruned_metric: float,
    min_metric: float,
    max_metric_drop: float,
    gate_report: Output[Markdown],
    network: str = "ssd",
) -> str:
    """'pass' when the pruned model reaches ``min_metric`` and loses at most
    ``max_metric_drop`` of the network's primary metric (its ``MetricSpec``: mAP for the
    detectors, top-1 accuracy for classification); the Markdown report shows each check,
    its threshold and the verdict."""
    from tlt_core.pipeline_support import gate_report_markdown, gate_verdict, write_report

    values = (unpruned_metric, pruned_metric, min_metric, max_metric_drop)
    verdict = gate_verdict(*values, network=network)
    write_report(gate_report.path, gate_report_markdown(*values, network=network))
    print(f"quality gate: {verdict}")
    return "pass" if verdict == "pass" else "fail"
