"""Stage: ``dataset-convert``, a KITTI dataset to sharded TFRecord folds."""

from __future__ import annotations

from pathlib import Path

from tlt_core.data.convert import ConvertResult, convert_kitti, convert_options
from tlt_core.spec import ConvertSpec, load_convert_spec


def dataset_convert(
    spec_path: str | Path | ConvertSpec,
    output_prefix: str | Path,
    *,
    validation_fold: int | None = None,
    verbose: bool = False,
    strict: bool = True,
) -> ConvertResult:
    """Convert the dataset a spec (file, or a loaded `ConvertSpec`) names to
    ``<output_prefix>-fold-NNN-of-NNN-shard-...``.

    ``strict=False`` skips bad label lines and boxes outside their image (counted in the
    result) instead of raising :class:`~tlt_core.errors.DataError`. See
    :mod:`tlt_core.data.convert` for the partition modes and file layout.
    """
    spec = spec_path if isinstance(spec_path, ConvertSpec) else load_convert_spec(spec_path)
    return convert_kitti(
        convert_options(spec),
        output_prefix,
        validation_fold=validation_fold,
        strict=strict,
        verbose=verbose,
    )
