import struct

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tlt_core.data.kitti import parse_kitti_line
from tlt_core.data.tfrecord import (
    FRAME_ENCODED,
    build_example,
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
