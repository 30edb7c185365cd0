"""``tlt classification`` end to end on a tiny generated dataset, through the shared stages:
train (checkpoints, classmap.json, status.json, TensorBoard, validation), resume, evaluate
(report, JSON, confusion PNG), inference (result.csv), prune, export (ONNX + DeepStream)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from tlt_core.cli import main
from tlt_core.networks.classification.sample import generate_classification_sample, sample_spec

KEY = "cls-key"
CLASSES = ["car", "cyclist", "pedestrian", "person_sitting", "van"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls_e2e")
    data = root / "data"
    generate_classification_sample(data, num_train=20, num_val=10, seed=1)
    spec = root / "spec.txt"
    spec.write_text(sample_spec(data, input_size=32, n_epochs=2, batch_size=8))
    results = root / "results"
    assert main(["classification", "train", "-e", str(spec), "-r", str(results), "-k", KEY]) == 0
    return root, spec, results


def test_training_outputs(trained):
    _, _, results = trained
    weights = results / "weights"
    assert sorted(p.name for p in weights.glob("*.tlt")) == [
        "resnet10_epoch_001.tlt",
        "resnet10_epoch_002.tlt",
    ]
    assert json.loads((weights / "classmap.json").read_text()) == {
        name: i for i, name in enumerate(CLASSES)
    }
    status = json.loads((results / "status.json").read_text())
    assert status["state"] == "done"
    assert [e["epoch"] for e in status["epochs"]] == [1, 2]
    assert all(0.0 <= e["top1_accuracy"] <= 1.0 for e in status["epochs"])
    assert any((results / "events").rglob("events.out.tfevents.*"))
    assert (results / "experiment_spec.txt").exists()


def test_resume_continues_from_a_checkpoint(trained, tmp_path):
    _, spec, results = trained
    out = tmp_path / "resumed"
    model = results / "weights" / "resnet10_epoch_001.tlt"
    args = ["classification", "train", "-e", str(spec), "-r", str(out), "-k", KEY]
    assert main([*args, "-m", str(model), "--initial_epoch", "1"]) == 0
    status = json.loads((out / "status.json").read_text())
    assert [e["epoch"] for e in status["epochs"]] == [2]


def test_evaluate_report_and_inference_csv_agree(trained, tmp_path, capsys):
    root, spec, results = trained
    model = results / "weights" / "resnet10_epoch_002.tlt"
    out = tmp_path / "eval"
    argv = ["classification", "evaluate", "-m", str(model), "-e", str(spec), "-k", KEY]
    assert main([*argv, "-o", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["num_images"] == 10 and report["class_names"] == CLASSES
    assert np.asarray(report["confusion_matrix"]).sum() == 10
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    status = json.loads((results / "status.json").read_text())
    # The same model on the same data, preprocessed the same way: the same accuracy.
    assert report["top1_accuracy"] == pytest.approx(status["epochs"][-1]["top1_accuracy"])
    assert "Top-1 accuracy" in capsys.readouterr().out

    # Inference over the validation images (flattened, class in the name): result.csv.
    flat = tmp_path / "flat"
    flat.mkdir()
    for image in sorted((root / "data" / "val").glob("*/*.png")):
        shutil.copy(image, flat / f"{image.parent.name}__{image.name}")
    argv = ["classification", "inference", "-m", str(model), "-e", str(spec), "-k", KEY]
    assert main([*argv, "-i", str(flat), "-o", str(flat), "--batch_size", "4"]) == 0
    with (flat / "result.csv").open() as stream:
        rows = list(csv.reader(stream))
    assert [int(r[0]) for r in rows] == list(range(10))
    assert all(r[2] in CLASSES for r in rows)
    right = sum(r[1].rsplit("/", 1)[1].split("__")[0] == r[2] for r in rows)
    assert right / 10 == pytest.approx(report["top1_accuracy"])


def test_inference_on_one_image_logs_scores_label_and_name(trained, tmp_path, capsys):
    root, spec, results = trained
    model = results / "weights" / "resnet10_epoch_002.tlt"
    image = sorted((root / "data" / "val" / "van").glob("*.png"))[0]
    argv = ["classification", "inference", "-m", str(model), "-e", str(spec), "-k", KEY]
    assert main([*argv, "-i", str(image), "-o", str(tmp_path)]) == 0
    text = capsys.readouterr().err
    assert "Class label = " in text and "Class name = " in text
    label = int(text.split("Class label = ")[1].split()[0])
    assert text.split("Class name = ")[1].split()[0] == CLASSES[label]


def test_corrupted_spec_is_one_located_line(trained, tmp_path, capsys):
    _, spec, _ = trained
    bad = tmp_path / "bad.txt"
    bad.write_text(spec.read_text().replace('optimizer: "sgd"', 'optimizer: "sgdd"'))
    code = main(["classification", "train", "-e", str(bad), "-r", str(tmp_path / "r"), "-k", KEY])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        f"{bad}:9: train_config.optimizer: unknown value 'sgdd'; one of sgd, adam, rmsprop"
    )


def test_prune_and_export(trained, tmp_path):
    import onnx
    import onnxruntime as ort

    from tlt_core.modelfile import load_model
    from tlt_core.networks import NETWORKS

    root, spec, results = trained
    model_path = results / "weights" / "resnet10_epoch_002.tlt"
    pruned = tmp_path / "pruned" / "resnet10_pruned.tlt"
    argv = ["classification", "prune", "-m", str(model_path), "-o", str(pruned), "-k", KEY]
    assert main([*argv, "-pth", "0.9", "-nf", "8"]) == 0
    before, _ = load_model(model_path, KEY)
    after, meta = load_model(pruned, KEY)
    assert after.count_params() < before.count_params()
    assert after.layers[-1].name == "predictions" and after.outputs[0].shape[-1] == 5
    assert meta["pruned"] and (pruned.parent / "classmap.json").exists()

    exported = tmp_path / "export" / "model.etlt"
    argv = ["classification", "export", "-m", str(model_path), "-k", KEY, "-e", str(spec)]
    assert main([*argv, "-o", str(exported), "--gen_ds_config"]) == 0
    onnx_path = exported.with_suffix(".onnx")
    graph = onnx.load(onnx_path).graph
    assert [o.name for o in graph.output] == ["predictions/Softmax"]
    labels = (exported.parent / "labels.txt").read_text()
    assert labels == ";".join(CLASSES) + "\n"
    config = (exported.parent / "nvinfer_config.txt").read_text()
    assert "network-type=1" in config and "output-blob-names=predictions/Softmax" in config
    assert "offsets=103.939;116.779;123.68" in config and "model-color-format=1" in config
    assert (exported.parent / "classmap.json").exists()

    # ONNX Runtime gives Keras' scores on the evaluation input.
    network = NETWORKS["classification"]
    spec_obj = network.load_spec(spec)
    import cv2

    image = sorted((root / "data" / "val" / "car").glob("*.png"))[0]
    rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    batch = network.preprocess(spec_obj, rgb)[None]
    keras_scores = np.asarray(before(batch))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    nchw = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    onnx_scores = session.run(["predictions/Softmax"], {session.get_inputs()[0].name: nchw})[0]
    np.testing.assert_allclose(onnx_scores, keras_scores, rtol=1e-4, atol=1e-5)


def test_tlt_v03_spellings(trained, tmp_path, capsys):
    """002's tlt-evaluate / tlt-infer: no spec (the model's own), -d, -pm, -cm; tlt-infer -d
    writes result.csv whose classes give tlt-evaluate's accuracy."""
    from tlt_core.cli.tlt_v03 import evaluate_main, infer_main

    root, _, results = trained
    model = str(results / "weights" / "resnet10_epoch_002.tlt")
    val = root / "data" / "val"
    assert (
        evaluate_main(["classification", "-d", str(val), "-pm", model, "-k", KEY, "-b", "4"]) == 0
    )
    out = capsys.readouterr().out
    top1 = float(out.split("Top-1 accuracy: ")[1].split()[0])

    flat = tmp_path / "images"
    flat.mkdir()
    for image in sorted(val.glob("*/*.png")):
        shutil.copy(image, flat / f"{image.parent.name}__{image.name}")
    classmap = str(results / "weights" / "classmap.json")
    argv = ["classification", "-m", model, "-d", str(flat), "-k", KEY, "-b", "3", "-cm", classmap]
    assert infer_main(argv) == 0
    with (flat / "result.csv").open() as stream:
        rows = list(csv.reader(stream))
    right = sum(r[1].rsplit("/", 1)[1].split("__")[0] == r[2] for r in rows)
    assert len(rows) == 10 and right / 10 == pytest.approx(top1, abs=1e-4)

    image = sorted(flat.iterdir())[0]
    assert infer_main(["classification", "-m", model, "-i", str(image), "-k", KEY]) == 0
    assert "Class name = " in capsys.readouterr().err

    wrong = tmp_path / "classmap.json"
    wrong.write_text('{"a": 0, "b": 1}')
    argv = ["classification", "-m", model, "-i", str(image), "-k", KEY, "-cm", str(wrong)]
    from tlt_core.errors import ModelFileError

    assert infer_main(argv) == ModelFileError.exit_code
    assert "are not the model's" in capsys.readouterr().err
