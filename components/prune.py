"""Component: prune a model (``tlt <network> prune``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from components import TLT_CORE_IMAGE


@dsl.component(base_image=TLT_CORE_IMAGE, install_kfp_package=False)
def prune(
    model: Input[Model],
    pruned_model: Output[Model],
    prune_report: Output[Markdown],
    threshold: float = 0.1,
    normalizer: str = "max",
    equalization_criterion: str = "union",
    granularity: int = 8,
    min_filters: int = 16,
    network: str = "ssd",
) -> NamedTuple("PruneOutputs", [("params_before", int), ("params_after", int), ("ratio", float)]):
    """Prune filters whose normalised L2 norm is under ``threshold``; the Markdown report
    shows parameters per layer group and CPU latency before and after."""
    import time
    from collections import namedtuple

    from tlt_core import pipeline_support as support

    start = time.time()
    result = support.run_prune(
        model.path,
        pruned_model.path,
        threshold=threshold,
        normalizer=normalizer,
        equalization_criterion=equalization_criterion,
        granularity=granularity,
        min_filters=min_filters,
        report_path=prune_report.path,
        network=network,
    )
    support.record_stage(pruned_model, "prune", start)
    pruned_model.metadata.update(
        {"params_before": result.params_before, "params_after": result.params_after}
    )
    outputs = namedtuple("PruneOutputs", ["params_before", "params_after", "ratio"])
    return outputs(
        result.params_before,
        result.params_after,
        result.params_after / max(result.params_before, 1),
    )
