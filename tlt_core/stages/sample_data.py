"""Stage: generate a sample dataset (``tlt sample-data``): the KITTI dataset with an
experiment spec per detection network (``specs/<network>_train.txt``), or the
class-per-directory classification data (``--task classification``)."""

from __future__ import annotations

from dataclasses import dataclass
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
    _check_replaceable(output_dir)
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
            experiment_specs={
                name: net.sample_spec
                for name, net in NETWORKS.items()
                if net.sample_task == "detection"  # the KITTI sample's networks
            },
        )
    return sample_paths(output_dir, made.class_counts)


@dataclass(frozen=True)
class ClassificationSample:
    """Paths of a generated class-per-directory dataset."""

    root: Path
    train_dir: Path
    val_dir: Path
    spec: Path
    class_counts: dict[str, dict[str, int]]


def generate_network_sample(
    output_dir: str | Path, network: str, *, num_train: int, num_val: int, seed: int = 0
) -> ClassificationSample:
    """The sample of a network with its own (``Network.generate_sample``: classification's
    class-per-directory data, 002 4.1) into ``output_dir``, atomically, with the same
    replacement rules as `generate`."""
    from tlt_core.networks import get_network

    net = get_network(network)
    output_dir = Path(output_dir).absolute()
    if num_train < 1 or num_val < 0:
        raise UsageError(f"need num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    _check_replaceable(output_dir)
    with atomic_dir(output_dir) as tmp:
        counts, spec = net.generate_sample(
            tmp, num_train=num_train, num_val=num_val, seed=seed, spec_root=output_dir
        )
    return ClassificationSample(
        output_dir, output_dir / "train", output_dir / "val", output_dir / spec, counts
    )


def generate_classification(
    output_dir: str | Path, *, num_train: int = 1000, num_val: int = 200, seed: int = 0
) -> ClassificationSample:
    """The class-per-directory sample of the classification network (002, 4.1)."""
    return generate_network_sample(
        output_dir, "classification", num_train=num_train, num_val=num_val, seed=seed
    )


def _check_replaceable(output_dir: Path) -> None:
    if output_dir.exists():
        if not output_dir.is_dir():
            raise UsageError(f"{output_dir}: exists and is not a directory")
        if any(output_dir.iterdir()) and not (output_dir / MANIFEST).exists():
            raise UsageError(
                f"{output_dir}: not empty and not a sample dataset; refusing to replace it"
            )
