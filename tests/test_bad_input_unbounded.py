"""Issue 16, class 4: a small input never buys unbounded work.

Model-file key-derivation parameters come from an allowed set checked before any key
derivation; label files, images and model files are bounded (bytes, lines, pixels) and
must be regular files. Every case fails on the code before the fix (it hung, allocated
gigabytes, or was accepted).
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib

import pytest

from tlt_core import modelfile
from tlt_core.data import kitti, tfrecord
from tlt_core.errors import DataError, ModelFileError

LINE = "car 0 0 0 10 10 20 20 0 0 0 0 0 0 0\n"


def _kdf_offset(sealed: bytes) -> int:
    kind_len = sealed[len(modelfile.MAGIC) + 1]
    return len(modelfile.MAGIC) + 2 + kind_len


def _with_kdf(sealed: bytes, log2_n: int, r: int, p: int) -> bytes:
    at = _kdf_offset(sealed)
    return sealed[:at] + bytes([log2_n, r, p]) + sealed[at + 3 :]


@pytest.fixture(scope="module")
def sealed() -> bytes:
    return modelfile.seal_bytes(b"payload", "key", kind=modelfile.KIND_TLT)


@pytest.mark.parametrize(
    "params",
    [(15, 8, 255), (15, 255, 1), (20, 8, 1), (16, 8, 1), (15, 8, 0), (15, 1, 1), (31, 8, 1)],
)
def test_kdf_parameters_outside_the_allowed_set_are_refused_before_derivation(
    sealed, params, monkeypatch
):
    derived = []
    monkeypatch.setattr(modelfile, "_derive", lambda *a: derived.append(a) or b"\0" * 32)
    with pytest.raises(ModelFileError, match="key-derivation parameters"):
        modelfile.open_bytes(_with_kdf(sealed, *params), "key", source="m.tlt")
    assert derived == []  # refused before any key derivation


def test_kdf_tampered_p_fails_fast(sealed):
    start = time.monotonic()
    with pytest.raises(ModelFileError, match=r"m\.tlt: key-derivation parameters"):
        modelfile.open_bytes(_with_kdf(sealed, 15, 8, 255), "key", source="m.tlt")
    assert time.monotonic() - start < 1.0


def test_the_parameters_this_project_writes_still_open(sealed):
    assert modelfile.open_bytes(sealed, "key") == b"payload"


def test_label_file_with_too_many_lines(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text(LINE * (kitti.MAX_OBJECTS_PER_FRAME + 1))
    with pytest.raises(DataError, match=rf"many\.txt:{kitti.MAX_OBJECTS_PER_FRAME + 1}: .*objects"):
        kitti.read_labels(path)


def test_label_file_too_large(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b" " * (kitti.MAX_LABEL_BYTES + 1))
    with pytest.raises(DataError, match=r"big\.txt: label file larger than"):
        kitti.read_labels(path)


def test_label_symlinked_to_dev_zero(tmp_path):
    path = tmp_path / "zero.txt"
    path.symlink_to("/dev/zero")
    with pytest.raises(DataError, match=r"zero\.txt: not a regular file"):
        kitti.read_labels(path)


def test_label_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo.txt"
    os.mkfifo(path)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            kitti.read_labels(path)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the reader before failing
        with open(path, "wb"):
            pass
        pytest.fail("reading a FIFO label file blocked")
    assert isinstance(outcome[0], DataError) and "not a regular file" in str(outcome[0])


def test_label_path_that_is_a_directory(tmp_path):
    with pytest.raises(DataError, match=r"is a directory"):
        kitti.read_labels(tmp_path)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        tfrecord.PNG_SIGNATURE
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\0\0\0\0IEND\xaeB`\x82"
    )


def test_image_header_claiming_too_many_pixels():
    with pytest.raises(DataError, match=r"big\.png: 20000x20000 image: more than"):
        tfrecord.image_format_and_size(_png_header(20000, 20000), "big.png")


def test_image_file_claiming_too_many_pixels(tmp_path):
    from tlt_core.data.pipeline import check_image_file

    path = tmp_path / "big.png"
    path.write_bytes(_png_header(20000, 20000))
    with pytest.raises(DataError, match="20000x20000"):
        check_image_file(path)


def test_png_decoder_refuses_a_huge_claim_before_allocating():
    from tlt_core.data.decode import ImageDecodeError, png_to_rgb

    with pytest.raises(ImageDecodeError, match="20000x20000"):
        png_to_rgb(_png_header(20000, 20000))


def test_image_symlinked_to_dev_zero(tmp_path):
    from tlt_core.data.pipeline import check_image_file

    path = tmp_path / "zero.png"
    path.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="not a regular file"):
        check_image_file(path)


def test_model_file_symlinked_to_dev_zero(tmp_path):
    path = tmp_path / "zero.tlt"
    path.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match=r"zero\.tlt: not a regular file"):
        modelfile.load_metadata(path, "key")


def test_model_file_that_is_a_directory(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        modelfile.load_metadata(tmp_path, "key")
