"""Filter-ranking arithmetic of ``tlt ssd prune`` (numpy only, no Keras).

TLT 3.0 (000, "Pruning the Model"): each output filter of a convolution is scored by the L2
norm of its kernel, normalised per layer (``max``: divided by the layer's largest norm;
``L2``: divided by the L2 norm of the vector of the layer's norms). Filters whose normalised
norm is above the threshold are kept; the kept count is rounded up to the pruning
granularity, raised to ``min_num_filters`` and never exceeds the layer's filter count; the
highest-scoring filters are the ones kept.

Layers whose outputs meet in an element-wise op (or feed one depthwise convolution) must
keep the same channels; the equalisation criterion combines their normalised norms into one
score per channel:

- ``union``: kept where any layer keeps it (the maximum of the normalised norms);
- ``intersection``: kept where every layer keeps it (the minimum);
- ``arithmetic_mean`` / ``geometric_mean``: the mean of the normalised norms, thresholded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NORMALIZERS = ("max", "L2")
EQUALIZATION_CRITERIA = ("union", "intersection", "arithmetic_mean", "geometric_mean")


def filter_norms(kernel: np.ndarray, out_axis: int = -1) -> np.ndarray:
    """L2 norm of each output filter: over every axis of ``kernel`` but ``out_axis``."""
    moved = np.moveaxis(np.asarray(kernel, dtype=np.float64), out_axis, -1)
    return np.sqrt(np.sum(np.square(moved.reshape(-1, moved.shape[-1])), axis=0))


def normalize(norms: np.ndarray, normalizer: str) -> np.ndarray:
    """Norms divided by the layer's max norm (``max``) or by their L2 norm (``L2``)."""
    norms = np.asarray(norms, dtype=np.float64)
    if normalizer == "max":
        scale = float(np.max(norms)) if norms.size else 0.0
    elif normalizer == "L2":
        scale = float(np.linalg.norm(norms))
    else:
        raise ValueError(f"unknown normalizer {normalizer!r}; use one of {NORMALIZERS}")
    # An all-zero layer stays all zero (every filter below any threshold).
    return norms / scale if scale > 0.0 else np.zeros_like(norms)


def equalize(scores: Sequence[np.ndarray], criterion: str) -> np.ndarray:
    """One score per channel from the normalised norms of the layers sharing the channels."""
    stacked = np.stack([np.asarray(s, dtype=np.float64) for s in scores])
    if criterion == "union":
        return stacked.max(axis=0)
    if criterion == "intersection":
        return stacked.min(axis=0)
    if criterion == "arithmetic_mean":
        return stacked.mean(axis=0)
    if criterion == "geometric_mean":
        # exp(mean(log)) with log(0) = -inf gives 0: a channel one layer zeroed scores 0.
        with np.errstate(divide="ignore"):
            return np.exp(np.log(stacked).mean(axis=0))
    raise ValueError(
        f"unknown equalization criterion {criterion!r}; use one of {EQUALIZATION_CRITERIA}"
    )


def kept_count(num_above: int, num_filters: int, granularity: int, min_filters: int) -> int:
    """How many filters a layer keeps: rounded up to ``granularity``, at least
    ``min_filters`` (and at least one), at most ``num_filters``."""
    count = max(int(num_above), 1)
    count = math.ceil(count / granularity) * granularity
    count = max(count, int(min_filters))
    return min(count, int(num_filters))


def select_filters(
    score: np.ndarray, threshold: float, granularity: int, min_filters: int
) -> np.ndarray:
    """Indices (ascending) of the filters kept: the ``kept_count`` highest scores."""
    score = np.asarray(score, dtype=np.float64)
    count = kept_count(int(np.sum(score > threshold)), score.size, granularity, min_filters)
    # Stable sort on the negated score: ties keep the lower index, so results are repeatable.
    order = np.argsort(-score, kind="stable")
    return np.sort(order[:count])
