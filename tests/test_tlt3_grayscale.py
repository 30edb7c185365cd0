"""``output_channel: 1`` with ``image_mean { key: "l" }`` end to end (issue 13): the input
pipeline yields one channel, and train, evaluate, inference, export and INT8 calibration run
on a grey model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tlt_core.networks import get_network
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.networks.ssd.spec import parse_experiment

KEY = "grey"
SSD = get_network("ssd")
MEAN_BLOCK = re.compile(r"  image_mean \{\n    key: 'b'.*?key: 'r'\n    value: 123.7\n  \}\n", re.S)


def grey_spec(root, **overrides) -> str:
    text = sample_experiment_spec(root, **overrides)
    text = text.replace("output_channel: 3", "output_channel: 1")
    text, count = MEAN_BLOCK.subn("  image_mean {\n    key: 'l'\n    value: 117.0\n  }\n", text)
    assert count == 1
    return text


def test_grey_pipeline_yields_one_channel(sample_dataset):
    from tlt_core.networks.ssd.augment import GREY_WEIGHTS_BGR

    grey = parse_experiment(grey_spec(sample_dataset.root, output_width=64, output_height=64))
    assert grey.input_shape == (64, 64, 1) and grey.image_mean_bgr == (117.0, 117.0, 117.0)
    for training in (True, False):
        batch = next(
            SSD.input_pipeline(
                grey, training=training, batch_size=2, shuffle=False
            ).as_numpy_iterator()
        )
        assert batch["image"].shape == (2, 64, 64, 1)
    # Evaluation input = the luma of the colour model's input (same mean on each channel).
    colour = parse_experiment(
        sample_experiment_spec(sample_dataset.root, output_width=64, output_height=64)
        .replace("value: 103.9", "value: 117.0")
        .replace("value: 116.8", "value: 117.0")
        .replace("value: 123.7", "value: 117.0")
    )

    def first(exp):
        return next(
            SSD.input_pipeline(exp, training=False, batch_size=1, shuffle=False).as_numpy_iterator()
        )["image"][0]

    expected = (first(colour) * np.asarray(GREY_WEIGHTS_BGR, np.float32)).sum(-1, keepdims=True)
    np.testing.assert_allclose(first(grey), expected, atol=1e-3)
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    assert SSD.preprocess(grey, rgb).shape == (64, 64, 1)


@pytest.mark.slow
def test_grey_model_train_evaluate_infer_export_calibrate(sample_dataset, tmp_path, capsys):
    from tlt_core.cli import main
    from tlt_core.export.runners import OnnxRunner

    spec = tmp_path / "grey.txt"
    spec.write_text(
        grey_spec(
            sample_dataset.root,
            arch="resnet",
            nlayers=10,
            output_width=64,
            output_height=64,
            num_epochs=1,
            batch_size=8,
            validation_period=1,
        )
    )
    results = tmp_path / "results"
    assert main(["ssd", "train", "-e", str(spec), "-r", str(results), "-k", KEY]) == 0
    model = sorted((results / "weights").glob("*.tlt"))[-1]
    assert main(["ssd", "evaluate", "-m", str(model), "-k", KEY, "-e", str(spec)]) == 0
    assert "runner: Keras (.tlt)" in capsys.readouterr().out
    out_images = tmp_path / "inferred"
    labels = tmp_path / "labels"
    code = main(
        [
            "ssd", "inference", "-m", str(model), "-k", KEY, "-e", str(spec),
            "-i", str(sample_dataset.val_image_dir), "-o", str(out_images), "-l", str(labels),
        ]
    )  # fmt: skip
    assert code == 0
    assert len(list(out_images.iterdir())) == len(list(sample_dataset.val_image_dir.iterdir()))
    etlt = tmp_path / "export" / "grey.etlt"
    code = main(
        [
            "ssd", "export", "-m", str(model), "-k", KEY, "-e", str(spec), "-o", str(etlt),
            "--data_type", "int8", "--cal_image_dir", str(sample_dataset.train_image_dir),
            "--batches", "2", "--batch_size", "4", "--gen_ds_config",
        ]
    )  # fmt: skip
    assert code == 0
    runner = OnnxRunner.from_file(etlt, KEY)
    assert runner.input_shape == (64, 64, 1)
    assert (etlt.parent / "cal.bin").read_text().count(":") > 10
    config = (etlt.parent / "nvinfer_config.txt").read_text().splitlines()
    assert "model-color-format=2" in config and "offsets=117" in config
    assert "infer-dims=1;64;64" in config
    capsys.readouterr()
    assert main(["ssd", "evaluate", "-m", str(etlt), "-k", KEY, "-e", str(spec)]) == 0
    assert "runner: ONNX Runtime" in capsys.readouterr().out
