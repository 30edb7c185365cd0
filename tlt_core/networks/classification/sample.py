"""A deterministic class-per-directory dataset (``tlt sample-data --task classification``).

Layout written under ``out_dir`` (002, 4.1)::

    train/<class>/000000.png ...   training images
    val/<class>/<id>.png ...       validation images (ids follow the training ids)
    specs/classification_train.txt the classification spec reading train/ and val/
    sample_data.json               manifest: parameters and per-split image counts

Each image shows one object of its class, drawn by the detection sample's shape drawers
(`tlt_core.data.sample`: car, van, pedestrian, cyclist, person_sitting; told apart by
shape, colours random) on the detection sample's textured, cluttered background at
half contrast. Images have their own size
(160-320 pixels wide, aspect 0.75-1.33) and the object covers 60-90 % of the side that
limits it, at a random place. Image ``i`` has class ``i mod 5`` and depends only on
``seed`` and ``i``: the same arguments give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tlt_core.data.sample import ASPECT, CLASSES, background, draw_object

MANIFEST = "sample_data.json"
SPEC_NAME = "classification_train.txt"
WIDTH_RANGE = (160, 321)
ASPECT_RANGE = (0.75, 1.33)  # height / width
FILL_RANGE = (0.6, 0.9)
BACKGROUND_CONTRAST = 0.5

# Tuned on this data (tests/test_classification_quality.py): resnet10 at 64x64 from
# scratch. Small images need no more than 64 pixels; SGD with a cosine decay converges
# within the epochs below on two CPU cores.
SPEC_DEFAULTS: dict[str, object] = {
    "arch": "resnet",
    "n_layers": 10,
    "input_size": 64,
    "batch_size": 32,
    "n_epochs": 14,
    "learning_rate": 0.05,
    "weight_decay": "5e-5",
    "random_seed": 42,
    "preprocess_mode": "caffe",
}

# The local pipeline run (minutes on 2 CPU cores for train + retrain): a smaller input and
# fewer epochs.
FAST_OVERRIDES: dict[str, object] = {"input_size": 32, "n_epochs": 4}

_SPEC_TEMPLATE = """\
model_config {{
  arch: "{arch}"
  n_layers: {n_layers}
  input_image_size: "3,{input_size},{input_size}"
}}
train_config {{
  train_dataset_path: "{train}"
  val_dataset_path: "{val}"
  optimizer: "sgd"
  batch_size_per_gpu: {batch_size}
  n_epochs: {n_epochs}
  n_workers: 2
  random_seed: {random_seed}
  preprocess_mode: "{preprocess_mode}"
  # regularizer
  reg_config {{
    type: "L2"
    scope: "Conv2D,Dense"
    weight_decay: {weight_decay}
  }}
  # learning_rate
  lr_config {{
    cosine {{
      learning_rate: {learning_rate}
      min_lr_ratio: 0.01
      soft_start: 0.05
    }}
  }}
}}
eval_config {{
  eval_dataset_path: "{val}"
  top_k: 2
  batch_size: {batch_size}
}}
"""


def sample_spec(data_dir: str | Path, **overrides: object) -> str:
    """The classification spec text for a dataset generated under ``data_dir``;
    ``overrides`` replace entries of :data:`SPEC_DEFAULTS`."""
    unknown = set(overrides) - set(SPEC_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown sample spec setting(s): {', '.join(sorted(unknown))}")
    root = Path(data_dir).resolve()
    return _SPEC_TEMPLATE.format(
        **{**SPEC_DEFAULTS, **overrides}, train=root / "train", val=root / "val"
    )


def render_image(rng: np.random.Generator, class_name: str) -> np.ndarray:
    """One BGR image showing one ``class_name`` object."""
    width = int(rng.integers(*WIDTH_RANGE))
    height = round(width * float(rng.uniform(*ASPECT_RANGE)))
    # The object is the subject: its background is the detection sample's clutter at
    # half contrast, so the class is learnable from a few hundred images.
    clutter = background(rng, width, height)
    img = cv2.addWeighted(clutter, BACKGROUND_CONTRAST, clutter, 0.0, 0.0)
    img = cv2.add(img, np.full_like(img, round(255 * (1 - BACKGROUND_CONTRAST) / 2)))
    aspect = float(rng.uniform(*ASPECT[class_name]))  # object width / height
    fill = float(rng.uniform(*FILL_RANGE))
    box_h = min(height * fill, width * fill / aspect)
    box_w = box_h * aspect
    x = float(rng.uniform(0, width - box_w))
    y = float(rng.uniform(0, height - box_h))
    draw_object(img, rng, class_name, (x, y, box_w, box_h))
    return img


def generate_classification_sample(
    out_dir: str | Path,
    *,
    num_train: int = 1000,
    num_val: int = 200,
    seed: int = 0,
    spec_root: str | Path | None = None,
) -> dict[str, dict[str, int]]:
    """Write the dataset of the module doc into ``out_dir``; per-split class counts.

    ``spec_root``: the directory the spec names (default ``out_dir``; the stage writes
    into a temporary directory and renames it).
    """
    root = Path(out_dir)
    final_root = Path(spec_root) if spec_root is not None else root
    splits = {"train": range(num_train), "val": range(num_train, num_train + num_val)}
    counts: dict[str, dict[str, int]] = {}
    params = (cv2.IMWRITE_PNG_COMPRESSION, 1)
    for split, indices in splits.items():
        counter = dict.fromkeys(CLASSES, 0)
        for name in CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for index in indices:
            name = CLASSES[index % len(CLASSES)]
            img = render_image(np.random.default_rng([seed, index]), name)
            ok, encoded = cv2.imencode(".png", img, params)
            if not ok:
                raise RuntimeError("OpenCV could not encode a PNG")
            (root / split / name / f"{index:06d}.png").write_bytes(encoded.tobytes())
            counter[name] += 1
        counts[split] = dict(sorted(counter.items()))
    specs = root / "specs"
    specs.mkdir(exist_ok=True)
    (specs / SPEC_NAME).write_text(sample_spec(final_root))
    manifest = {
        "generator": "tlt_core.networks.classification.sample",
        "task": "classification",
        "num_train": num_train,
        "num_val": num_val,
        "seed": seed,
        "class_counts": counts,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return counts
