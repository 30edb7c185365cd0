"""Component: the quality gate before deployment."""

from kfp import dsl
from kfp.dsl import Markdown, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def quality_gate(
    unpruned_map: float,
    pruned_map: float,
    min_map: float,
    max_map_drop: float,
    gate_report: Output[Markdown],
    network: str = "ssd",
) -> str:
    """'pass' when the pruned model reaches ``min_map`` and loses at most ``max_map_drop``
    of the network's primary metric (SSD: mAP; classification: top-1 accuracy); the
    Markdown report shows each check, its threshold and the verdict."""
    from tlt_core.pipeline_support import (
        gate_report_markdown,
        gate_verdict,
        primary_metric_name,
        write_report,
    )

    metric = primary_metric_name(network)
    verdict = gate_verdict(unpruned_map, pruned_map, min_map, max_map_drop, metric)
    write_report(
        gate_report.path,
        gate_report_markdown(unpruned_map, pruned_map, min_map, max_map_drop, metric),
    )
    print(f"quality gate: {verdict}")
    return "pass" if verdict == "pass" else "fail"
