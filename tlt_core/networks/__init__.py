"""The network table: every network the stages, the CLI and the components can run.

``NETWORKS`` is written out by hand (no registry, no import-time discovery). Adding a
network: a folder ``tlt_core/networks/<name>/`` whose ``network.py`` defines a
`tlt_core.networks.base.Network` subclass and ``NETWORK = ThatClass()``, plus one line
here. Shared code gets a network with `get_network(name)` and never imports a network's
folder itself (``lint-imports`` checks it). Network modules import TensorFlow only inside
their hooks, so importing this table stays cheap (the CLI builds its parser from it).
"""

from __future__ import annotations

from tlt_core.errors import UsageError
from tlt_core.networks.base import Network
from tlt_core.networks.classification.network import NETWORK as CLASSIFICATION
from tlt_core.networks.detectnet_v2.network import NETWORK as DETECTNET_V2
from tlt_core.networks.ssd.network import NETWORK as SSD

NETWORKS: dict[str, Network] = {
    "ssd": SSD,
    "classification": CLASSIFICATION,
    "detectnet_v2": DETECTNET_V2,
}

DEFAULT_NETWORK = "ssd"


def get_network(name: str | None) -> Network:
    """The network called ``name`` (``None``: the default, SSD); UsageError if unknown."""
    name = DEFAULT_NETWORK if name is None else str(name)
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(sorted(NETWORKS))
        raise UsageError(f"unknown network {name!r} (known: {known})") from None


def network_of_metadata(metadata: dict, *, source: str = "model") -> Network:
    """The network a model file's metadata names (files written before the key existed
    are SSD, the only network then)."""
    name = metadata.get("network") or DEFAULT_NETWORK
    try:
        return NETWORKS[name]
    except KeyError:
        from tlt_core.errors import ModelFileError

        known = ", ".join(sorted(NETWORKS))
        raise ModelFileError(
            f"{source}: model of network {name!r}, which this build lacks (known: {known})"
        ) from None


def load_model(path, key: str, *, with_state: bool = False):
    """Open a ``.tlt`` dispatching on the ``network`` its metadata names (that network
    registers its Keras classes first): ``(model, metadata, network)``, or with
    ``with_state`` ``(model, metadata, training_state, network)``."""
    from tlt_core.modelfile import load_model_with_state

    found: list[Network] = []

    def prepare(metadata: dict) -> None:
        import tlt_core.models.qat  # noqa: F401  (QAT layers: registered serializables)

        network = network_of_metadata(metadata, source=str(path))
        network.register_keras_classes()
        found.append(network)

    model, metadata, state = load_model_with_state(path, key, prepare=prepare)
    if with_state:
        return model, metadata, state, found[0]
    return model, metadata, found[0]


__all__ = [
    "DEFAULT_NETWORK",
    "NETWORKS",
    "Network",
    "get_network",
    "load_model",
    "network_of_metadata",
]
