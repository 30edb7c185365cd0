"""INT8 accuracy per network: float vs PTQ Q/DQ vs QAT Q/DQ, measured in ONNX Runtime.

    python scripts/int8_accuracy.py OUT_DIR [--networks ssd,detectnet_v2,classification]
        [--epochs 6] [--qat-epochs 2] [--num-train 96] [--num-val 32]

For each network: generate its sample data, train the float model (the sample spec,
``fast``) for ``--epochs``, evaluate it (Keras); export INT8 with ``--qdq`` from the
training images (PTQ: ONNX Runtime entropy calibration, and this project's entropy
calibrator) and evaluate each Q/DQ ONNX in ONNX Runtime (real INT8 kernels on the CPU);
fine-tune the float model with QAT for ``--qat-epochs`` (``tlt <network> train
--enable_qat -m float.tlt`` with the float model's spec: Adam at
``tlt_core.models.qat.QAT_RATE_FACTOR`` of its schedule), export its Q/DQ ONNX (the
learned ranges, no calibration) and evaluate it the same way; train QAT from scratch
(``--enable_qat``, no start model: float then QAT, ``tlt_core.models.qat.
scratch_switch_epoch``) for the float model's ``--epochs`` and evaluate its Q/DQ ONNX too.
Prints one table (the primary metric in points, and each INT8 figure's difference to the
float model) and writes OUT_DIR/int8_accuracy.json. A rerun into the same OUT_DIR reuses
the trainings that finished.

DetectNet_v2 needs more than the defaults to detect anything (6 epochs on 96 images: mAP
12 %, where INT8 differences are noise): ``--networks detectnet_v2 --epochs 30 --num-train
200 --num-val 50``; classification: ``--epochs 20 --num-train 1000 --num-val 200``; SSD:
``--epochs 20``. The measured table is in docs/export.md (INT8 and QAT).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

KEY = "int8-accuracy"


def _sample(network, root: Path, num_train: int, num_val: int):
    """(spec text maker, calibration image dir) for ``network``'s sample data."""
    from tlt_core.stages import sample_data

    if network.sample_task == "classification":
        sample = sample_data.generate_classification(
            root / "data", num_train=num_train, num_val=num_val, seed=0
        )
        # Calibration reads one flat folder: a few images of every class, linked there.
        images = root / "calibration_images"
        images.mkdir(exist_ok=True)
        for folder in sorted(p for p in sample.train_dir.iterdir() if p.is_dir()):
            for image in sorted(folder.iterdir())[:16]:
                link = images / f"{folder.name}_{image.name}"
                if not link.exists():
                    link.symlink_to(image)
        return sample.root, images
    sample = sample_data.generate(root / "data", num_train=num_train, num_val=num_val, seed=0)
    return sample.root, sample.train_image_dir


def _spec_text(network, data_root: Path, epochs: int) -> str:
    """The network's fast sample spec; SSD's is the training-quality smoke spec (128x128, no
    augmentation) validated on its training images: a model that fits its images in a few
    minutes on 2 cores, so INT8 is measured on a model that detects something."""
    if network.name != "ssd":
        return network.sample_spec(data_root, fast=True, epochs=epochs)
    from tlt_core.networks.ssd.sample_spec import sample_experiment_spec

    text = sample_experiment_spec(
        data_root,
        output_width=128,
        output_height=128,
        batch_size=4,
        num_epochs=epochs,
        validation_period=max(1, epochs),
        soft_start=0.1,
        random_crop_min_scale=1.0,
        zoom_out_max_scale=1.0,
        regularizer_type="NO_REG",
        regularizer_weight=0,
        ap_mode="INTEGRATE",
    )
    text = text.replace(str((data_root / "val").resolve()), str((data_root / "training").resolve()))
    no_jitter = {
        f"augmentation_config.{k}": 0 for k in ("brightness", "contrast", "saturation", "hue")
    }
    spec = network.parse_spec(text, path="<int8_accuracy>").with_overrides(
        {**no_jitter, "training_config.checkpoint_interval": max(1, epochs)}
    )
    return spec.to_text(absolute_paths=True)


def _finished(results_dir: Path) -> bool:
    status = results_dir / "status.json"
    return status.exists() and json.loads(status.read_text()).get("state") == "done"


def _trained(results_dir: Path, spec: Path, name: str, **kwargs) -> Path:
    """The last checkpoint of a finished run in ``results_dir``, else a new run's."""
    from tlt_core.stages.train import train

    done = sorted((results_dir / "weights").glob("*.tlt"))
    if _finished(results_dir) and done:
        return done[-1]
    return train(spec, results_dir, KEY, network=name, **kwargs).final_model_path


def _points(value: float) -> float:
    return round(100.0 * float(value), 2)


def measure(name: str, out: Path, args) -> dict:
    from tlt_core.networks import get_network
    from tlt_core.stages.evaluate import evaluate
    from tlt_core.stages.export import export

    network = get_network(name)
    root = out / name
    root.mkdir(parents=True, exist_ok=True)
    if (root / "data").exists() and _finished(root / "float"):
        data_root = root / "data"
        cal_images = data_root / "training" / "image_2"
        if network.sample_task == "classification":
            cal_images = root / "calibration_images"
    else:
        data_root, cal_images = _sample(network, root, args.num_train, args.num_val)
    spec = root / "spec.txt"
    spec.write_text(_spec_text(network, data_root, args.epochs))
    qat_spec = root / "qat_spec.txt"
    qat_spec.write_text(_spec_text(network, data_root, args.qat_epochs))
    row: dict = {"network": name}
    started = time.time()
    float_model = _trained(root / "float", spec, name)
    row["train_s"] = round(time.time() - started, 1)
    result = evaluate(float_model, spec, KEY, network=name)
    row["metric"] = result.metric
    row["float"] = _points(result.mAP)
    cal = {"cal_image_dir": cal_images, "batches": args.cal_batches, "batch_size": 8}
    for calibrator in ("ort-entropy", "tlt"):
        path = root / f"ptq_{calibrator}.qdq.onnx"
        started = time.time()
        export(
            float_model,
            KEY,
            spec,
            path,
            data_type="int8",
            qdq=True,
            calibrator=calibrator,
            network=name,
            **cal,
        )
        row[f"ptq_{calibrator}_export_s"] = round(time.time() - started, 1)
        row[f"ptq_{calibrator}"] = _points(evaluate(path, spec, KEY, network=name).mAP)
    started = time.time()
    qat_model = _trained(root / "qat", qat_spec, name, model_path=float_model, enable_qat=True)
    row["qat_train_s"] = round(time.time() - started, 1)
    row["qat_keras"] = _points(evaluate(qat_model, qat_spec, KEY, network=name).mAP)
    export(qat_model, KEY, spec, root / "qat.qdq.onnx", data_type="int8", qdq=True, network=name)
    row["qat_qdq"] = _points(evaluate(root / "qat.qdq.onnx", spec, KEY, network=name).mAP)
    # From scratch: the float spec (its epochs and learning rates), QAT switched on.
    started = time.time()
    scratch_model = _trained(root / "qat_scratch", spec, name, enable_qat=True)
    row["qat_scratch_train_s"] = round(time.time() - started, 1)
    row["qat_scratch_keras"] = _points(evaluate(scratch_model, spec, KEY, network=name).mAP)
    scratch_onnx = root / "qat_scratch.qdq.onnx"
    export(scratch_model, KEY, spec, scratch_onnx, data_type="int8", qdq=True, network=name)
    row["qat_scratch_qdq"] = _points(evaluate(scratch_onnx, spec, KEY, network=name).mAP)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--networks", default="ssd,detectnet_v2,classification")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--num-train", type=int, default=96)
    parser.add_argument("--num-val", type=int, default=32)
    parser.add_argument("--cal-batches", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    rows = []
    for name in args.networks.split(","):
        rows.append(measure(name.strip(), out, args))
        (out / "int8_accuracy.json").write_text(json.dumps(rows, indent=1))
    header = (
        "network",
        "metric",
        "float",
        "PTQ QDQ (ort)",
        "d",
        "PTQ QDQ (tlt)",
        "d",
        "QAT (keras)",
        "QAT QDQ",
        "d",
        "QAT scratch (keras)",
        "QAT scratch QDQ",
        "d",
    )
    print(" | ".join(header))
    for r in rows:
        print(
            " | ".join(
                str(v)
                for v in (
                    r["network"],
                    r["metric"],
                    r["float"],
                    r["ptq_ort-entropy"],
                    round(r["ptq_ort-entropy"] - r["float"], 2),
                    r["ptq_tlt"],
                    round(r["ptq_tlt"] - r["float"], 2),
                    r["qat_keras"],
                    r["qat_qdq"],
                    round(r["qat_qdq"] - r["float"], 2),
                    r["qat_scratch_keras"],
                    r["qat_scratch_qdq"],
                    round(r["qat_scratch_qdq"] - r["float"], 2),
                )
            )
        )


if __name__ == "__main__":
    main()
