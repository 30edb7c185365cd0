"""Deploy-quality figures for a classifier on the classification sample: prune, retrain,
ONNX parity, INT8.

    python scripts/classification_deploy_quality.py OUT_DIR [--normalizer L2]
        [--threshold 0.06] [--epochs 14] [--retrain-epochs 6] [--min-filters 8]

Generates the sample (``tlt sample-data --task classification``), trains its spec, prunes
the model (prints the parameter ratio), retrains the pruned model (``-m pruned.tlt``, the
same spec, ``--retrain-epochs``), exports the retrained model to ONNX with an INT8 entropy
calibration cache (on the flattened validation images), evaluates the ONNX model in ONNX
Runtime and simulates INT8 (quantise-dequantise with the cache's scales). Writes
OUT_DIR/result.json with every top-1 accuracy.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from tlt_core.export.cache import read_cache
from tlt_core.export.int8_sim import simulated_map
from tlt_core.export.onnx import read_model
from tlt_core.networks import get_network
from tlt_core.stages.evaluate import evaluate
from tlt_core.stages.export import export
from tlt_core.stages.prune import prune
from tlt_core.stages.sample_data import generate_classification
from tlt_core.stages.train import train

KEY = "cls-deploy-quality"
NETWORK = "classification"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    # Trained from scratch with a small L2 term, filter norms are nearly uniform: "max"
    # normalisation removes nothing below a threshold of 0.7; "L2" at 0.06 removes 74 %.
    parser.add_argument("--normalizer", default="L2", choices=("max", "L2"))
    parser.add_argument("--threshold", type=float, default=0.06)
    parser.add_argument("--min-filters", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--retrain-epochs", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    network = get_network(NETWORK)
    sample = generate_classification(out / "data")
    spec = network.load_spec(sample.spec).with_paths(n_epochs=args.epochs)
    result: dict = {}
    start = time.time()
    trained = train(spec, out / "train", KEY, network=NETWORK)
    result["train_s"] = round(time.time() - start, 1)
    result["top1"] = evaluate(trained.final_model_path, spec, KEY, network=NETWORK).mAP
    pruned = prune(
        trained.final_model_path,
        out / "pruned" / "pruned.tlt",
        KEY,
        normalizer=args.normalizer,
        threshold=args.threshold,
        min_filters=args.min_filters,
        network=NETWORK,
    )
    result.update(
        normalizer=args.normalizer,
        threshold=args.threshold,
        params_before=pruned.params_before,
        params_after=pruned.params_after,
        params_removed=round(1 - pruned.params_after / pruned.params_before, 4),
    )
    retrain_spec = spec.with_paths(n_epochs=args.retrain_epochs)
    start = time.time()
    retrained = train(
        retrain_spec,
        out / "retrain",
        KEY,
        model_path=out / "pruned" / "pruned.tlt",
        network=NETWORK,
    )
    result["retrain_s"] = round(time.time() - start, 1)
    model = retrained.final_model_path
    result["pruned_retrained_top1"] = evaluate(model, spec, KEY, network=NETWORK).mAP
    calibration = out / "calibration_images"
    calibration.mkdir(exist_ok=True)
    for image in sorted(Path(spec.val_dataset_path).glob("*/*.png")):
        target = calibration / f"{image.parent.name}_{image.name}"
        if not target.exists():
            target.symlink_to(image)
    exported = export(
        model,
        KEY,
        spec,
        out / "export" / "model.onnx",
        data_type="int8",
        cal_image_dir=calibration,
        batches=10,
        batch_size=8,
        gen_ds_config=True,
        network=NETWORK,
    )
    result["onnx_top1"] = evaluate(out / "export" / "model.onnx", spec, KEY, network=NETWORK).mAP
    result["int8_sim"] = simulated_map(
        read_model(out / "export" / "model.onnx", KEY),
        read_cache(exported.cal_cache_file).scales,
        network,
        spec,
    )
    text = json.dumps(result, indent=1, default=str)
    (out / "result.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
