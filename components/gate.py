"""Component: the quality gate before deployment."""

from kfp import dsl

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def quality_gate(
    unpruned_map: float, pruned_map: float, min_map: float, max_map_drop: float
) -> str:
    """'pass' when the pruned model reaches ``min_map`` and loses at most ``max_map_drop``."""
    from tlt_core.pipeline_support import gate_verdict

    verdict = gate_verdict(unpruned_map, pruned_map, min_map, max_map_drop)
    print(f"quality gate: {verdict}")
    return "pass" if verdict == "pass" else "fail"
