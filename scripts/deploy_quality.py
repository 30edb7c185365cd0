"""Deploy-quality figures for a trained SSD model: prune, retrain, ONNX parity, INT8.

    python scripts/deploy_quality.py SPEC MODEL.tlt KEY OUT_DIR CAL_IMAGE_DIR \
        [--threshold 0.96] [--retrain-epochs 10]

Evaluates MODEL, prunes it (prints the parameter ratio), retrains the pruned model for
``--retrain-epochs`` with the same spec (its regularizer as given), evaluates it, exports it
to ONNX with an INT8 entropy calibration cache, evaluates the ONNX model in ONNX Runtime and
simulates INT8 (quantise-dequantise with the cache's scales). Writes OUT_DIR/result.json.
The figures in the issue notes came from this script on the tuned sample spec
(tests/test_train_quality.py trains that model).
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
from tlt_core.networks.ssd.spec import load_experiment
from tlt_core.stages.evaluate import evaluate
from tlt_core.stages.export import export
from tlt_core.stages.prune import prune
from tlt_core.stages.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("spec", "model", "key", "out", "cal_image_dir"):
        parser.add_argument(name)
    parser.add_argument("--threshold", type=float, default=0.96)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec, out = Path(args.spec), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"unpruned_mAP": evaluate(args.model, spec, args.key).mAP}
    pruned = prune(args.model, out / "pruned.tlt", args.key, threshold=args.threshold)
    result.update(
        threshold=args.threshold,
        params_before=pruned.params_before,
        params_after=pruned.params_after,
    )
    retrain_spec = (
        load_experiment(spec)
        .with_overrides(
            {
                "training_config.pruned_model_path": str(out / "pruned.tlt"),
                "training_config.num_epochs": args.retrain_epochs,
            }
        )
        .save(out / "retrain_spec.txt")
    )
    start = time.time()
    retrained = train(retrain_spec, out / "retrain", args.key)
    result["retrain_s"] = round(time.time() - start, 1)
    result["pruned_retrained_mAP"] = evaluate(retrained.final_model_path, spec, args.key).mAP
    start = time.time()
    exported = export(
        retrained.final_model_path,
        args.key,
        spec,
        out / "model.onnx",
        data_type="int8",
        cal_image_dir=args.cal_image_dir,
        batches=10,
        batch_size=8,
    )
    result["export_calibrate_s"] = round(time.time() - start, 1)
    result["onnx_mAP"] = evaluate(out / "model.onnx", spec, args.key).mAP
    result["int8_sim"] = simulated_map(
        read_model(out / "model.onnx", args.key),
        read_cache(exported.cal_cache_file).scales,
        get_network("ssd"),
        load_experiment(spec),
    )
    text = json.dumps(result, indent=1, default=str)
    (out / "result.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
