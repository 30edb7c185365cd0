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

:func:`encode_example` writes the ``tf.train.Example`` wire format directly (map entries in
key order, as protobuf's deterministic serialisation orders them), returning the image bytes
as a part of their own so that neither encoding nor :class:`RecordWriter` copies them; it is
the one encoder: :func:`serialize_example` joins its parts and :func:`build_example` parses
them back into a message. :class:`RecordWriter` writes the TFRecord framing (the same bytes as
``tf.io.TFRecordWriter`` without compression) with no TensorFlow import.
:func:`parse_example` uses TF ops (for tf.data). :func:`image_size_from_header` reads a
PNG/JPEG size without decoding the image.
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
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
# Largest decoded image accepted (8192 x 8192, 192 MiB as RGB): checked from the header, so a
# small file claiming a huge size is refused before any pixel memory is allocated.
MAX_IMAGE_PIXELS = 8192 * 8192
MAX_IMAGE_FILE_BYTES = 256 << 20
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
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(
            f"{width}x{height} image: more than the {MAX_IMAGE_PIXELS} pixels this tlt decodes",
            path,
        )
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


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]  # most lengths here: called ~100 times per frame
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = tuple(bytes((i,)) for i in range(0x100))


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: tag byte, varint length, payload."""
    return _ONE_BYTE[tag] + _varint(len(payload)) + payload


# Wire tags (field number << 3 | 2: length-delimited) of the tf.train.Example messages.
# Field 1: Example.features, Features.feature (a map entry), an entry's key,
# Feature.bytes_list, and the value of BytesList / FloatList / Int64List (packed).
_TAG_1 = 0x0A
_TAG_MAP_VALUE = 0x12  # map entry value
_TAG_FLOAT_LIST = 0x12  # Feature.float_list
_TAG_INT64_LIST = 0x1A  # Feature.int64_list
_INT64_MASK = (1 << 64) - 1  # negative int64 varints are written as 64-bit two's complement
_LITTLE_ENDIAN = sys.byteorder == "little"


def _bytes_feature(values: Sequence[bytes]) -> bytes:
    return _field(_TAG_1, b"".join([_field(_TAG_1, v) for v in values]))


def _float_feature(values: Sequence[float]) -> bytes:
    # array("f") rounds each double to float32 as protobuf does (out of range -> inf).
    packed = array("f", values)
    if not _LITTLE_ENDIAN:
        packed.byteswap()
    body = _field(_TAG_1, packed.tobytes()) if values else b""  # packed; empty: omitted
    return _field(_TAG_FLOAT_LIST, body)


def _int64_feature(values: Sequence[int]) -> bytes:
    body = _field(_TAG_1, b"".join([_varint(v & _INT64_MASK) for v in values])) if values else b""
    return _field(_TAG_INT64_LIST, body)


def _map_entry(key: str, feature: bytes) -> bytes:
    return _field(_TAG_1, _KEY_FIELDS[key] + _field(_TAG_MAP_VALUE, feature))


_KEY_FIELDS = {
    key: _field(_TAG_1, key.encode("utf-8"))
    for key in (FRAME_ID, FRAME_WIDTH, FRAME_HEIGHT, FRAME_FORMAT, FRAME_ENCODED, OBJECT_CLASS,
                *OBJECT_FLOAT_FEATURES, *OBJECT_INT_FEATURES)
}  # fmt: skip
# Map entries are written in key order; the image entry splits them in two.
_KEYS_BEFORE_IMAGE = sorted(k for k in _KEY_FIELDS if k < FRAME_ENCODED)
_KEYS_AFTER_IMAGE = sorted(k for k in _KEY_FIELDS if k > FRAME_ENCODED)
_FLOAT_ATTRS = operator.attrgetter(*OBJECT_FLOAT_FEATURES.values())  # > 1 name: a tuple


def encode_example(
    frame_id: str,
    image_bytes: bytes,
    fmt: str,
    width: int,
    height: int,
    objects: Sequence[KittiObject],
) -> tuple[bytes, bytes, bytes]:
    """The serialised ``tf.train.Example`` of one frame as ``(head, image_bytes, tail)``.

    ``b"".join(parts)`` is the message: the bytes protobuf's deterministic serialisation
    gives for it. The image is returned as is, not copied: at ~100 KiB it is nearly all
    of the record.
    """
    features = {
        FRAME_ID: _bytes_feature([frame_id.encode("utf-8")]),
        FRAME_WIDTH: _int64_feature([int(width)]),
        FRAME_HEIGHT: _int64_feature([int(height)]),
        FRAME_FORMAT: _bytes_feature([fmt.encode("ascii")]),
        OBJECT_CLASS: _bytes_feature([o.class_name.encode("utf-8") for o in objects]),
    }
    # One row of float attributes per object, transposed to one column per feature.
    n_floats = len(OBJECT_FLOAT_FEATURES)
    columns = list(zip(*map(_FLOAT_ATTRS, objects), strict=True)) if objects else [()] * n_floats
    for key, column in zip(OBJECT_FLOAT_FEATURES, columns, strict=True):
        features[key] = _float_feature(column)
    for key, attr in OBJECT_INT_FEATURES.items():
        features[key] = _int64_feature([int(getattr(o, attr)) for o in objects])
    # The image's map entry, entry(key, Feature(bytes_list=BytesList([image]))), up to the
    # image bytes; its lengths are known without touching the image.
    value_head = bytes((_TAG_1,)) + _varint(len(image_bytes))
    bytes_list_len = len(value_head) + len(image_bytes)
    bytes_list_head = bytes((_TAG_1,)) + _varint(bytes_list_len)
    feature_len = len(bytes_list_head) + bytes_list_len
    feature_head = bytes((_TAG_MAP_VALUE,)) + _varint(feature_len)
    key_field = _KEY_FIELDS[FRAME_ENCODED]
    entry_len = len(key_field) + len(feature_head) + feature_len
    image_head = b"".join(
        [bytes((_TAG_1,)), _varint(entry_len), key_field, feature_head, bytes_list_head, value_head]
    )
    before = b"".join([_map_entry(key, features[key]) for key in _KEYS_BEFORE_IMAGE])
    after = b"".join([_map_entry(key, features[key]) for key in _KEYS_AFTER_IMAGE])
    features_len = len(before) + len(image_head) + len(image_bytes) + len(after)
    head = bytes((_TAG_1,)) + _varint(features_len) + before + image_head
    return head, image_bytes, after


def serialize_example(
    frame_id: str,
    image_bytes: bytes,
    fmt: str,
    width: int,
    height: int,
    objects: Sequence[KittiObject],
) -> bytes:
    """:func:`encode_example` joined: the bytes one TFRecord record holds."""
    return b"".join(encode_example(frame_id, image_bytes, fmt, width, height, objects))


def build_example(
    frame_id: str,
    image_bytes: bytes,
    fmt: str,
    width: int,
    height: int,
    objects: Sequence[KittiObject],
) -> tf.train.Example:
    """The ``tf.train.Example`` of one frame (the :func:`serialize_example` bytes, parsed)."""
    from tensorflow.core.example import example_pb2

    return example_pb2.Example.FromString(
        serialize_example(frame_id, image_bytes, fmt, width, height, objects)
    )


def _masked_crc(data_crc: int) -> int:
    """TFRecord's masked CRC-32C (so that a CRC of data holding CRCs stays well spread)."""
    return (((data_crc >> 15) | (data_crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class RecordWriter:
    """Writes TFRecord files: per record ``uint64 length, uint32 masked_crc32c(length),
    data, uint32 masked_crc32c(data)`` (little-endian), as ``tf.io.TFRecordWriter`` does
    without compression. A record is given as parts (see :func:`encode_example`) so the
    image bytes are checksummed and written without being joined into a copy. No fsync:
    the caller renames the finished file into place (atomic, not durable on power loss).
    """

    def __init__(self, path: str | Path) -> None:
        import google_crc32c  # C (SSE4.2) CRC-32C; imported here: only writers need it

        self._crc32c = google_crc32c
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close / the with block)

    def write(self, parts: Sequence[bytes]) -> None:
        crc32c = self._crc32c
        length = struct.pack("<Q", sum(len(p) for p in parts))
        crc = 0
        for part in parts:
            crc = crc32c.extend(crc, part)
        write = self._file.write
        write(length + struct.pack("<I", _masked_crc(crc32c.value(length))))
        for part in parts:
            write(part)
        write(struct.pack("<I", _masked_crc(crc)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


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
