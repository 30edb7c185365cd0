"""Filter pruning of Keras functional models (``tlt ssd prune``).

- ``criteria``: per-filter norms, normalisation, equalisation, kept counts (numpy only);
- ``graph``: which channels may be removed and which must be removed together;
- ``pruner``: the plan (kept channels per group) and ``prune_model``;
- ``rebuild``: the smaller model from the edited config, with sliced weights.

Nothing is imported here, so ``tlt_core.prune.criteria`` loads without Keras (the CLI
reads its option lists while building ``--help``).
"""
