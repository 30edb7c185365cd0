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
) -> str:
    """'pass' when the pruned model reaches ``min_map`` and loses at most ``max_map_drop``;
    the Markdown report shows each check, its threshold and the verdict."""
    from tlt_core.pipeline_support import gate_report_markdown, gate_verdict, write_report

    verdict = gate_verdict(unpruned_map, pruned_map, min_map, max_map_drop)
    write_report(
        gate_report.path, gate_report_markdown(unpruned_map, pruned_map, min_map, max_map_drop)
    )
    print(f"quality gate: {verdict}")
    return "pass" if verdict == "pass" else "fail"
