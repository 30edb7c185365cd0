"""Component: the quality gate before deployment."""

from kfp import dsl

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def quality_gate(
    unpruned_map: float,
    pruned_map: float,
    min_map: float,
    max_map_drop: float,
    network: str = "ssd",
) -> str:
    """'pass' when the pruned model reaches ``min_map`` and loses at most ``max_map_drop``
    of the network's primary metric (SSD: mAP; classification: top-1 accuracy)."""
    from tlt_core.pipeline_support import gate_verdict, primary_metric_name

    metric = primary_metric_name(network)
    verdict = gate_verdict(unpruned_map, pruned_map, min_map, max_map_drop, metric)
    print(f"quality gate: {verdict}")
    return "pass" if verdict == "pass" else "fail"
