"""Class-per-directory input (002, 4.1): listing, ``classmap.json``, tf.data batches.

A dataset directory holds one sub-directory per class, named by the class; the images
in it (PNG, JPEG, BMP; any size) are that class's. Class index = position of the folder
name in the sorted list of names (the order ``classmap.json`` records and DeepStream's
``labels.txt`` follows). Evaluation and inference map folders through the model's class
list instead, so a validation directory that lacks a class still scores correctly.

Pixels are touched once, as in the SSD pipeline: the geometry (random crop, flip, or the
evaluation centre crop) is a window drawn as TF ops and rendered by
`tlt_core.data.render_cv` (OpenCV) together with the colour jitter; then the
``preprocess_mode`` of the spec:

- ``caffe``: BGR minus the ImageNet mean (103.939, 116.779, 123.68), 0..255 scale;
- ``torch``: RGB / 255 minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225);
- ``tf``: RGB / 127.5 - 1.

Training crop (``enable_random_crop``): a window of a random area fraction in
[`CROP_MIN_AREA`, 1] and aspect ratio in [3/4, 4/3] (log-uniform) at a random place,
then a horizontal flip with probability 1/2. Evaluation (``enable_center_crop``): the
central `CENTER_CROP_FRACTION` of each side, resized (as resizing to side / 0.875 and
cutting the centre, TLT's evaluation crop); without it the whole image is resized.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tlt_core.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# The usual Inception crop keeps 8 % of the area at least; the objects of small datasets
# fill most of their image, and a crop of 8 % often cuts the object out: 25 % keeps it.
CROP_MIN_AREA = 0.25
CROP_ASPECT = (3.0 / 4.0, 4.0 / 3.0)
CENTER_CROP_FRACTION = 0.875
FLIP_PROBABILITY = 0.5
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)
# Colour augmentation amounts (brightness in levels, contrast/saturation factors, hue in
# degrees): SSD's photometric distortion, shared with the detectors.
COLOR_JITTER = {"brightness": 32.0, "contrast": 0.5, "saturation": 0.5, "hue": 18.0}
NEUTRAL_JITTER = (0.0, 1.0, 1.0, 0.0, 1.0)


@dataclass(frozen=True)
class ClassFolders:
    """The images of one class-per-directory dataset, in a stable order."""

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[int, ...]  # index into class_names

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        found = np.bincount(np.asarray(self.labels, np.int64), minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found, strict=True)}


def is_image(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def list_images(directory: str | Path) -> list[Path]:
    """The image files directly in ``directory``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError("image directory not found", directory)
    return sorted(p for p in directory.iterdir() if is_image(p))


def class_directory_names(root: str | Path) -> tuple[str, ...]:
    """The sorted class directory names under ``root`` (the class order of a dataset)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("dataset directory not found", root)
    names = tuple(
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    if not names:
        raise DataError("no class directories (expected one sub-directory per class)", root)
    return names


def list_class_folders(
    root: str | Path, *, class_names: Sequence[str] | None = None
) -> ClassFolders:
    """The dataset under ``root``; classes are its sorted sub-directory names, or
    ``class_names`` (a model's) where given: a folder not among them is a `DataError`."""
    root = Path(root)
    folders = class_directory_names(root)
    if class_names is None:
        names = tuple(folders)
    else:
        names = tuple(class_names)
        unknown = [f for f in folders if f not in names]
        if unknown:
            raise DataError(
                f"class director{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                f"not among the model's classes ({', '.join(names)})",
                root,
            )
    index = {name: i for i, name in enumerate(names)}
    paths, labels = [], []
    for folder in folders:
        for image in list_images(root / folder):
            paths.append(str(image))
            labels.append(index[folder])
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class directories", root)
    return ClassFolders(root, names, tuple(paths), tuple(labels))


# --- tf.data --------------------------------------------------------------------------------


def preprocess(pixels, mode: str):
    """RGB float pixels ``[..., 3]`` (0..255) -> the model input of ``preprocess_mode``."""
    import tensorflow as tf

    pixels = tf.convert_to_tensor(pixels, tf.float32)
    if mode == "caffe":
        return tf.reverse(pixels, axis=[-1]) - tf.constant(CAFFE_MEAN_BGR, tf.float32)
    if mode == "torch":
        mean = tf.constant(TORCH_MEAN_RGB, tf.float32)
        std = tf.constant(TORCH_STD_RGB, tf.float32)
        return (pixels / 255.0 - mean) / std
    if mode == "tf":
        return pixels / 127.5 - 1.0
    raise ValueError(f"unknown preprocess_mode {mode!r}")


def preprocess_numpy(pixels_rgb: np.ndarray, mode: str) -> np.ndarray:
    """:func:`preprocess` in numpy (export calibration, ONNX inference)."""
    pixels = np.asarray(pixels_rgb, np.float32)
    if mode == "caffe":
        return pixels[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
    if mode == "torch":
        return (pixels / 255.0 - np.asarray(TORCH_MEAN_RGB, np.float32)) / np.asarray(
            TORCH_STD_RGB, np.float32
        )
    if mode == "tf":
        return pixels / 127.5 - 1.0
    raise ValueError(f"unknown preprocess_mode {mode!r}")


class Window(NamedTuple):
    """The part of the source image the output shows (float32 tensors): ``canvas_hw`` its
    size in source pixels, ``origin_yx`` where the image's top-left corner sits relative
    to it, ``flip`` mirrored left-right (`tlt_core.data.render_cv` conventions)."""

    canvas_hw: Any
    origin_yx: Any
    flip: Any


def render(image, window: Window, output_hw: tuple[int, int], jitter=None):
    """Resample ``window`` of the uint8 RGB ``image`` to ``output_hw`` and apply the colour
    ``jitter`` ([brightness, contrast, saturation, hue, contrast_first]; none by default)
    in one OpenCV pass (`tlt_core.data.render_cv.render_window`): float32 RGB 0..255."""
    import tensorflow as tf

    from tlt_core.data.render_cv import render_window

    pixels = tf.numpy_function(
        render_window,
        [
            image,
            window.canvas_hw,
            window.origin_yx,
            window.flip,
            tf.constant(output_hw, tf.int32),
            tf.zeros([3], tf.float32),
            tf.constant(NEUTRAL_JITTER, tf.float32) if jitter is None else jitter,
            tf.zeros([0], tf.float32),
        ],
        tf.float32,
        stateful=False,
        name="render_window",
    )
    pixels.set_shape([output_hw[0], output_hw[1], 3])
    return pixels


def draw_jitter(seed):
    """Colour augmentation amounts for `render`: each of brightness, contrast, saturation
    and hue applied with probability 1/2 within `COLOR_JITTER`, in a random order."""
    import tensorflow as tf

    u = tf.random.stateless_uniform([9], seed)
    b, c, s, h = (COLOR_JITTER[k] for k in ("brightness", "contrast", "saturation", "hue"))

    def amount(i: int, low: float, high: float, neutral: float):
        return tf.where(u[2 * i] < 0.5, low + (high - low) * u[2 * i + 1], neutral)

    return tf.stack(
        [
            amount(0, -b, b, 0.0),
            amount(1, 1.0 - c, 1.0 + c, 1.0),
            amount(2, 1.0 - s, 1.0 + s, 1.0),
            amount(3, -h, h, 0.0),
            tf.cast(u[8] < 0.5, tf.float32),
        ]
    )


def crop_window(image, seed, *, random_crop: bool, flip: bool) -> Window:
    """The training window of one image: a random crop (see the module doc), mirrored
    with probability 1/2."""
    import tensorflow as tf

    s_area, s_ratio, s_y, s_x, s_flip = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=5)
    )
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    canvas, origin = hw, tf.zeros([2], tf.float32)
    if random_crop:
        area = tf.random.stateless_uniform([], s_area, CROP_MIN_AREA, 1.0) * hw[0] * hw[1]
        log_ratio = tf.random.stateless_uniform(
            [], s_ratio, math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])
        )
        ratio = tf.exp(log_ratio)  # width / height
        crop_h = tf.minimum(tf.sqrt(area / ratio), hw[0])
        crop_w = tf.minimum(tf.sqrt(area * ratio), hw[1])
        y0 = tf.random.stateless_uniform([], s_y) * (hw[0] - crop_h)
        x0 = tf.random.stateless_uniform([], s_x) * (hw[1] - crop_w)
        canvas, origin = tf.stack([crop_h, crop_w]), -tf.stack([y0, x0])
    flipped = tf.random.stateless_uniform([], s_flip) < FLIP_PROBABILITY if flip else False
    return Window(canvas, origin, tf.convert_to_tensor(flipped))


def center_window(image, fraction: float) -> Window:
    """The central ``fraction`` of each side of ``image``."""
    import tensorflow as tf

    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    crop = hw * fraction
    return Window(crop, -(hw - crop) / 2.0, tf.constant(False))


def eval_pixels(image, output_hw: tuple[int, int], *, center_crop: bool):
    """Decoded uint8 RGB -> float32 RGB ``[H, W, 3]`` as evaluation and inference see it."""
    fraction = CENTER_CROP_FRACTION if center_crop else 1.0
    return render(image, center_window(image, fraction), output_hw)


def build_dataset(
    folders: ClassFolders,
    *,
    input_hw: tuple[int, int],
    preprocess_mode: str,
    batch_size: int,
    training: bool,
    seed: int = 0,
    random_crop: bool = True,
    center_crop: bool = True,
    color_augmentation: bool = False,
    shuffle: bool | None = None,
    stats=None,
):
    """Batches ``{"image": float32 [B, H, W, 3] model input, "label": int32 [B],
    "path": string [B]}``: augmented for ``training``, centre-cropped (or resized)
    otherwise. Element ``i`` of an epoch is drawn from ``(seed, i)`` alone, so the same
    seed gives the same batches. Images that fail to decode are skipped with a warning
    and, with ``stats`` (`tlt_core.data.pipeline.InputStats`), counted.
    """
    import tensorflow as tf

    from tlt_core.data.decode import decode_rgb

    if batch_size < 1:
        raise DataError(f"batch size must be positive, got {batch_size}", field="batch_size")
    shuffle = training if shuffle is None else shuffle
    records = tf.data.Dataset.from_tensor_slices(
        (list(folders.paths), np.asarray(folders.labels, np.int32))
    )
    if shuffle:
        records = records.shuffle(len(folders), seed=seed, reshuffle_each_iteration=False)

    def example(index, record):
        path, label = record
        image = decode_rgb(tf.io.read_file(path))
        if training:
            element_seed = tf.stack([tf.constant(seed, tf.int64), index])
            crop_seed, colour_seed = tf.unstack(
                tf.random.experimental.stateless_split(element_seed, num=2)
            )
            window = crop_window(image, crop_seed, random_crop=random_crop, flip=True)
            jitter = draw_jitter(colour_seed) if color_augmentation else None
            pixels = render(image, window, input_hw, jitter)
        else:
            pixels = eval_pixels(image, input_hw, center_crop=center_crop)
        return {"image": preprocess(pixels, preprocess_mode), "label": label, "path": path}

    if stats is not None:  # the consumer adds what it gets (InputStats.deliver)
        stats.read = len(folders)
    dataset = records.enumerate().map(
        example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size)
    options = tf.data.Options()
    options.deterministic = True
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def mixup(images, one_hot, seed, alpha: float):
    """Mix each example with another of the batch: ``lam * a + (1 - lam) * b`` for images
    and labels, one ``lam ~ Beta(alpha, alpha)`` per example (graph op, stateless)."""
    import tensorflow as tf

    s_a, s_b, s_perm = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    n = tf.shape(images)[0]
    ga = tf.random.stateless_gamma([n], s_a, alpha=alpha)
    gb = tf.random.stateless_gamma([n], s_b, alpha=alpha)
    lam = ga / tf.maximum(ga + gb, 1e-12)
    order = tf.argsort(tf.random.stateless_uniform([n], s_perm))
    lam_image = tf.reshape(lam, [-1, 1, 1, 1])
    lam_label = tf.reshape(lam, [-1, 1])
    images = lam_image * images + (1.0 - lam_image) * tf.gather(images, order)
    one_hot = lam_label * one_hot + (1.0 - lam_label) * tf.gather(one_hot, order)
    return images, one_hot
