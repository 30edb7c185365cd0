"""Every SSD backbone builds, takes one training step with the SSD loss on encoded targets,
and survives a save/load through the sealed ``.tlt`` file with identical predictions."""

import textwrap

import keras
import numpy as np
import pytest
from jax_helpers import run_under_jax
from test_ssd_model import SAMPLE_SPEC

from tlt_core.modelfile import load_model, save_model
from tlt_core.networks.ssd.anchors import generate_anchors
from tlt_core.networks.ssd.box_coding import encode_batch
from tlt_core.networks.ssd.loss import SsdLoss
from tlt_core.networks.ssd.model import build_ssd, ssd_feature_map_sizes
from tlt_core.networks.ssd.spec import load_experiment
from tlt_core.spec import ARCHITECTURES

SIZE = 64
SLOW = {("resnet", 34), ("resnet", 50), ("resnet", 101), ("vgg", 19), ("darknet", 53)}
CASES = [
    pytest.param(
        arch, n, marks=[pytest.mark.slow] if (arch, n) in SLOW else [], id=f"{arch}{n or ''}"
    )
    for arch, info in ARCHITECTURES.items()
    for n in (info.nlayers or (None,))
]


def training_batch(experiment, model):
    """Two images with two boxes each, encoded against the model's anchors."""
    anchors = generate_anchors(experiment.anchors, ssd_feature_map_sizes(model), (SIZE, SIZE))
    boxes = np.array(
        [
            [[0.1, 0.1, 0.5, 0.6], [0.55, 0.3, 0.95, 0.9]],
            [[0.2, 0.2, 0.8, 0.5], [0.0, 0.0, 0.0, 0.0]],
        ],
        "float32",
    )
    classes = np.array([[1, 2], [3, 0]], "int32")
    cls, loc = encode_batch(
        boxes, classes, anchors, experiment.anchors.variances, experiment.num_classes
    )
    y_true = np.concatenate(
        [
            keras.ops.convert_to_numpy(cls)[..., None].astype("float32"),
            keras.ops.convert_to_numpy(loc),
        ],
        axis=-1,
    )
    x = np.random.default_rng(0).normal(0, 60, (2, SIZE, SIZE, 3)).astype("float32")
    return x, y_true


@pytest.mark.parametrize("arch, nlayers", CASES)
def test_backbone_trains_one_step_and_round_trips_through_tlt(arch, nlayers, tmp_path):
    experiment = load_experiment(SAMPLE_SPEC).with_overrides(
        {
            "augmentation_config.output_width": SIZE,
            "augmentation_config.output_height": SIZE,
            "ssd_config.arch": arch,
            "ssd_config.nlayers": nlayers,
            "ssd_config.freeze_blocks": [],
        }
    )
    model = build_ssd(experiment, experiment.num_classes)
    outputs = model(model.inputs[0])
    joined = keras.layers.Concatenate(axis=-1, name="train_output")(
        [outputs["conf"], outputs["loc"]]
    )
    trainer = keras.Model(model.inputs, joined)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=SsdLoss())
    x, y_true = training_batch(experiment, model)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = float(np.ravel(trainer.train_on_batch(x, y_true))[0])
    assert np.isfinite(loss) and loss > 0
    changed = sum(
        not np.array_equal(b, keras.ops.convert_to_numpy(w))
        for b, w in zip(before, model.trainable_weights, strict=True)
    )
    assert changed > len(before) // 2, "one step updates the weights"

    path = tmp_path / f"ssd_{arch}{nlayers or ''}.tlt"
    save_model(path, model, "k3y", {"class_names": list(experiment.class_names)})
    loaded, metadata = load_model(path, "k3y")
    assert metadata["class_names"] == list(experiment.class_names)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    want, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for name in ("conf", "loc"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


JAX_STEP = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    sys.path.insert(0, "tests")
    from test_every_backbone import training_batch, SIZE
    from test_ssd_model import SAMPLE_SPEC
    from tlt_core.networks.ssd.loss import SsdLoss
    from tlt_core.networks.ssd.model import build_ssd
    from tlt_core.networks.ssd.spec import load_experiment

    experiment = load_experiment(SAMPLE_SPEC).with_overrides({
        "augmentation_config.output_width": SIZE, "augmentation_config.output_height": SIZE,
        "ssd_config.arch": "resnet", "ssd_config.nlayers": 10, "ssd_config.freeze_blocks": []})
    model = build_ssd(experiment, experiment.num_classes)
    out = model(model.inputs[0])
    trainer = keras.Model(model.inputs,
                          keras.layers.Concatenate(axis=-1)([out["conf"], out["loc"]]))
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=SsdLoss())
    x, y_true = training_batch(experiment, model)
    losses = [float(np.ravel(trainer.train_on_batch(x, y_true))[0]) for _ in range(3)]
    print(json.dumps({"backend": keras.backend.backend(), "losses": losses}))
    """
)


@pytest.mark.slow
def test_ssd_loss_and_box_coding_train_under_jax():
    result = run_under_jax(JAX_STEP, timeout=600)
    assert result["backend"] == "jax"
    assert all(np.isfinite(result["losses"])) and result["losses"][-1] < result["losses"][0]
