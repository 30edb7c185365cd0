"""Slow: DetectNet_v2 (ResNet-10, CPU) trained on the generated sample data with the sample
spec through the shared trainer, then taken through the deploy stages (issue 11):

- accuracy: combined mAP of ``tlt detectnet_v2 evaluate`` >= 0.80 (the issue asks for it
  within 15 minutes on 2 cores: the training minutes are printed for the record);
- inference with 002's cluster-params file (``../shared/specs/``) writes KITTI labels that
  ``tlt evaluate-labels`` scores as ``evaluate`` scores the model;
- prune >= 40 % of the parameters (the lowest threshold of `PRUNE_THRESHOLDS` that does)
  and retrain within 2 points; ONNX Runtime on the exported model within 0.5 points of
  Keras; INT8 simulation with the calibration cache within 2 points of FP32.

Run: ``.venv/bin/python -m pytest tests/test_detectnet_v2_quality.py -m slow -n 0 -s``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tlt_core.data.sample import generate_sample_data
from tlt_core.networks.detectnet_v2.sample_spec import sample_spec

KEY = "dnv2-quality"
# The bar. Measured (30 epochs, coverage_foreground_weight 0.5, pedestrian
# class_weight 2 and dbscan_eps 0.3): combined mAP 0.828 (car 0.893, cyclist 0.916,
# pedestrian 0.674), training 10.6 min on 2 cores shared with a second training. Training
# time is printed, not asserted (timing belongs in benchmarks).
REACHED_MAP = 0.80
CLUSTER_PARAMS = Path("/work/shared/specs/detectnet_v2_inference_cluster_params.json")
PRUNE_THRESHOLDS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96)
MIN_PRUNED = 0.40
RETRAIN_EPOCHS = 10
# The sample's source classes the spec maps to its target classes; evaluate-labels compares
# class names as written, so the ground truth is mapped the same way first.
SOURCE_TO_TARGET = {"van": "car", "person_sitting": "pedestrian"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tlt_core.stages.evaluate import evaluate
    from tlt_core.stages.train import train

    root = tmp_path_factory.mktemp("dnv2q")
    generate_sample_data(root / "data", num_train=200, num_val=50, seed=0)
    spec = root / "spec.txt"
    spec.write_text(sample_spec(root / "data"))
    start = time.time()
    result = train(spec, root / "results", KEY, network="detectnet_v2")
    minutes = (time.time() - start) / 60
    evaluated = evaluate(result.final_model_path, spec, KEY, network="detectnet_v2")
    print(f"\n{evaluated.table}\ntraining {minutes:.1f} min, combined mAP {evaluated.mAP:.4f}")
    return root, spec, result.final_model_path, evaluated


@pytest.mark.slow
def test_sample_data_quality(trained):
    _, _, _, evaluated = trained
    assert evaluated.mAP >= REACHED_MAP, evaluated.table


def _mapped_ground_truth(label_dir: Path, out: Path) -> Path:
    out.mkdir()
    for path in label_dir.glob("*.txt"):
        lines = []
        for line in path.read_text().splitlines():
            name, rest = line.split(" ", 1)
            lines.append(f"{SOURCE_TO_TARGET.get(name.lower(), name)} {rest}")
        (out / path.name).write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.slow
def test_inference_labels_score_as_evaluate(trained, tmp_path):
    if not CLUSTER_PARAMS.exists():
        pytest.skip("shared spec samples not present")
    from tlt_core.stages.evaluate_labels import evaluate_labels
    from tlt_core.stages.inference import inference

    root, spec, model, evaluated = trained
    # 002's file with the spec's clustering (postprocessing_config) and no confidence_th:
    # the same clustering as evaluate's. The shared file as it is clusters otherwise (its
    # eps and coverage thresholds were set for KITTI at 1248x384) and drops clusters
    # under its confidence_th, so its mAP differs by what those settings change.
    from tlt_core.networks import get_network

    params = json.loads(CLUSTER_PARAMS.read_text())
    experiment = get_network("detectnet_v2").load_spec(spec)
    for key, field in (
        ("dbscan_eps", "dbscan_eps"),
        ("dbscan_min_samples", "dbscan_min_samples"),
        ("min_cov_to_cluster", "coverage_threshold"),
        ("min_obj_height", "minimum_bounding_box_height"),
    ):
        params[key] = {
            name: getattr(setting, field)
            for name, setting in zip(experiment.class_names, experiment.clustering, strict=True)
        }
    params["confidence_th"] = {name: 0.0 for name in experiment.class_names}
    cluster_params = tmp_path / "cluster_params.json"
    cluster_params.write_text(json.dumps(params))
    inference(
        model,
        spec,
        KEY,
        root / "data" / "val" / "image_2",
        tmp_path / "images_annotated",
        label_dir=tmp_path / "labels",
        network="detectnet_v2",
        options={"cluster_params_file": str(cluster_params)},
    )
    truth = _mapped_ground_truth(root / "data" / "val" / "label_2", tmp_path / "gt")
    scored = evaluate_labels(truth, tmp_path / "labels", classes=["car", "cyclist", "pedestrian"])
    print(f"\nevaluate {evaluated.mAP:.4f}, evaluate-labels {scored.result.mAP:.4f}")
    assert abs(scored.result.mAP - evaluated.mAP) <= 0.005


@pytest.mark.slow
def test_prune_retrain_onnx_and_int8(trained, tmp_path):
    from tlt_core.export.cache import read_cache
    from tlt_core.export.int8_sim import simulated_map
    from tlt_core.export.onnx import read_model
    from tlt_core.networks import get_network
    from tlt_core.stages.evaluate import evaluate
    from tlt_core.stages.export import export
    from tlt_core.stages.prune import prune
    from tlt_core.stages.train import train

    root, spec, model, evaluated = trained
    for threshold in PRUNE_THRESHOLDS:
        pruned = prune(model, tmp_path / "pruned.tlt", KEY, threshold=threshold)
        if 1 - pruned.params_after / pruned.params_before >= MIN_PRUNED:
            break
    removed = 1 - pruned.params_after / pruned.params_before
    assert removed >= MIN_PRUNED, (threshold, removed)
    net = get_network("detectnet_v2")
    retrain_spec = (
        net.load_spec(spec)
        .with_overrides(
            {
                "training_config.pruned_model_path": str(tmp_path / "pruned.tlt"),
                "training_config.num_epochs": RETRAIN_EPOCHS,
            }
        )
        .save(tmp_path / "retrain_spec.txt")
    )
    retrained = train(retrain_spec, tmp_path / "retrain", KEY, network="detectnet_v2")
    retrained_map = evaluate(retrained.final_model_path, spec, KEY, network="detectnet_v2").mAP
    exported = export(
        retrained.final_model_path,
        KEY,
        spec,
        tmp_path / "model.onnx",
        data_type="int8",
        cal_image_dir=root / "data" / "training" / "image_2",
        batches=10,
        batch_size=8,
        network="detectnet_v2",
    )
    onnx_map = evaluate(tmp_path / "model.onnx", spec, KEY, network="detectnet_v2").mAP
    int8 = simulated_map(
        read_model(tmp_path / "model.onnx", KEY),
        read_cache(exported.cal_cache_file).scales,
        net,
        net.load_spec(spec),
    )
    figures = {
        "threshold": threshold,
        "pruned": round(removed, 3),
        "unpruned_mAP": evaluated.mAP,
        "retrained_mAP": retrained_map,
        "onnx_mAP": onnx_map,
        "int8_sim": int8,
    }
    print("\n" + json.dumps(figures, indent=1))
    assert retrained_map >= evaluated.mAP - 0.02
    assert abs(onnx_map - retrained_map) <= 0.005
    assert int8["int8"] >= int8["fp32"] - 0.02
