"""Explicit INT8 (Q/DQ ONNX) on the CPU: latency against FP32, and the two calibrators.

One SSD (ResNet-10, 3 classes; 300x300, 96x128 with ``quick``), random weights with the
heads scaled into a trained model's range, on the generated sample images, in one process:

- latency (ms, median) of the exported network part (``Input -> conf, loc``) in ONNX
  Runtime on the CPU, Q/DQ INT8 (ONNX Runtime fuses Q/DQ pairs into INT8 kernels) against
  the FP32 graph, at batch 1 and 8;
- calibration wall time of ONNX Runtime's ``quantize_static`` (entropy, QDQ) against this
  project's entropy calibrator + ``qdq_from_amax`` on the same images, and each Q/DQ
  graph's output error against FP32 (mean |int8 - fp32| / mean |fp32| over conf and loc):
  what decides which calibrator ``export --qdq`` uses by default.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import BenchRow


def _setup(root: Path, quick: bool):
    import keras

    from tlt_core.export.onnx import keras_to_onnx
    from tlt_core.networks import get_network
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
    from tlt_core.stages.calibrate import calibration_batches
    from tlt_core.stages.sample_data import generate

    height, width = (96, 128) if quick else (300, 300)
    data = generate(root / "data", num_train=32, num_val=1, seed=0)
    spec = root / "spec.txt"
    spec.write_text(sample_experiment_spec(data.root, output_width=width, output_height=height))
    ssd = get_network("ssd")
    experiment = ssd.spec_of(spec)
    keras.utils.set_random_seed(0)
    model = ssd.build_model(experiment)
    for layer in model.layers:
        if layer.name.startswith(("ssd_conf_", "ssd_loc_")) and "reshape" not in layer.name:
            layer.set_weights([w * 0.003 for w in layer.get_weights()])
    batches, _ = calibration_batches(
        ssd, experiment, image_dir=data.train_image_dir, data_file=None, batches=4, batch_size=8
    )
    return keras_to_onnx(model), batches


def _latency_ms(session, batch: np.ndarray, runs: int) -> float:
    feed = {session.get_inputs()[0].name: batch}
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _error(reference: list[np.ndarray], values: list[np.ndarray]) -> float:
    return float(
        np.mean(
            [
                np.abs(v - r).mean() / np.abs(r).mean()
                for r, v in zip(reference, values, strict=True)
            ]
        )
    )


def run(quick: bool = False) -> list[BenchRow]:
    from tlt_core.export.calibrate import calibrate_network
    from tlt_core.export.onnx import ort_session
    from tlt_core.export.qdq import qdq_from_amax, quantize_with_onnxruntime

    with tempfile.TemporaryDirectory(prefix="bench_qdq_") as tmp:
        network, batches = _setup(Path(tmp), quick)
    start = time.perf_counter()
    library = quantize_with_onnxruntime(network, batches, "entropy")
    library_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = qdq_from_amax(network, calibrate_network(network, batches).amax)
    ours_s = time.perf_counter() - start

    fp32 = ort_session(network, ["CPUExecutionProvider"])
    int8 = ort_session(library, ["CPUExecutionProvider"])
    int8_ours = ort_session(ours, ["CPUExecutionProvider"])
    images = np.concatenate(batches)
    feed = {fp32.get_inputs()[0].name: images[:8]}
    reference = fp32.run(None, feed)
    rows = []
    runs = 10 if quick else 30
    for batch in (1, 8):
        fp32_ms = _latency_ms(fp32, images[:batch], runs)
        int8_ms = _latency_ms(int8, images[:batch], runs)
        rows.append(
            BenchRow(
                f"SSD Q/DQ INT8 latency, ORT CPU, batch {batch}",
                int8_ms,
                "ms",
                "FP32 ONNX",
                fp32_ms,
                int8_ms / fp32_ms,
                "report (deploy target is TensorRT)",
            )
        )
    rows.append(
        BenchRow(
            f"Q/DQ calibration, ORT quantize_static entropy ({len(images)} images)",
            library_s,
            "s",
            "hand-written entropy + qdq_from_amax",
            ours_s,
            library_s / ours_s,
            "report",
        )
    )
    library_error = _error(reference, int8.run(None, feed))
    ours_error = _error(reference, int8_ours.run(None, feed))
    rows.append(
        BenchRow(
            "Q/DQ output error vs FP32, ORT entropy",
            library_error,
            "rel. L1",
            "hand-written entropy",
            ours_error,
            library_error / ours_error if ours_error else None,
            "report",
        )
    )
    return rows
