"""``train_deploy``'s data step for a classifier: the class-per-directory dataset checked
and passed through (there is no TFRecord conversion for classification in 002).

The dataset given to the pipeline holds ``train/`` and ``val/``, each one sub-directory per
class (002, 4.1). The step checks what training would otherwise find out late (a missing
split, a split without class folders or images, validation classes the training data
lacks, an image that does not decode), then copies both splits into its output artifact,
with the ``classmap.json`` of the classes the model will have.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from tlt_core.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val")  # the folders of the dataset and of the step's output
MAX_IMAGE_FILE_BYTES = 256 << 20  # as dataset-convert's image cap


def _check_decodes(paths) -> None:
    from tlt_core.data.imagecheck import verify_decodes
    from tlt_core.io_utils import read_bytes_limited

    for path in paths:
        data = read_bytes_limited(path, MAX_IMAGE_FILE_BYTES, what="image file")
        verify_decodes(data, Path(path).suffix.lstrip(".") or "image", path)


def stage_class_folders(dataset_dir: Path, output_dir: Path) -> dict[str, Any]:
    """Check the ``train/`` and ``val/`` class folders under ``dataset_dir`` and copy them
    to ``output_dir`` with ``classmap.json``; returns the classes and per-split counts.
    A problem is a `DataError` naming the folder or file."""
    from tlt_core.data.classmap import CLASSMAP_FILE, write_classmap
    from tlt_core.networks.classification.data import list_class_folders

    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    for split in SPLITS:
        if not (dataset_dir / split).is_dir():
            raise DataError(
                f"no {split}/ folder: a classification dataset holds train/ and val/, one "
                "sub-directory per class in each",
                dataset_dir,
            )
    train = list_class_folders(dataset_dir / "train")
    # Validation classes must be the model's (a split may lack a class, not add one).
    val = list_class_folders(dataset_dir / "val", class_names=train.class_names)
    for folders in (train, val):
        _check_decodes(folders.paths)

    output_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.rmtree(output_dir / split, ignore_errors=True)
        shutil.copytree(dataset_dir / split, output_dir / split)
    write_classmap(output_dir / CLASSMAP_FILE, train.class_names)
    counts = {"classes": list(train.class_names), "train": train.counts(), "val": val.counts()}
    log.info(
        "classification data: %d classes, %d training and %d validation images",
        len(train.class_names),
        len(train),
        len(val),
    )
    return counts
