"""The sealed .tlt container: round trip, wrong key, tampering, truncation, foreign files."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlt_core import modelfile
from tlt_core.errors import ModelFileError


def _tiny_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    conf = keras.layers.Conv2D(3, 1, name="conf_head")(x)
    loc = keras.layers.Conv2D(4, 1, name="loc_head")(x)
    conf = keras.layers.Reshape((-1, 3), name="conf")(conf)
    loc = keras.layers.Reshape((-1, 4), name="loc")(loc)
    return keras.Model(inputs, {"conf": conf, "loc": loc}, name="tiny")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(3)
    model = _tiny_model()
    path = tmp_path_factory.mktemp("mf") / "m.tlt"
    meta = {"class_names": ["car", "person"], "input_shape": [16, 16, 3], "spec_text": "x"}
    state = {"opt_0": np.arange(3.0), "epoch": np.int64(4)}
    modelfile.save_model(path, model, "secret", meta, training_state=state)
    return model, path


def test_round_trip_weights_predictions_metadata(saved):
    model, path = saved
    loaded, meta, state = modelfile.load_model_with_state(path, "secret")
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    want, got = model(x), loaded(x)
    np.testing.assert_allclose(np.asarray(want["conf"]), np.asarray(got["conf"]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(want["loc"]), np.asarray(got["loc"]), atol=1e-6)
    assert meta["class_names"] == ["car", "person"]
    assert meta["pruned"] is False
    assert meta["format_version"] == modelfile.FORMAT_VERSION
    assert "keras" in meta["framework_versions"]
    np.testing.assert_array_equal(state["opt_0"], np.arange(3.0))
    assert modelfile.load_metadata(path, "secret")["spec_text"] == "x"
    # The plaintext model name is not readable in the sealed file.
    assert b"conf_head" not in path.read_bytes()


def test_wrong_key(saved):
    _, path = saved
    with pytest.raises(ModelFileError, match=r"m\.tlt: wrong key or corrupted file$"):
        modelfile.load_model(path, "not-the-key")


@pytest.mark.parametrize("offset", [9, 20, -1, 200])
def test_flipped_byte(saved, tmp_path, offset):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    bad = tmp_path / "bad.tlt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as info:
        modelfile.load_model(bad, "secret")
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_truncated(saved, tmp_path):
    _, path = saved
    for size in (5, 40, len(path.read_bytes()) - 3):
        bad = tmp_path / f"t{size}.tlt"
        bad.write_bytes(path.read_bytes()[:size])
        with pytest.raises(ModelFileError, match=str(bad)):
            modelfile.load_model(bad, "secret")


def test_not_a_model_file_and_missing(tmp_path):
    other = tmp_path / "x.tlt"
    other.write_bytes(b"PK\x03\x04 just a zip, or anything")
    with pytest.raises(ModelFileError, match="not a sealed tlt model file"):
        modelfile.load_model(other, "secret")
    with pytest.raises(ModelFileError, match="no such model file"):
        modelfile.load_model(tmp_path / "absent.tlt", "secret")
    with pytest.raises(ModelFileError, match="key"):
        modelfile.load_model(other, "")


def test_seal_bytes_kinds():
    sealed = modelfile.seal_bytes(b"onnx bytes", "k", kind=modelfile.KIND_ETLT)
    assert modelfile.open_bytes(sealed, "k", kind=modelfile.KIND_ETLT) == b"onnx bytes"
    with pytest.raises(ModelFileError, match=r"expected a \.tlt file"):
        modelfile.open_bytes(sealed, "k", kind=modelfile.KIND_TLT)
    # Same plaintext, fresh salt and nonce: different ciphertext.
    assert sealed != modelfile.seal_bytes(b"onnx bytes", "k", kind=modelfile.KIND_ETLT)


def test_save_is_atomic_on_failure(tmp_path):
    path = tmp_path / "keep.tlt"
    path.write_bytes(b"old")

    class Broken:
        def save(self, _path):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        modelfile.save_model(path, Broken(), "k", {})
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tlt"]
