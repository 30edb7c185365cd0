"""The SSD model: built from a spec, outputs in anchor order, serialisable, trainable under
TensorFlow and JAX, frozen layers left alone, float32 outputs under mixed precision."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from jax_helpers import run_under_jax

from tlt_core.errors import SpecError
from tlt_core.networks.ssd.anchors import anchor_count, boxes_per_layer, generate_anchors
from tlt_core.networks.ssd.model import (
    build_ssd,
    build_ssd_model,
    count_params,
    make_regularizer,
    regularizer_from_config,
    ssd_feature_map_sizes,
)
from tlt_core.networks.ssd.spec import load_experiment

REPO = Path(__file__).resolve().parents[1]
SAMPLE_SPEC = REPO / "specs" / "samples" / "ssd_kitti_train.txt"


def experiment_for(arch: str, nlayers=None, *, height=64, width=64, **overrides):
    spec = load_experiment(SAMPLE_SPEC)
    fields = {
        "augmentation_config.output_width": width,
        "augmentation_config.output_height": height,
        "ssd_config.arch": arch,
        "ssd_config.nlayers": nlayers,
        "ssd_config.freeze_blocks": [],
    }
    fields.update(overrides)
    return spec.with_overrides(fields)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def mobilenet_experiment():
    return experiment_for("mobilenet_v1", height=64, width=96)


@pytest.fixture(scope="module")
def mobilenet_model(mobilenet_experiment):
    return build_ssd(mobilenet_experiment, mobilenet_experiment.num_classes)


def images(batch=2, height=64, width=96, seed=0):
    return (
        np.random.default_rng(seed).normal(0.0, 50.0, (batch, height, width, 3)).astype("float32")
    )


def test_outputs_match_anchor_count(mobilenet_experiment, mobilenet_model):
    model, exp = mobilenet_model, mobilenet_experiment
    sizes = ssd_feature_map_sizes(model)
    assert sizes == [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1), (1, 1)]
    num_anchors = anchor_count(exp.anchors, sizes)
    assert num_anchors == len(generate_anchors(exp.anchors, sizes, exp.input_shape[:2]))
    assert num_anchors == sum(
        h * w * n for (h, w), n in zip(sizes, boxes_per_layer(exp.anchors), strict=True)
    )
    out = model(images(), training=False)
    assert set(out) == {"conf", "loc"}
    assert tuple(out["conf"].shape) == (2, num_anchors, exp.num_classes + 1)
    assert tuple(out["loc"].shape) == (2, num_anchors, 4)
    assert model.inputs[0].name == "Input" or model.layers[0].name == "Input"
    assert model.output_names == ["conf", "loc"]
    for i, n_boxes in enumerate(boxes_per_layer(exp.anchors)):
        assert model.get_layer(f"ssd_conf_{i}").filters == n_boxes * (exp.num_classes + 1)
        assert model.get_layer(f"ssd_loc_{i}").filters == n_boxes * 4


def test_rows_are_in_anchor_order(mobilenet_experiment, mobilenet_model):
    """Output row k of layer i is cell (y, x), box b with k = (y * w + x) * n_boxes + b, the
    order of generate_anchors: check against the raw head maps and the anchor centres."""
    model, exp = mobilenet_model, mobilenet_experiment
    heads = [
        model.get_layer(f"ssd_{kind}_{i}").output for i in range(6) for kind in ("conf", "loc")
    ]
    probe = keras.Model(model.inputs, [*heads, model.output["conf"], model.output["loc"]])
    *raw, conf, loc = (numpy(t) for t in probe([images()]))
    sizes = ssd_feature_map_sizes(model)
    anchors = generate_anchors(exp.anchors, sizes, exp.input_shape[:2])
    n_out = exp.num_classes + 1
    start = 0
    for i, ((h, w), n_boxes) in enumerate(zip(sizes, boxes_per_layer(exp.anchors), strict=True)):
        raw_conf, raw_loc = raw[2 * i], raw[2 * i + 1]
        count = h * w * n_boxes
        for y, x, b in [(0, 0, 0), (h - 1, w - 1, n_boxes - 1), (h // 2, w - 1, 1)]:
            k = start + (y * w + x) * n_boxes + b
            np.testing.assert_array_equal(
                conf[:, k], raw_conf[:, y, x, b * n_out : (b + 1) * n_out]
            )
            np.testing.assert_array_equal(loc[:, k], raw_loc[:, y, x, b * 4 : (b + 1) * 4])
            # The anchor of that row sits at the centre of cell (y, x) (default steps/offsets).
            np.testing.assert_allclose(anchors[k, :2], [(x + 0.5) / w, (y + 0.5) / h], atol=1e-6)
        start += count
    assert start == conf.shape[1]


def test_config_round_trip_keeps_values(tmp_path, mobilenet_model):
    model = mobilenet_model
    x = images(seed=3)
    expected = model(x, training=False)

    rebuilt = keras.models.model_from_json(model.to_json())
    # Same config, compared as JSON (tuples in the live config come back as lists).
    assert json.loads(rebuilt.to_json()) == json.loads(model.to_json())
    rebuilt.set_weights(model.get_weights())
    got = rebuilt(x, training=False)
    for key in ("conf", "loc"):
        np.testing.assert_array_equal(numpy(got[key]), numpy(expected[key]))

    path = tmp_path / "ssd.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    got = loaded(x, training=False)
    for key in ("conf", "loc"):
        np.testing.assert_array_equal(numpy(got[key]), numpy(expected[key]))
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(numpy(a), numpy(b))


def test_freezing_and_regulariser_survive_saving(tmp_path):
    exp = experiment_for(
        "resnet", 10, **{"ssd_config.freeze_blocks": [0, 2], "ssd_config.freeze_bn": True}
    )
    reg = make_regularizer("L1", 3e-5)
    model = build_ssd(exp, 2, kernel_regularizer=reg)
    path = tmp_path / "frozen.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    for a, b in zip(loaded.layers, model.layers, strict=True):
        assert (a.name, a.trainable) == (b.name, b.trainable)
    assert not loaded.get_layer("conv1").trainable
    assert not loaded.get_layer("block_2a_conv_shortcut").trainable
    assert loaded.get_layer("block_3a_conv_1").trainable
    assert not loaded.get_layer("block_3a_bn_1").trainable  # freeze_bn
    assert loaded.get_layer("ssd_expand_block_1_bn_1").trainable  # not a backbone layer
    conf0 = loaded.get_layer("ssd_conf_0").kernel_regularizer
    assert isinstance(conf0, keras.regularizers.L1)
    assert conf0.get_config()["l1"] == pytest.approx(3e-5)
    x = images(height=64, width=64)
    np.testing.assert_allclose(
        numpy(loaded(x)["conf"]), numpy(model(x)["conf"]), rtol=1e-6, atol=1e-6
    )


def test_regulariser_from_spec_and_penalty_value():
    assert make_regularizer("NO_REG", 0.1) is None
    assert make_regularizer("L2", 0.0) is None
    assert isinstance(make_regularizer(2, 1e-4), keras.regularizers.L2)
    spec = load_experiment(SAMPLE_SPEC)  # regularizer { type: L1 weight: 3e-5 }
    reg = regularizer_from_config(spec.proto.training_config.regularizer)
    assert isinstance(reg, keras.regularizers.L1)
    with pytest.raises(SpecError, match=r"training_config\.regularizer\.type"):
        make_regularizer("L3", 1.0)
    with pytest.raises(SpecError, match=r"training_config\.regularizer\.weight"):
        make_regularizer("L2", -1.0)

    model = build_ssd_model(
        "squeezenet",
        None,
        input_shape=(64, 64, 3),
        boxes_per_layer=[4] * 6,
        num_classes=1,
        kernel_regularizer=make_regularizer("L2", 1e-3),
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(model.losses) == len(convs)
    expected = sum(1e-3 * float(np.sum(numpy(layer.kernel) ** 2)) for layer in convs)
    assert float(sum(numpy(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-4)


def test_count_params():
    model = build_ssd_model(
        "mobilenet_v2", None, input_shape=(64, 64, 3), boxes_per_layer=[3] * 6, num_classes=4
    )
    assert count_params(model) == sum(int(np.prod(w.shape)) for w in model.weights)
    assert count_params(model) > 1_000_000


def test_input_shape_override_and_bad_arguments(mobilenet_experiment):
    model = build_ssd(mobilenet_experiment, 1, input_shape=(96, 64, 3))
    assert ssd_feature_map_sizes(model)[0] == (12, 8)
    assert model.get_layer("conf").output.shape[-1] == 2
    with pytest.raises(SpecError, match="at least one class"):
        build_ssd(mobilenet_experiment, 0)
    with pytest.raises(SpecError, match="6 predictor layers"):
        build_ssd_model(
            "mobilenet_v1", None, input_shape=(64, 64, 3), boxes_per_layer=[4] * 5, num_classes=2
        )


def test_mixed_precision_outputs_are_float32():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_ssd_model(
            "mobilenet_v1", None, input_shape=(64, 64, 3), boxes_per_layer=[4] * 6, num_classes=2
        )
        assert model.get_layer("ssd_conf_0").compute_dtype == "float16"
        out = model(images(height=64, width=64))
        assert keras.backend.standardize_dtype(out["conf"].dtype) == "float32"
        assert keras.backend.standardize_dtype(out["loc"].dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _random_targets(model, batch, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    anchors = model.output["conf"].shape[1]
    return {
        "conf": rng.integers(0, num_classes + 1, (batch, anchors)).astype("int32"),
        "loc": rng.normal(0, 1, (batch, anchors, 4)).astype("float32"),
    }


def test_training_step_updates_only_unfrozen_weights():
    model = build_ssd_model(
        "resnet",
        10,
        input_shape=(64, 64, 3),
        boxes_per_layer=[4] * 6,
        num_classes=2,
        freeze_blocks=(0, 1),
        freeze_bn=True,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={
            "conf": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "loc": keras.losses.Huber(),
        },
    )
    before = {w.path: numpy(w).copy() for w in model.weights}
    model.train_on_batch(images(height=64, width=64), _random_targets(model, 2, 2))
    changed = {w.path for w in model.weights if not np.array_equal(numpy(w), before[w.path])}

    def layer_changed(name):
        return any(p.startswith(f"{name}/") for p in changed)

    for frozen in (
        "conv1",
        "bn_conv1",
        "block_1a_conv_1",
        "block_1a_conv_shortcut",
        "block_1a_bn_1",
        "block_2a_bn_1",
        "block_4a_bn_shortcut",
    ):
        assert not layer_changed(frozen), frozen
    for trained in (
        "block_2a_conv_1",
        "block_4a_conv_2",
        "ssd_expand_block_1_conv_1",
        "ssd_expand_block_1_bn_1",
        "ssd_conf_0",
        "ssd_loc_5",
    ):
        assert layer_changed(trained), trained


JAX_SCRIPT = textwrap.dedent(
    """
    import json
    import keras
    import numpy as np
    from tlt_core.networks.ssd.model import build_ssd_model

    model = build_ssd_model("mobilenet_v1", None, input_shape=(64, 64, 3),
                            boxes_per_layer=[4] * 6, num_classes=2, freeze_blocks=(0,))
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={"conf": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              "loc": keras.losses.Huber()},
    )
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 64, 64, 3)).astype("float32")
    anchors = model.output["conf"].shape[1]
    y = {"conf": rng.integers(0, 3, (2, anchors)).astype("int32"),
         "loc": rng.normal(0, 1, (2, anchors, 4)).astype("float32")}
    head = np.array(model.get_layer("ssd_conf_0").kernel)
    stem = np.array(model.get_layer("conv1").kernel)
    losses = [float(np.ravel(model.train_on_batch(x, y))[0]) for _ in range(2)]
    print(json.dumps({
        "backend": keras.backend.backend(),
        "losses": losses,
        "head_changed": bool(np.any(np.array(model.get_layer("ssd_conf_0").kernel) != head)),
        "stem_changed": bool(np.any(np.array(model.get_layer("conv1").kernel) != stem)),
    }))
    """
)


@pytest.mark.slow  # JAX import + XLA compile: about a minute of CPU
def test_training_step_under_jax():
    result = run_under_jax(JAX_SCRIPT)
    assert result["backend"] == "jax"
    assert all(np.isfinite(result["losses"]))
    assert result["head_changed"]
    assert not result["stem_changed"]  # freeze_blocks (0,) = conv1
