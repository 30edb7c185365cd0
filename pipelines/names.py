"""Names and run-form titles of the pipelines, per network: ``tlt-<network>-<pipeline>``.

The one place a pipeline's name is made, so that a network added to the network table gets
its ``tlt-<network>-train-deploy`` by passing its name here.
"""

from __future__ import annotations

from tlt_core.networks import DEFAULT_NETWORK, get_network


def pipeline_name(pipeline: str, network: str = DEFAULT_NETWORK) -> str:
    """``tlt-ssd-train-deploy`` for ``("train_deploy", "ssd")``: a DNS-1123 style name."""
    return f"tlt-{network}-{pipeline}".replace("_", "-")


def network_title(network: str = DEFAULT_NETWORK) -> str:
    """What the network is, from the network table's title (the part before its list of
    tasks): ``SSD object detection``."""
    return get_network(network).title.partition(":")[0].strip()
