"""Stage: generate the sample KITTI dataset (``tlt sample-data``), with an experiment spec
per network (``specs/<network>_train.txt``) reading it."""

from __future__ import annotations

from pathlib import Path

from tlt_core.data.sample import MANIFEST, SampleData, generate_sample_data, sample_paths
from tlt_core.errors import UsageError
from tlt_core.io_utils import atomic_dir

MIN_IMAGE_SIDE = 96  # smaller frames cannot hold the objects the generator draws


def generate(
    output_dir: str | Path,
    *,
    num_train: int = 200,
    num_val: int = 50,
    seed: int = 0,
    width: int | None = None,
    height: int | None = None,
) -> SampleData:
    """Generate the dataset of :mod:`tlt_core.data.sample` into ``output_dir``, atomically.

    ``output_dir`` must be absent, empty, or an earlier sample dataset (it is replaced);
    anything else is refused rather than overwritten.
    """
    output_dir = Path(output_dir).absolute()
    if num_train < 1 or num_val < 0:
        raise UsageError(f"need num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value < MIN_IMAGE_SIDE:
            raise UsageError(f"{name} {value} is below the minimum {MIN_IMAGE_SIDE}")
    if output_dir.exists():
        if not output_dir.is_dir():
            raise UsageError(f"{output_dir}: exists and is not a directory")
        if any(output_dir.iterdir()) and not (output_dir / MANIFEST).exists():
            raise UsageError(
                f"{output_dir}: not empty and not a sample dataset; refusing to replace it"
            )
    from tlt_core.networks import NETWORKS

    with atomic_dir(output_dir) as tmp:
        made = generate_sample_data(
            tmp,
            num_train=num_train,
            num_val=num_val,
            seed=seed,
            width=width,
            height=height,
            spec_root=output_dir,
            experiment_specs={name: net.sample_spec for name, net in NETWORKS.items()},
        )
    return sample_paths(output_dir, made.class_counts)
