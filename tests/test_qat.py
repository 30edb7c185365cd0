"""Quantization-aware training: the fake-quantised layers, BN folding, saving, export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlt_core.models import qat

KEY = "qat-key"


def _small_model():
    """Conv-BN-ReLU, a residual Add, a depthwise conv with BN, Dense: every QAT layer kind."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3), name="Input")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU(name="relu_a")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv_b")(x)
    y = keras.layers.BatchNormalization(name="bn_b")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn_dw")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(4, name="dense")(x)
    model = keras.Model(inputs, out, name="small")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # BN statistics far from identity, so folding matters
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, c).astype("float32"),
                    rng.normal(size=c).astype("float32"),
                    rng.normal(size=c).astype("float32"),
                    rng.uniform(0.5, 3, c).astype("float32"),
                ]
            )
    return model


def _images(n: int = 8, seed: int = 1):
    return np.random.default_rng(seed).normal(size=(n, 16, 16, 3)).astype("float32") * 20


def test_bn_is_folded_and_the_float_twin_matches_the_original():
    model = _small_model()
    quantised = qat.to_qat(model)
    kinds = {type(layer).__name__ for layer in quantised.layers}
    assert "BatchNormalization" not in kinds
    assert {"QatConv2D", "QatAdd", "QatDepthwiseConv2D", "QatDense"} <= kinds
    assert [layer.name for layer in quantised.layers if "Qat" in type(layer).__name__] == [
        "conv_a",
        "conv_b",
        "add",
        "dw",
        "dense",
    ]
    x = _images()
    float_twin = qat.to_float(quantised)
    assert not qat.is_qat_model(float_twin) and qat.is_qat_model(quantised)
    reference = np.asarray(model(x, training=False))
    assert np.allclose(np.asarray(float_twin(x, training=False)), reference, atol=1e-3)
    # Fake quantisation changes the outputs, but only by INT8 rounding.
    quantised(x, training=True)  # sets the ranges
    rounded = np.asarray(quantised(x, training=False))
    assert not np.allclose(rounded, reference, atol=1e-6)
    assert np.abs(rounded - reference).max() < 0.05 * np.abs(reference).max()


def test_ranges_follow_an_ema_and_gradients_pass_straight_through():
    import tensorflow as tf

    quantised = qat.to_qat(_small_model())
    x = _images()
    quantised(x, training=True)
    first = qat.activation_ranges(quantised)
    assert first["conv_a"] == [pytest.approx(float(np.abs(x).max()), rel=1e-5)]
    assert len(first["add"]) == 2 and all(v > 0 for v in first["add"])
    quantised(x * 3, training=True)
    second = qat.activation_ranges(quantised)["conv_a"][0]
    expected = qat.EMA_DECAY * first["conv_a"][0] + (1 - qat.EMA_DECAY) * 3 * first["conv_a"][0]
    assert second == pytest.approx(expected, rel=1e-5)
    quantised(x, training=False)  # evaluation leaves the ranges alone
    assert qat.activation_ranges(quantised)["conv_a"][0] == pytest.approx(second)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quantised(x, training=True) ** 2)
    grads = tape.gradient(loss, quantised.trainable_variables)
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads)
    assert all(np.abs(np.asarray(g)).sum() > 0 for g in grads)


def test_fake_quantize_rounds_to_127_levels_and_clips():
    x = np.linspace(-3, 3, 1001).astype("float32")
    y = np.asarray(qat.fake_quantize(x, np.float32(2.0)))
    assert np.abs(y).max() == pytest.approx(2.0)
    assert len(np.unique(np.round(y / (2.0 / 127)))) == 255


def test_a_qat_model_file_keeps_its_ranges(tmp_path):
    from tlt_core.modelfile import load_model, save_model

    quantised = qat.to_qat(_small_model())
    quantised(_images(), training=True)
    save_model(tmp_path / "m.tlt", quantised, KEY, {"network": "classification"})
    loaded, _ = load_model(tmp_path / "m.tlt", KEY)
    assert qat.activation_ranges(loaded) == qat.activation_ranges(quantised)
    x = _images(seed=5)
    assert np.allclose(loaded(x, training=False), quantised(x, training=False), atol=1e-5)


def test_layers_run_under_jax():
    """The layers are keras.ops only: the same rewrite, training step and ranges under JAX."""
    pytest.importorskip("jax")
    here = str(Path(__file__).parent)
    script = (
        "import numpy as np, keras\n"
        f"import sys; sys.path.insert(0, {here!r})\n"
        "from test_qat import _small_model, _images\n"
        "from tlt_core.models import qat\n"
        "assert keras.backend.backend() == 'jax'\n"
        "m = qat.to_qat(_small_model())\n"
        "m.compile(optimizer='sgd', loss='mse')\n"
        "m.fit(_images(), np.zeros((8, 4), 'float32'), epochs=1, verbose=0)\n"
        "r = qat.activation_ranges(m)\n"
        "assert r['conv_a'][0] > 0 and len(r['add']) == 2, r\n"
        "print('ok', r['conv_a'][0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**__import__("os").environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")


def test_pruned_model_converts_to_qat(tmp_path):
    from tlt_core.modelfile import save_model
    from tlt_core.prune.pruner import PruneSettings, prune_model

    model = _small_model()
    pruned, _ = prune_model(model, PruneSettings(threshold=0.99, granularity=1, min_filters=1))
    assert pruned.count_params() < model.count_params()
    save_model(tmp_path / "p.tlt", pruned, KEY, {"network": "classification", "pruned": True})
    quantised = qat.to_qat(pruned)
    assert qat.is_qat_model(quantised)
    x = _images()
    assert np.allclose(
        qat.to_float(quantised)(x, training=False), pruned(x, training=False), atol=1e-3
    )
