"""Stage ``tlt <network> prune``: remove low-norm filters from a trained ``.tlt``.

TLT 3.0 (000, "Pruning the Model"): filters are ranked by the L2 norm of their kernels,
normalised per layer, and kept above a threshold (rounded up to the pruning granularity, at
least ``min_num_filters``); layers joined by element-wise ops or depthwise convolutions keep
the same channels, chosen with the equalisation criterion. The layers the network must keep
(``Network.prune_keep_layers``; SSD's predictor heads ``ssd_conf_*``, ``ssd_loc_*``, whose
counts are the anchors x classes layout) keep their filters, as do ``excluded_layers``;
their input channels are still cut to match. The network is the one the model file's
metadata names.

The output is a sealed ``.tlt`` with the pruned architecture; its metadata is the input's
(spec text, class names, anchors, input shape) with ``pruned: true``, so ``tlt <network>
train -m pruned.tlt`` (or the spec's pruned model path) retrains it with its new shape.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.errors import UsageError
from tlt_core.prune.pruner import LayerPruning, PruneSettings

log = logging.getLogger(__name__)

# Keys of the source metadata that describe the training run, not the pruned model.
_RUN_KEYS = ("epoch", "step")


@dataclass
class PruneResult:
    output_path: Path
    params_before: int
    params_after: int
    ratio: float  # parameters kept / parameters before (TLT's "Pruning ratio")
    per_layer: list[LayerPruning] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"Pruning ratio: {self.ratio:.4f} ({self.params_after:,} of "
            f"{self.params_before:,} parameters kept)"
        )


def check_excluded(names: Iterable[str], model, model_path: str | Path) -> tuple[str, ...]:
    """The excluded layer names, or UsageError naming an unknown one and its close matches."""
    known = [layer.name for layer in model.layers]
    known_set = set(known)
    for name in names:
        if name not in known_set:
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise UsageError(
                f"-el/--excluded_layers: {model_path} has no layer named {name!r}{hint}"
            )
    return tuple(names)


def split_layer_names(values: Sequence[str] | None) -> tuple[str, ...]:
    """``-el a b`` and ``-el a,b`` (TLT accepted both) as one tuple of names."""
    names: list[str] = []
    for value in values or ():
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(names)


def pruned_metadata(meta: dict[str, Any], settings: PruneSettings, before: int, after: int):
    """The source metadata marked pruned, with what pruning did (for provenance)."""
    out = {k: v for k, v in meta.items() if k not in _RUN_KEYS}
    out["pruned"] = True
    out["prune"] = {
        "normalizer": settings.normalizer,
        "equalization_criterion": settings.equalization,
        "pruning_granularity": int(settings.granularity),
        "pruning_threshold": float(settings.threshold),
        "min_num_filters": int(settings.min_filters),
        "excluded_layers": list(settings.excluded_layers),
        "params_before": int(before),
        "params_after": int(after),
        "source_epoch": meta.get("epoch"),
    }
    return out


def prune(
    model_path: str | Path,
    output_path: str | Path,
    key: str,
    *,
    normalizer: str = "max",
    equalization: str = "union",
    granularity: int = 8,
    threshold: float = 0.1,
    min_filters: int = 16,
    excluded_layers: Sequence[str] = (),
    network: str | None = None,
) -> PruneResult:
    """Prune the model in ``model_path`` and write the result to ``output_path`` (sealed).
    ``network`` (the CLI's) must match the network the model file names."""
    settings = PruneSettings(
        normalizer=normalizer,
        equalization=equalization,
        granularity=int(granularity),
        threshold=float(threshold),
        min_filters=int(min_filters),
        excluded_layers=tuple(excluded_layers),
    ).validate()

    from tlt_core.errors import ModelFileError
    from tlt_core.modelfile import save_model
    from tlt_core.networks import load_model
    from tlt_core.prune.pruner import prune_model

    model, meta, net = load_model(model_path, key)
    if network is not None and network != net.name:
        raise ModelFileError(f"{model_path}: a {net.name} model, not {network}")
    check_excluded(settings.excluded_layers, model, model_path)
    pruned, plan = prune_model(model, settings, protected=net.prune_keep_layers(model))
    before, after = int(model.count_params()), int(pruned.count_params())
    for layer in plan.per_layer:
        if layer.filters_after != layer.filters_before:
            log.info("%s: %d -> %d filters", layer.name, layer.filters_before, layer.filters_after)
        if layer.limited_by:
            log.warning(
                "%s keeps %d filters, not fewer: %s",
                layer.name,
                layer.filters_after,
                layer.limited_by,
            )
    save_model(output_path, pruned, key, pruned_metadata(meta, settings, before, after))
    result = PruneResult(Path(output_path), before, after, after / before, plan.per_layer)
    log.info("%s", result.summary())
    return result
