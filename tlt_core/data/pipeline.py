"""The tf.data input pipeline of the KITTI detectors: KITTI directories or TFRecords -> batches.

``build_dataset(experiment, training=..., batch_size=...)`` yields dicts (docs/architecture.md)::

    image       float32 [B, H, W, 3]  BGR, minus augmentation_config.image_mean
    boxes       float32 [B, N, 4]     pixel corners x1, y1, x2, y2 in the output image
    classes     int32   [B, N]        model class index 1..C (0 = padding)
    difficult   bool    [B, N]        occlusion > 0
    occlusion   int32   [B, N]        KITTI occlusion level (0..3)
    truncation  float32 [B, N]        KITTI truncation (0..1)
    orig_size   int32   [B, 2]        decoded image (h, w)
    frame_id    string  [B]

Sources (``dataset_config.data_sources`` for training, ``validation_data_sources`` for
evaluation, or ``sources=``): TFRecord file patterns (``tfrecords_path``, the layout of
:mod:`tlt_core.data.tfrecord`) and KITTI image/label directories. KITTI labels are read in
Python once (they are small, and a bad line is reported as ``file:line: field``); image
headers are checked up front so a corrupt or truncated file is named before training starts.
Images are read and decoded in the graph (PNG or JPEG, any size, 1/3/4 channels -> RGB).
A record that still fails to decode (a corrupt image inside a TFRecord) is skipped and
counted (:class:`InputStats`) instead of stopping the training.

Objects: classes are matched case-insensitively against ``target_class_mapping``; unmapped
classes and DontCare are dropped. Difficult objects (occlusion > 0) are dropped from
training unless ``include_difficult_in_training``; evaluation keeps them, flagged.

The pixels and boxes of each example go through the network's `DetectionTransform`:
``train`` (its augmentation chain, e.g. SSD's zoom-out / crop / flip / colour jitter) for
training, ``evaluate`` (resize and normalise only) for evaluation. Shuffling and
augmentation are deterministic given the seed (``seed=`` or the spec's ``random_seed``).

The spec (any network's) must offer ``random_seed``, ``path``, ``class_names``,
``class_mapping``, ``include_difficult_in_training``, ``data_sources`` and
``validation_data_sources``.
"""

from __future__ import annotations

import glob
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from tlt_core.data import kitti, tfrecord
from tlt_core.data.decode import decode_rgb
from tlt_core.errors import DataError
from tlt_core.io_utils import check_regular_file, read_bytes_limited

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
# Bytes read from the start of an image for the up-front header check (JPEG headers with
# large EXIF blocks are read in full when the frame header is not found in this prefix).
HEADER_PREFIX_BYTES = 64 * 1024
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with
JPEG_END = b"\xff\xd9"  # end-of-image marker
JPEG_TAIL_BYTES = 4096  # some writers append padding after the marker
# Serialized TFRecord examples held for shuffling (each holds an encoded image).
TFRECORD_SHUFFLE_BUFFER = 512


class DetectionTransform(Protocol):
    """A network's per-example image + boxes transform (TF ops, inside ``tf.data.map``)."""

    output_size: tuple[int, int]  # (H, W) of the model input

    def train(
        self, image: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """RGB uint8 ``[h, w, 3]``, pixel corners ``[N, 4]``, int64 seed ``[2]`` ->
        ``(model input float32 [H, W, 3], boxes [M, 4] in it, kept int32 [M])`` where
        ``kept`` indexes the input boxes that survived."""
        ...

    def evaluate(self, image: tf.Tensor, boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Resize and normalise only: ``(model input [H, W, 3], boxes [N, 4] in it)``."""
        ...


@dataclass(frozen=True)
class InputSource:
    """One data source: a TFRecord file pattern, or a KITTI image + label directory."""

    tfrecords: str | None = None
    image_dir: Path | None = None
    label_dir: Path | None = None

    def __post_init__(self) -> None:
        kitti_dirs = self.image_dir is not None and self.label_dir is not None
        if bool(self.tfrecords) == kitti_dirs:
            raise DataError(
                "a data source needs either tfrecords_path or both image_directory_path "
                "and label_directory_path",
                field="data_sources",
            )

    @classmethod
    def from_spec(cls, source: Any) -> InputSource:
        """From a resolved ``tlt_core.spec.DataSource`` (or a ``DataSource`` message)."""
        if source.tfrecords_path:
            return cls(tfrecords=source.tfrecords_path)
        return cls(
            image_dir=Path(source.image_directory_path) if source.image_directory_path else None,
            label_dir=Path(source.label_directory_path) if source.label_directory_path else None,
        )

    def tfrecord_files(self) -> list[str]:
        files = sorted(glob.glob(str(self.tfrecords)))
        if not files:
            raise DataError(
                "no TFRecord file matches the pattern", self.tfrecords, field="tfrecords_path"
            )
        return files

    def __str__(self) -> str:
        return self.tfrecords or f"{self.image_dir} + {self.label_dir}"


def input_sources(experiment: Any, *, training: bool) -> list[InputSource]:
    """The spec's training or validation data sources."""
    specs = experiment.data_sources if training else experiment.validation_data_sources
    field = "dataset_config.data_sources" if training else "dataset_config.validation_data_sources"
    if not specs:
        raise DataError("no data source configured", experiment.path, field=field)
    return [InputSource.from_spec(s) for s in specs]


def _as_sources(experiment: Any, sources, training: bool) -> list[InputSource]:
    if sources is None:
        return input_sources(experiment, training=training)
    if isinstance(sources, InputSource | str):
        sources = [sources]
    out = []
    for source in sources:
        if isinstance(source, InputSource):
            out.append(source)
        elif isinstance(source, str):
            out.append(InputSource(tfrecords=source))
        else:  # a spec DataSource (or DataSource message)
            out.append(InputSource.from_spec(source))
    return out


def dataset_size(experiment: Any, *, training: bool, sources=None) -> int:
    """Number of frames (images) in the sources; steps per epoch = ceil(size / batch)."""
    total = 0
    for source in _as_sources(experiment, sources, training):
        if source.tfrecords:
            total += sum(_record_count(f) for f in source.tfrecord_files())
        else:
            total += len(kitti.list_frames(source.image_dir, source.label_dir))
    return total


def _record_count(path: str) -> int:
    """Records in one TFRecord file, remembered while the file stays the same (a
    pipeline built with :class:`InputStats` needs it every epoch)."""
    info = tf.io.gfile.stat(path)
    key = (path, info.length, info.mtime_nsec)
    if key not in _RECORD_COUNTS:
        counter = tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1)
        _RECORD_COUNTS[key] = int(counter)
    return _RECORD_COUNTS[key]


_RECORD_COUNTS: dict[tuple[str, int, int], int] = {}


def steps_per_epoch(num_frames: int, batch_size: int) -> int:
    return max(1, math.ceil(num_frames / batch_size))


def check_image_file(path: str | Path) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header; :class:`DataError` naming the file when
    it is empty, not PNG/JPEG, has a broken header or is visibly truncated."""
    path = Path(path)
    check_regular_file(path, what="image file")
    try:
        with path.open("rb") as stream:
            head = stream.read(HEADER_PREFIX_BYTES)
            size = stream.seek(0, 2)
            stream.seek(max(size - JPEG_TAIL_BYTES, 0))
            tail = stream.read()
    except OSError as error:
        raise DataError(f"cannot read image ({error.strerror})", path) from None
    if not head:
        raise DataError("empty image file", path)
    try:
        fmt, width, height = tfrecord.image_format_and_size(head, path)
    except DataError:
        if size <= len(head):
            raise
        whole = read_bytes_limited(path, tfrecord.MAX_IMAGE_FILE_BYTES, what="image file")
        fmt, width, height = tfrecord.image_format_and_size(whole, path)
    if fmt == "png" and not tail.endswith(PNG_END):
        raise DataError("truncated PNG (no IEND chunk at the end)", path)
    if fmt == "jpeg" and JPEG_END not in tail:
        raise DataError("truncated JPEG (no end-of-image marker)", path)
    return fmt, width, height


class InputStats:
    """Records one pass reads and records its consumer got: the difference were skipped
    because they failed to decode.

    ``read`` is set when the pipeline is built (the size of its sources); ``delivered`` is
    added by whoever consumes the batches (:meth:`deliver`). Neither is counted inside the
    dataset: a stateful op in any dataset function makes tf.data's determinism rewrite
    (``enable_op_determinism``, on with a seed) run every map and prefetch sequentially.
    ``skipped`` is exact once the pass was consumed to its end.
    """

    def __init__(self) -> None:
        self.read = 0
        self.delivered = 0

    def deliver(self, images: int) -> None:
        self.delivered += int(images)

    @property
    def skipped(self) -> int:
        return max(self.read - self.delivered, 0)

    def log(self) -> None:
        if self.skipped:
            log.warning(
                "input pipeline: %d of %d records skipped (image failed to decode)",
                self.skipped,
                self.read,
            )


# -- reading ---------------------------------------------------------------------------------


def _kitti_records(source: InputSource) -> tuple[tf.data.Dataset, int]:
    """A dataset of raw records of a KITTI directory source: labels read here, once."""
    frames = kitti.list_frames(source.image_dir, source.label_dir)
    paths, ids, names, occlusion, truncation, boxes, counts = [], [], [], [], [], [], []
    for frame in frames:
        _, width, height = check_image_file(frame.image_path)
        # Boxes are clipped to the image as dataset-convert does, so both sources agree.
        objects, _ = kitti.clip_objects(
            kitti.read_label_file(frame.label_path), width, height, path=frame.label_path
        )
        paths.append(str(frame.image_path))
        ids.append(frame.frame_id)
        counts.append(len(objects))
        names.extend(o.class_name for o in objects)
        occlusion.extend(o.occlusion for o in objects)
        truncation.extend(o.truncation for o in objects)
        boxes.extend(o.box for o in objects)
    counts_t = tf.constant(counts, tf.int64)
    records = {
        "path": tf.constant(paths, tf.string),
        "frame_id": tf.constant(ids, tf.string),
        "class_names": tf.RaggedTensor.from_row_lengths(tf.constant(names, tf.string), counts_t),
        "occlusion": tf.RaggedTensor.from_row_lengths(tf.constant(occlusion, tf.int64), counts_t),
        "truncation": tf.RaggedTensor.from_row_lengths(
            tf.constant(np.asarray(truncation, np.float32)), counts_t
        ),
        "boxes": tf.RaggedTensor.from_row_lengths(
            tf.constant(np.asarray(boxes, np.float32).reshape(-1, 4)), counts_t
        ),
    }
    return tf.data.Dataset.from_tensor_slices(records), len(frames)


def _read_kitti_record(record: dict) -> dict:
    return {
        "encoded": tf.io.read_file(record["path"]),
        "frame_id": record["frame_id"],
        "class_names": record["class_names"],
        "occlusion": record["occlusion"],
        "truncation": record["truncation"],
        "boxes": record["boxes"],
    }


def _parse_tfrecord(serialized: tf.Tensor) -> dict:
    parsed = tfrecord.parse_example(serialized)
    return {
        "encoded": parsed[tfrecord.FRAME_ENCODED],
        "frame_id": parsed[tfrecord.FRAME_ID],
        "class_names": parsed[tfrecord.OBJECT_CLASS],
        "occlusion": parsed["target/occlusion"],
        "truncation": parsed["target/truncation"],
        "boxes": parsed["target/boxes"],
    }


def _source_dataset(
    source: InputSource, shuffle: bool, seed: int, calls: int = AUTOTUNE
) -> tuple[tf.data.Dataset, int]:
    """Raw records (encoded bytes + labels) of one source, shuffled if asked, and a size
    estimate (exact for KITTI directories, the file count for TFRecords)."""
    if source.tfrecords:
        files = source.tfrecord_files()
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 4),
            block_length=1,
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        if shuffle:
            dataset = dataset.shuffle(
                TFRECORD_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True
            )
        return dataset.map(_parse_tfrecord, num_parallel_calls=calls), len(files)
    dataset, count = _kitti_records(source)
    if shuffle:  # shuffle the (small) file list, not the decoded images
        dataset = dataset.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.map(_read_kitti_record, num_parallel_calls=calls), count


# -- objects ---------------------------------------------------------------------------------


class ClassIndex:
    """Lower-case source class -> model index (1..C); anything else (DontCare too) -> 0.

    A vectorised comparison against the few mapped names rather than a
    ``tf.lookup.StaticHashTable``: a table lookup is a stateful op, and under
    ``enable_op_determinism`` (any spec with a ``random_seed``) tf.data then runs the whole
    per-image map on one thread (and TensorFlow logs a ``use_unbounded_threadpool``
    NodeDef error each time it makes that rewrite, once per epoch)."""

    def __init__(self, experiment: Any) -> None:
        index = {name: i + 1 for i, name in enumerate(experiment.class_names)}
        keys, values = [], []
        for source, target in experiment.class_mapping.items():
            if source.lower() == kitti.DONTCARE:
                continue
            keys.append(source.lower())
            values.append(index[target.lower()])
        if not keys:
            raise DataError(
                "target_class_mapping maps no class",
                experiment.path,
                field="dataset_config.target_class_mapping",
            )
        self.keys = tf.constant(keys)
        self.values = tf.constant(values, tf.int32)

    def lookup(self, names: tf.Tensor) -> tf.Tensor:
        """Graph op: string ``[N]`` -> int32 ``[N]``."""
        match = tf.equal(names[:, tf.newaxis], self.keys[tf.newaxis, :])
        return tf.reduce_max(tf.where(match, self.values[tf.newaxis, :], 0), axis=1)


def _select_objects(record: dict, table: ClassIndex, keep_difficult: bool) -> tuple[tf.Tensor, ...]:
    classes = table.lookup(tf.strings.lower(record["class_names"]))
    difficult = record["occlusion"] > 0
    keep = classes > 0
    if not keep_difficult:
        keep &= ~difficult
    return (
        tf.boolean_mask(record["boxes"], keep),
        tf.boolean_mask(classes, keep),
        tf.boolean_mask(difficult, keep),
        tf.cast(tf.boolean_mask(record["occlusion"], keep), tf.int32),
        tf.cast(tf.boolean_mask(record["truncation"], keep), tf.float32),
    )


# -- the dataset -----------------------------------------------------------------------------


def build_dataset(
    experiment: Any,
    *,
    training: bool,
    batch_size: int,
    transform: DetectionTransform,
    sources: Sequence[InputSource | str] | InputSource | str | None = None,
    shuffle: bool | None = None,
    repeat: bool = False,
    max_objects: int | None = None,
    seed: int | None = None,
    stats: InputStats | None = None,
    parallel_calls: int | None = None,
) -> tf.data.Dataset:
    """Batches for training (augmented) or evaluation (resized only); see the module doc.

    ``sources``: :class:`InputSource` objects, TFRecord patterns or ``DataSource`` messages
    (default: the spec's training or validation sources). ``shuffle`` defaults to
    ``training``. ``max_objects`` pads (and truncates) every batch to that many objects;
    by default a batch is padded to its largest object count. ``stats`` collects how many
    records failed to decode and were skipped. ``parallel_calls``: how many records are
    read and transformed at once (a spec's ``n_workers``); None lets tf.data tune it.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be positive, got {batch_size}", field="batch_size")
    shuffle = training if shuffle is None else shuffle
    seed = int(experiment.random_seed if seed is None else seed)
    calls = parallel_calls or AUTOTUNE
    table = ClassIndex(experiment)
    keep_difficult = (not training) or experiment.include_difficult_in_training

    parts, sizes = [], []
    all_sources = _as_sources(experiment, sources, training)
    for i, source in enumerate(all_sources):
        dataset, size = _source_dataset(source, shuffle, seed + i, calls)
        parts.append(dataset)
        sizes.append(size)
    if len(parts) == 1:
        records = parts[0]
    elif shuffle:  # mix the sources in proportion to their sizes
        weights = [s / sum(sizes) for s in sizes]
        records = tf.data.Dataset.sample_from_datasets(
            parts, weights=weights, seed=seed, stop_on_empty_dataset=False
        )
    else:
        records = parts[0]
        for part in parts[1:]:
            records = records.concatenate(part)
    if stats is not None:
        if repeat:
            raise ValueError("InputStats count one pass: not for a repeated dataset")
        stats.read = dataset_size(experiment, training=training, sources=all_sources)
    if repeat:
        records = records.repeat()

    def example(index: tf.Tensor, record: dict) -> dict:
        image = decode_rgb(record["encoded"])
        boxes, classes, difficult, occlusion, truncation = _select_objects(
            record, table, keep_difficult
        )
        if training:
            pixels, boxes, kept = transform.train(
                image, boxes, tf.stack([tf.constant(seed, tf.int64), index])
            )
            classes, difficult = tf.gather(classes, kept), tf.gather(difficult, kept)
            occlusion, truncation = tf.gather(occlusion, kept), tf.gather(truncation, kept)
        else:
            pixels, boxes = transform.evaluate(image, boxes)
        if max_objects is not None:
            boxes, classes, difficult = (
                boxes[:max_objects],
                classes[:max_objects],
                difficult[:max_objects],
            )
            occlusion, truncation = occlusion[:max_objects], truncation[:max_objects]
        return {
            "image": pixels,
            "boxes": boxes,
            "classes": classes,
            "difficult": difficult,
            "occlusion": occlusion,
            "truncation": truncation,
            "orig_size": tf.shape(image, out_type=tf.int32)[:2],
            "frame_id": record["frame_id"],
        }

    dataset = records.enumerate().map(example, num_parallel_calls=calls, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True)
    n = max_objects
    out_h, out_w = transform.output_size
    dataset = dataset.padded_batch(
        batch_size,
        padded_shapes={
            # the transform's channels: 3, or 1 for a grey model input (SSD output_channel)
            "image": [out_h, out_w, getattr(transform, "channels", 3)],
            "boxes": [n, 4],
            "classes": [n],
            "difficult": [n],
            "occlusion": [n],
            "truncation": [n],
            "orig_size": [2],
            "frame_id": [],
        },
        padding_values={
            "image": 0.0,
            "boxes": 0.0,
            "classes": 0,
            "difficult": False,
            "occlusion": 0,
            "truncation": 0.0,
            "orig_size": 0,
            "frame_id": "",
        },
    )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    # Parallelism comes from running many elements at once; one thread per element op
    # avoids oversubscribing the inter-op pool (the tf.data performance guide's advice).
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options).prefetch(AUTOTUNE)
