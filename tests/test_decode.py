"""Image decoding of the input pipeline equals TensorFlow's for every PNG layout and JPEG."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tlt_core.data.decode import ImageDecodeError, decode_rgb, png_to_rgb


def _png(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _reference(encoded: bytes) -> np.ndarray:
    return tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()


def _palette_png(rng: np.random.Generator) -> bytes:
    image = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).convert("P")
    stream = io.BytesIO()
    image.save(stream, "PNG")
    return stream.getvalue()


LAYOUTS = {
    "rgb": lambda rng: _png(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)),
    "grey": lambda rng: _png(rng.integers(0, 256, (9, 11), dtype=np.uint8)),
    "rgba": lambda rng: _png(rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)),
    "rgb16": lambda rng: _png(rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)),
    "grey16": lambda rng: _png(rng.integers(0, 65536, (9, 11), dtype=np.uint16)),
    "palette": _palette_png,
    "grey_alpha": lambda rng: _grey_alpha_png(rng),
}


def _grey_alpha_png(rng: np.random.Generator) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (9, 11, 2), dtype=np.uint8), "LA").save(stream, "PNG")
    return stream.getvalue()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_png_layouts_decode_as_tensorflow_does(layout):
    encoded = LAYOUTS[layout](np.random.default_rng(0))
    expected = _reference(encoded)
    np.testing.assert_array_equal(png_to_rgb(encoded), expected)
    decoded = decode_rgb(tf.constant(encoded))
    assert decoded.dtype == tf.uint8
    np.testing.assert_array_equal(decoded.numpy(), expected)


def test_jpeg_goes_to_tensorflow():
    image = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    encoded = cv2.imencode(".jpg", image)[1].tobytes()
    np.testing.assert_array_equal(decode_rgb(tf.constant(encoded)).numpy(), _reference(encoded))


def test_decode_in_a_dataset_graph_and_its_errors():
    good = _png(np.zeros((4, 5, 3), np.uint8))
    dataset = tf.data.Dataset.from_tensor_slices([good, good[:30]]).map(decode_rgb)
    iterator = iter(dataset)
    assert next(iterator).shape == (4, 5, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="cannot decode PNG"):
        next(iterator)
    with pytest.raises(ImageDecodeError, match="cannot decode PNG"):
        png_to_rgb(good[:30])


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.sampled_from([1, 3, 4]),
    seed=st.integers(0, 2**16),
)
def test_random_pngs_match_tensorflow(height, width, channels, seed):
    shape = (height, width) if channels == 1 else (height, width, channels)
    encoded = _png(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))
    np.testing.assert_array_equal(png_to_rgb(encoded), _reference(encoded))
