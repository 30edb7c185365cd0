import math
import struct

import cv2
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.data.kitti import KittiObject, parse_kitti_line
from tlt_core.data.tfrecord import (
    FRAME_ENCODED,
    OBJECT_FLOAT_FEATURES,
    OBJECT_INT_FEATURES,
    RecordWriter,
    build_example,
    encode_example,
    image_format_and_size,
    image_size_from_header,
    parse_example,
    serialize_example,
)
from tlt_core.errors import DataError


def _encoded(ext: str, width: int, height: int, **params) -> bytes:
    img = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    flags = [p for kv in params.items() for p in (getattr(cv2, kv[0]), kv[1])]
    ok, data = cv2.imencode(ext, img, flags)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("ext", "params", "fmt"),
    [
        (".png", {}, "png"),
        (".jpg", {}, "jpeg"),
        (".jpg", {"IMWRITE_JPEG_PROGRESSIVE": 1}, "jpeg"),
    ],
)
def test_image_size_from_header(ext, params, fmt):
    data = _encoded(ext, 53, 37, **params)
    assert image_format_and_size(data) == (fmt, 53, 37)
    assert image_size_from_header(data) == (53, 37)


def test_jpeg_with_app_segments_before_frame_header():
    data = _encoded(".jpg", 20, 10)
    # Insert an APP1 segment (as cameras write EXIF) and fill bytes after SOI.
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6) + b"Exif\x00\x00"
    assert image_size_from_header(data[:2] + b"\xff" + app1 + data[2:]) == (20, 10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a PNG or JPEG image"),
        (b"", "not a PNG or JPEG image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "corrupt PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "corrupt JPEG"),
        (b"\xff\xd8\x00\x00\x00\x00", "corrupt JPEG: no marker"),
    ],
)
def test_corrupt_headers_name_the_file(data, message):
    with pytest.raises(DataError, match=rf"^images/x\.png: {message}"):
        image_size_from_header(data, "images/x.png")


def test_truncated_png_header():
    data = _encoded(".png", 5, 4)
    with pytest.raises(DataError, match="corrupt PNG"):
        image_size_from_header(data[:20], "a.png")


def test_example_round_trip_through_tf_data(tmp_path):
    png = _encoded(".png", 64, 48)
    objs = [
        parse_kitti_line("car 0.1 1 -1.5 1.5 2.25 30 40 1.5 1.6 3.9 -0.6 1.7 46.7 -1.6"),
        parse_kitti_line("DontCare -1 -1 -10 40 5 60 20 -1 -1 -1 -1000 -1000 -1000 -10"),
    ]
    example = build_example("000007", png, "png", 64, 48, objs)
    assert example.features.feature[FRAME_ENCODED].bytes_list.value[0] == png  # bytes unchanged
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example.SerializeToString())
        writer.write(serialize_example("000008", png, "png", 64, 48, []))
    first, empty = list(tf.data.TFRecordDataset(path).map(parse_example))
    assert first["frame/id"].numpy() == b"000007"
    assert (first["frame/width"].numpy(), first["frame/height"].numpy()) == (64, 48)
    assert first["frame/format"].numpy() == b"png"
    assert first["frame/encoded"].numpy() == png
    assert first["target/object_class"].numpy().tolist() == [b"car", b"DontCare"]
    assert first["target/occlusion"].numpy().tolist() == [1, -1]
    np.testing.assert_allclose(
        first["target/boxes"].numpy(), [[1.5, 2.25, 30, 40], [40, 5, 60, 20]], rtol=1e-6
    )
    np.testing.assert_allclose(first["target/location_z"].numpy(), [46.7, -1000], rtol=1e-6)
    np.testing.assert_allclose(first["target/truncation"].numpy(), [0.1, -1], rtol=1e-6)
    decoded = tf.io.decode_image(first["frame/encoded"]).numpy()
    assert decoded.shape == (48, 64, 3)
    assert empty["target/boxes"].shape == (0, 4)
    assert empty["target/object_class"].shape == (0,)


def _reference_example(frame_id, image_bytes, fmt, width, height, objects):
    """The message built field by field with the protobuf API: the oracle for the encoder."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    feature = example.features.feature
    feature["frame/id"].bytes_list.value.append(frame_id.encode("utf-8"))
    feature["frame/width"].int64_list.value.append(width)
    feature["frame/height"].int64_list.value.append(height)
    feature["frame/format"].bytes_list.value.append(fmt.encode("ascii"))
    feature["frame/encoded"].bytes_list.value.append(image_bytes)
    feature["target/object_class"].bytes_list.value.extend(
        o.class_name.encode("utf-8") for o in objects
    )
    for key, attr in OBJECT_FLOAT_FEATURES.items():
        feature[key].float_list.value.extend(getattr(o, attr) for o in objects)
    for key, attr in OBJECT_INT_FEATURES.items():
        feature[key].int64_list.value.extend(getattr(o, attr) for o in objects)
    return example


_finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def _objects(draw):
    n = draw(st.integers(0, 6))
    objects = []
    for _ in range(n):
        objects.append(
            KittiObject(
                draw(st.text(min_size=1, max_size=12)),
                draw(_finite),
                draw(st.integers(-1, 3)),
                *(draw(_finite) for _ in range(12)),
            )
        )
    return objects


@settings(max_examples=150, deadline=None)
@given(
    frame_id=st.text(max_size=20),
    image=st.binary(max_size=300),
    size=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
    objects=_objects(),
)
def test_encoder_matches_protobuf_deterministic_serialisation(frame_id, image, size, objects):
    encoded = serialize_example(frame_id, image, "png", *size, objects)
    reference = _reference_example(frame_id, image, "png", *size, objects)
    assert encoded == reference.SerializeToString(deterministic=True)
    assert build_example(frame_id, image, "png", *size, objects) == reference


@pytest.mark.parametrize("n_bytes", [0, 127, 128, 16_383, 16_384, 2_097_152 + 5])
def test_encoder_around_varint_length_boundaries(n_bytes):
    image = bytes(range(256)) * (n_bytes // 256) + bytes(n_bytes % 256)
    objs = [parse_kitti_line("car 0.1 1 -1.5 1.5 2.25 30 40 1.5 1.6 3.9 -0.6 1.7 46.7 -1.6")]
    head, body, tail = encode_example("f", image, "jpeg", 640, 480, objs)
    assert body is image  # the image is passed through, not copied
    reference = _reference_example("f", image, "jpeg", 640, 480, objs)
    assert head + body + tail == reference.SerializeToString(deterministic=True)


def test_float_overflow_rounds_to_inf_as_protobuf_does():
    obj = parse_kitti_line("car 0 0 0 1 2 3 4 1e39 -1e39 0 0 0 0 0")
    example = build_example("x", b"", "png", 1, 1, [obj])
    assert list(example.features.feature["target/dimensions_h"].float_list.value) == [math.inf]
    assert serialize_example("x", b"", "png", 1, 1, [obj]) == _reference_example(
        "x", b"", "png", 1, 1, [obj]
    ).SerializeToString(deterministic=True)


def test_record_writer_writes_what_tf_writes(tmp_path):
    records = [b"", b"x", bytes(range(256)) * 700, serialize_example("a", b"img", "png", 2, 3, [])]
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "tf.tfrecord"
    with RecordWriter(ours) as writer:
        for record in records:
            # Split into parts at arbitrary points: the framing covers their concatenation.
            writer.write([record[:1], record[1:7], record[7:]])
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for record in records:
            writer.write(record)
    assert ours.read_bytes() == theirs.read_bytes()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == records
