"""The TFRecord feature layout of a converted KITTI frame: the one place that defines it.

One ``tf.train.Example`` per frame:

=========================  ===========  =============================================
key                        type         value
=========================  ===========  =============================================
frame/id                   bytes        frame id (image file stem)
frame/width, frame/height  int64        image size in pixels, read from the header
frame/format               bytes        ``png`` or ``jpeg``
frame/encoded              bytes        the image file's bytes, unchanged
target/object_class        bytes list   class names as written in the label
target/truncation          float list
target/occlusion           int64 list
target/alpha               float list
target/coordinates_x1..y2  float list   pixel corners (x1, y1, x2, y2)
target/dimensions_h/w/l    float list   3-D height, width, length
target/location_x/y/z      float list   3-D location
target/rotation_y          float list
=========================  ===========  =============================================

:func:`build_example` is pure protobuf; :func:`parse_example` uses TF ops (for tf.data).
:func:`image_size_from_header` reads a PNG/JPEG size without decoding the image.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tlt_core.data.kitti import KittiObject
from tlt_core.errors import DataError

if TYPE_CHECKING:
    import tensorflow as tf

FRAME_ID = "frame/id"
FRAME_WIDTH = "frame/width"
FRAME_HEIGHT = "frame/height"
FRAME_FORMAT = "frame/format"
FRAME_ENCODED = "frame/encoded"
OBJECT_CLASS = "target/object_class"

# Per-object float features: key -> KittiObject attribute.
OBJECT_FLOAT_FEATURES: dict[str, str] = {
    "target/truncation": "truncation",
    "target/alpha": "alpha",
    "target/coordinates_x1": "x1",
    "target/coordinates_y1": "y1",
    "target/coordinates_x2": "x2",
    "target/coordinates_y2": "y2",
    "target/dimensions_h": "height",
    "target/dimensions_w": "width",
    "target/dimensions_l": "length",
    "target/location_x": "x",
    "target/location_y": "y",
    "target/location_z": "z",
    "target/rotation_y": "rotation_y",
}
# Per-object int64 features: key -> KittiObject attribute.
OBJECT_INT_FEATURES: dict[str, str] = {"target/occlusion": "occlusion"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8"
# JPEG start-of-frame markers carrying the size: C0..CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_format_and_size(data: bytes, path: str | Path | None = None) -> tuple[str, int, int]:
    """``(format, width, height)`` of PNG or JPEG bytes, from the header only.

    Raises :class:`DataError` naming ``path`` when the bytes are neither, or truncated.
    """
    if data.startswith(PNG_SIGNATURE):
        # The IHDR chunk comes first: length(4) type(4) width(4) height(4).
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise DataError("corrupt PNG: no IHDR chunk", path)
        width, height = struct.unpack(">II", data[16:24])
        fmt = "png"
    elif data.startswith(JPEG_SIGNATURE):
        width, height = _jpeg_size(data, path)
        fmt = "jpeg"
    else:
        raise DataError("not a PNG or JPEG image", path)
    if width == 0 or height == 0:
        raise DataError(f"corrupt {fmt.upper()}: size {width}x{height}", path)
    return fmt, width, height


def _jpeg_size(data: bytes, path) -> tuple[int, int]:
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise DataError(f"corrupt JPEG: no marker at byte {pos}", path)
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise DataError(f"corrupt JPEG: segment length {length} at byte {pos}", path)
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise DataError("corrupt JPEG: no frame header (SOF) found", path)


def image_size_from_header(data: bytes, path: str | Path | None = None) -> tuple[int, int]:
    """``(width, height)`` of PNG or JPEG bytes without decoding them."""
    _, width, height = image_format_and_size(data, path)
    return width, height


def build_example(
    frame_id: str,
    image_bytes: bytes,
    fmt: str,
    width: int,
    height: int,
    objects: Sequence[KittiObject],
) -> tf.train.Example:
    """The ``tf.train.Example`` of one frame (pure protobuf, no graph ops)."""
    from tensorflow.core.example import example_pb2

    # Filled in place: building Feature messages first and passing them to constructors
    # copies every message (the image bytes included), ~50x slower for a 100 KiB image.
    example = example_pb2.Example()
    feature = example.features.feature
    feature[FRAME_ID].bytes_list.value.append(frame_id.encode("utf-8"))
    feature[FRAME_WIDTH].int64_list.value.append(int(width))
    feature[FRAME_HEIGHT].int64_list.value.append(int(height))
    feature[FRAME_FORMAT].bytes_list.value.append(fmt.encode("ascii"))
    feature[FRAME_ENCODED].bytes_list.value.append(bytes(image_bytes))
    feature[OBJECT_CLASS].bytes_list.value.extend(o.class_name.encode("utf-8") for o in objects)
    for key, attr in OBJECT_FLOAT_FEATURES.items():
        feature[key].float_list.value.extend(float(getattr(o, attr)) for o in objects)
    for key, attr in OBJECT_INT_FEATURES.items():
        feature[key].int64_list.value.extend(int(getattr(o, attr)) for o in objects)
    return example


def serialize_example(
    frame_id: str,
    image_bytes: bytes,
    fmt: str,
    width: int,
    height: int,
    objects: Sequence[KittiObject],
) -> bytes:
    """:func:`build_example`, serialised (what a TFRecord file holds)."""
    return build_example(frame_id, image_bytes, fmt, width, height, objects).SerializeToString()


def feature_spec() -> dict:
    """The ``tf.io.parse_single_example`` feature description of the layout."""
    import tensorflow as tf

    spec = {
        FRAME_ID: tf.io.FixedLenFeature([], tf.string),
        FRAME_WIDTH: tf.io.FixedLenFeature([], tf.int64),
        FRAME_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        FRAME_FORMAT: tf.io.FixedLenFeature([], tf.string),
        FRAME_ENCODED: tf.io.FixedLenFeature([], tf.string),
        OBJECT_CLASS: tf.io.VarLenFeature(tf.string),
    }
    for key in OBJECT_FLOAT_FEATURES:
        spec[key] = tf.io.VarLenFeature(tf.float32)
    for key in OBJECT_INT_FEATURES:
        spec[key] = tf.io.VarLenFeature(tf.int64)
    return spec


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parse one serialised example with TF ops (usable inside ``tf.data.Dataset.map``).

    Returns a dict keyed by the feature names above: scalars for the ``frame/*`` keys and
    dense 1-D tensors of length N (objects) for the ``target/*`` keys (per-object lists are
    densified; ``target/object_class`` is a string tensor). Also ``target/boxes``: float32
    ``[N, 4]`` pixel corners ``x1, y1, x2, y2``.
    """
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, feature_spec())
    out: dict[str, tf.Tensor] = {}
    for key, value in parsed.items():
        if isinstance(value, tf.SparseTensor):
            default = "" if value.dtype == tf.string else 0
            value = tf.sparse.to_dense(value, default_value=default)
        out[key] = value
    out["target/boxes"] = tf.stack(
        [out[f"target/coordinates_{c}"] for c in ("x1", "y1", "x2", "y2")], axis=-1
    )
    return out
