"""``tlt ssd inference``: annotated images, KITTI labels in original pixels, bad images."""

from __future__ import annotations

import logging
import shutil

import cv2
import keras
import pytest

from tlt_core import modelfile
from tlt_core.cli import main as cli_main
from tlt_core.data.kitti import read_label_file
from tlt_core.data.sample import generate_sample_data
from tlt_core.errors import DataError
from tlt_core.networks import get_network
from tlt_core.networks.ssd.model import build_ssd
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.networks.ssd.spec import load_experiment
from tlt_core.stages.inference import inference
from tlt_core.train.loop import model_metadata

SSD = get_network("ssd")


@pytest.fixture(autouse=True)
def _reset_logging():
    """``tlt`` called in-process points the root logger at pytest's captured stderr."""
    yield
    logging.getLogger().handlers.clear()


KEY = "infer-key"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    generate_sample_data(root / "data", num_train=1, num_val=3, seed=4, width=200, height=120)
    spec = root / "spec.txt"
    spec.write_text(
        sample_experiment_spec(
            root / "data", arch="resnet", nlayers=10, output_width=64, output_height=64
        )
    )
    experiment = load_experiment(spec)
    keras.utils.set_random_seed(6)
    model = build_ssd(experiment, len(experiment.class_names))
    # Untrained heads give saturated softmax scores; scale them down so the scores spread.
    for i in range(6):
        layer = model.get_layer(f"ssd_conf_{i}")
        layer.set_weights([w * 1e-3 for w in layer.get_weights()])
    path = modelfile.save_model(root / "m.tlt", model, KEY, model_metadata(SSD, experiment, model))
    images = root / "images"
    shutil.copytree(root / "data" / "val" / "image_2", images)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (images / "notes.txt").write_text("ignored: not an image")
    return root, spec, path, images


def test_images_and_labels_in_original_coordinates(setup, tmp_path):
    _, spec, path, images = setup
    result = inference(
        path,
        spec,
        KEY,
        images,
        tmp_path / "out",
        label_dir=tmp_path / "labels",
        threshold=0.0,
        batch_size=2,
    )
    assert (result.num_images, result.num_skipped) == (3, 1)
    assert "broken.png" in result.skipped[0]
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["000001.png", "000002.png", "000003.png"]
    assert cv2.imread(str(tmp_path / "out" / "000001.png")).shape == (120, 200, 3)
    total = 0
    beyond_network_input = False
    for label in sorted((tmp_path / "labels").iterdir()):
        lines = label.read_text().splitlines()
        assert all(len(line.split()) == 16 for line in lines)
        for obj in read_label_file(label):
            assert obj.score is not None and 0.0 <= obj.score <= 1.0
            assert obj.class_name in ("car", "cyclist", "pedestrian")
            assert 0 <= obj.x1 <= obj.x2 <= 200 and 0 <= obj.y1 <= obj.y2 <= 120
            beyond_network_input |= obj.x2 > 64 or obj.y2 > 64
            total += 1
    assert total == result.num_detections > 0 and beyond_network_input


def test_threshold_filters(setup, tmp_path):
    _, spec, path, images = setup
    counts = {}
    for threshold in (0.0, 0.3):
        result = inference(
            path,
            spec,
            KEY,
            images / "000001.png",
            tmp_path / f"o{threshold}",
            label_dir=tmp_path / f"l{threshold}",
            threshold=threshold,
        )
        objects = read_label_file(tmp_path / f"l{threshold}" / "000001.txt")
        assert result.num_images == 1 and len(objects) == result.num_detections
        assert all(o.score >= threshold for o in objects)
        counts[threshold] = len(objects)
    assert counts[0.3] < counts[0.0]


def test_errors(setup, tmp_path, capsys):
    _, spec, path, _ = setup
    with pytest.raises(DataError, match="no such image"):
        inference(path, spec, KEY, tmp_path / "missing", tmp_path / "o")
    code = cli_main(
        [
            "ssd",
            "inference",
            "-i",
            str(tmp_path / "missing"),
            "-o",
            str(tmp_path / "o"),
            "-e",
            str(spec),
            "-m",
            str(path),
            "-k",
            KEY,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == DataError.exit_code and len(err) == 1
