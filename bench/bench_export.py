"""Export speed: ONNX Runtime vs Keras inference, INT8 calibration time, pruned vs unpruned.

All on one SSD (ResNet-10, 3 classes; 300x300 input, 96x128 with ``quick``), random weights
(speed does not depend on training), in one process so both sides see the same machine.

- forward throughput (images/s) of the raw network at batch 1 and 8: ONNX Runtime (CPU,
  the exported graph's ``Input -> conf, loc`` part) against Keras ``predict_on_batch``;
  target >= 1x. A row for the full exported graph (with NMS) against Keras + the shared
  numpy decode/NMS shows the whole detection path.
- calibration wall time for ``batches x batch_size`` images (two ORT passes + entropy
  search), against one plain FP32 pass over the same images.
- unpruned vs pruned ONNX latency at batch 1 (``tlt_core.prune``, see ``_pruned_rows``).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from bench import BenchRow

CLASSES = ("car", "cyclist", "pedestrian")


def _build(height: int, width: int):
    import keras

    from tlt_core.networks.ssd.anchors import boxes_per_layer, generate_anchors
    from tlt_core.networks.ssd.model import build_ssd_model, ssd_feature_map_sizes

    spec = SimpleNamespace(
        scales=[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85],
        aspect_ratios=[[1.0, 2.0, 0.5]] * 6,
        two_boxes_for_ar1=True,
        steps=None,
        offsets=None,
        clip_boxes=False,
    )
    keras.utils.set_random_seed(0)
    model = build_ssd_model(
        "resnet",
        10,
        input_shape=(height, width, 3),
        boxes_per_layer=boxes_per_layer(spec),
        num_classes=len(CLASSES),
    )
    for layer in model.layers:  # outputs in a trained model's range (see the export tests)
        if layer.name.startswith(("ssd_conf_", "ssd_loc_")) and "reshape" not in layer.name:
            layer.set_weights([w * 0.003 for w in layer.get_weights()])
    anchors = generate_anchors(spec, ssd_feature_map_sizes(model), (height, width))
    return model, anchors


def _export(model, anchors):
    from tlt_core.boxes.nms import NmsConfig
    from tlt_core.export.onnx import export_model

    return export_model(
        model,
        anchors=anchors,
        variances=(0.1, 0.1, 0.2, 0.2),
        nms=NmsConfig(0.01, 0.6, 200),
        class_names=CLASSES,
        image_mean_bgr=(103.9, 116.8, 123.7),
    )


def _session(model):
    from tlt_core.export.onnx import ort_session

    return ort_session(model, ["CPUExecutionProvider"])


def _rate(fn, batch: int, seconds: float) -> float:
    """Images per second of ``fn`` (one warm-up call, then repeated for ``seconds``)."""
    fn()
    count, start = 0, time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count * batch / elapsed


def run(quick: bool) -> list[BenchRow]:
    from tlt_core.boxes.nms import NmsConfig
    from tlt_core.export.calibrate import calibrate_network
    from tlt_core.networks.ssd.network import softmax
    from tlt_core.networks.ssd.postprocess import detections_from_outputs

    height, width = (96, 128) if quick else (300, 300)
    seconds = 1.0 if quick else 5.0
    model, anchors = _build(height, width)
    exported = _export(model, anchors)
    network, full = _session(exported.network), _session(exported.full)
    rng = np.random.default_rng(0)
    rows: list[BenchRow] = []
    nms = NmsConfig(0.01, 0.6, 200)
    for batch in (1, 8):
        nhwc = rng.uniform(-120, 130, (batch, height, width, 3)).astype(np.float32)
        nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        keras_rate = _rate(lambda x=nhwc: model.predict_on_batch(x), batch, seconds)
        ort_rate = _rate(lambda x=nchw: network.run(None, {"Input": x}), batch, seconds)
        rows.append(
            BenchRow(
                f"SSD forward {height}x{width} batch {batch} (ORT)",
                ort_rate,
                "images/s",
                "Keras predict_on_batch",
                keras_rate,
                ort_rate / keras_rate,
                ">= 1x",
                ort_rate >= keras_rate,
            )
        )

        def keras_detect(x=nhwc):
            out = model.predict_on_batch(x)
            detections_from_outputs(
                softmax(np.asarray(out["conf"])),
                np.asarray(out["loc"]),
                anchors,
                (0.1, 0.1, 0.2, 0.2),
                nms,
                [(height, width)] * len(x),
            )

        keras_full = _rate(keras_detect, batch, seconds)
        ort_full = _rate(lambda x=nchw: full.run(None, {"Input": x}), batch, seconds)
        rows.append(
            BenchRow(
                f"SSD detect (with NMS) batch {batch} (ORT graph)",
                ort_full,
                "images/s",
                "Keras + numpy decode/NMS",
                keras_full,
                ort_full / keras_full,
                ">= 1x",
                ort_full >= keras_full,
            )
        )

    batches, batch_size = (2, 4) if quick else (10, 8)
    data = [
        rng.uniform(-120, 130, (batch_size, 3, height, width)).astype(np.float32)
        for _ in range(batches)
    ]
    start = time.perf_counter()
    calibrate_network(exported.network, data)
    calib = time.perf_counter() - start
    start = time.perf_counter()
    for x in data:
        network.run(None, {"Input": x})
    plain = time.perf_counter() - start
    target = 60.0 if not quick else 30.0
    rows.append(
        BenchRow(
            f"INT8 entropy calibration, {batches}x{batch_size} images",
            calib,
            "s",
            "one FP32 ORT pass",
            plain,
            calib / plain,
            f"<= {target:g} s",
            calib <= target,
        )
    )
    rows.extend(_pruned_rows(model, anchors, height, width, seconds, rng))
    return rows


def _pruned_rows(model, anchors, height, width, seconds, rng) -> list[BenchRow]:
    """Unpruned vs pruned ONNX latency (batch 1), when ``tlt_core.prune`` is importable.

    Random weights have filters of similar norms, so nothing would be pruned; half the
    filters of every backbone conv are shrunk first (as L1 regularisation leaves a trained
    model), then pruned at threshold 0.1. Latency depends on the structure only.
    """
    import keras

    try:
        from tlt_core.prune.pruner import PruneSettings, prune_model
    except ImportError:  # the pruner is another module; skip its row without it
        return []
    heads = [
        layer.name for layer in model.layers if layer.name.startswith(("ssd_conf_", "ssd_loc_"))
    ]
    sparse = keras.models.clone_model(model)
    sparse.set_weights(model.get_weights())
    for layer in sparse.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.name not in heads:
            weights = layer.get_weights()
            weak = rng.random(weights[0].shape[-1]) < 0.5
            weights[0][..., weak] *= 0.01
            layer.set_weights(weights)
    pruned, _ = prune_model(sparse, PruneSettings(threshold=0.1), protected=heads)
    before, after = model.count_params(), pruned.count_params()
    sessions = [_session(_export(m, anchors).network) for m in (model, pruned)]
    x = rng.uniform(-120, 130, (1, 3, height, width)).astype(np.float32)
    unpruned_rate, pruned_rate = (
        _rate(lambda s=s: s.run(None, {"Input": x}), 1, seconds) for s in sessions
    )
    ratio = unpruned_rate / pruned_rate  # latency ratio pruned / unpruned
    return [
        BenchRow(
            f"pruned ONNX latency, batch 1 ({before / 1e6:.1f}M -> {after / 1e6:.1f}M params)",
            1000.0 / pruned_rate,
            "ms",
            "unpruned ONNX",
            1000.0 / unpruned_rate,
            ratio,
            "< 1x",
            ratio < 1.0,
        )
    ]
