"""The TLT v0.3 (002) command spellings, as console scripts over the same stages:

``tlt-train {detection,classification}``, ``tlt-evaluate {detection,classification}``,
``tlt-infer {detection,classification}``, ``tlt-prune`` and ``tlt-export``
(classification's train / evaluate / infer flags are 002's own, in
`tlt_core.cli.tlt_v03`). ``detection`` is DetectNet_v2
(002's detector); ``classification`` is used when the network table has it. The flags are
002's (``-k`` is the key of ``tlt-train``, but ``--kitti_dump`` of ``tlt-infer``, whose key
is ``-ek``). 002's ``tlt-infer`` and ``tlt-export`` take no spec: the experiment spec saved
in the model file is used. Every command calls the stage ``tlt <network> <task>`` calls.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

KINDS = {"detection": "detectnet_v2", "classification": "classification"}


def _network(kind: str) -> str:
    from tlt_core.errors import UsageError
    from tlt_core.networks import NETWORKS

    name = KINDS[kind]
    if name not in NETWORKS:
        raise UsageError(f"{kind}: the {name} network is not in this build")
    return name


def _spec_from_model(model_path: str, key: str, directory: str) -> Path:
    """The experiment spec saved in a ``.tlt`` model file, written to ``directory``."""
    from tlt_core.errors import ModelFileError
    from tlt_core.modelfile import load_model

    _, metadata = load_model(model_path, key)
    text = metadata.get("spec_text")
    if not text:
        raise ModelFileError(f"{model_path}: no experiment spec in the model file; give -e")
    path = Path(directory) / "experiment_spec.txt"
    path.write_text(text)
    return path


def _model_network(model_path: str, key: str) -> str:
    from tlt_core.modelfile import load_model

    _, metadata = load_model(model_path, key)
    return str(metadata.get("network") or "ssd")


def _classification(argv: Sequence[str] | None, name: str) -> int | None:
    """002's classification flags (``-d -pm``, ``-i|-d -cm``) differ from detection's:
    ``<command> classification ...`` runs `tlt_core.cli.tlt_v03`'s parser instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["classification"]:
        return None
    from tlt_core.cli import tlt_v03

    return getattr(tlt_v03, name)(args)


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None, prog: str) -> int:
    from tlt_core.cli import configure_logging, run_command

    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", False))
    return run_command(args.func, args, prog=prog)


# -- tlt-train ------------------------------------------------------------------------------
def train_main(argv: Sequence[str] | None = None) -> int:
    delegated = _classification(argv, "train_main")
    if delegated is not None:
        return delegated
    parser = argparse.ArgumentParser(prog="tlt-train", description="002: tlt-train")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--gpus", type=int, default=1, help="GPUs to train on (default 1)")
    parser.add_argument("-k", "--key", required=True, help="key to save/load .tlt models")
    parser.add_argument("-r", "--results_dir", required=True)
    parser.add_argument("-e", "--experiment_spec_file", required=True)
    parser.add_argument("-v", "--verbose", action="store_true")

    def run(args) -> int:
        from tlt_core.stages.train import train

        result = train(
            args.experiment_spec_file,
            args.results_dir,
            args.key,
            gpus=args.gpus,
            network=_network(args.kind),
        )
        print(f"training done: {result.epochs_completed} epochs, {result.final_model_path}")
        return 0

    parser.set_defaults(func=run)
    return _run(parser, argv, "tlt-train")


# -- tlt-evaluate ---------------------------------------------------------------------------
def evaluate_main(argv: Sequence[str] | None = None) -> int:
    delegated = _classification(argv, "evaluate_main")
    if delegated is not None:
        return delegated
    parser = argparse.ArgumentParser(prog="tlt-evaluate", description="002: tlt-evaluate")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("-e", "--experiment_spec_file", required=True)
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("-k", "--key", required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--use_training_set", action="store_true")

    def run(args) -> int:
        from tlt_core.stages.evaluate import evaluate

        result = evaluate(
            args.model,
            args.experiment_spec_file,
            args.key,
            network=_network(args.kind),
            use_training_set=args.use_training_set,
        )
        print(result.table)
        return 0

    parser.set_defaults(func=run)
    return _run(parser, argv, "tlt-evaluate")


# -- tlt-infer ------------------------------------------------------------------------------
def infer_main(argv: Sequence[str] | None = None) -> int:
    delegated = _classification(argv, "infer_main")
    if delegated is not None:
        return delegated
    parser = argparse.ArgumentParser(prog="tlt-infer", description="002: tlt-infer detection")
    parser.add_argument("kind", choices=["detection"])
    parser.add_argument("-m", "--model", required=True, help="TLT model file")
    parser.add_argument("-i", "--inference_input", required=True, help="image or directory")
    parser.add_argument(
        "-o", "--inference_output", required=True, help="OUT/labels, OUT/images_annotated"
    )
    parser.add_argument("-bs", "--batch_size", type=int, default=1)
    parser.add_argument("-k", "--kitti_dump", action="store_true", help="write KITTI labels")
    parser.add_argument("-bo", "--box_overlay", action="store_true", help="write overlays")
    parser.add_argument("-cp", "--cluster_params_file", default=None)
    parser.add_argument("-lw", "--line_width", type=int, default=None)
    parser.add_argument("-g", "--gpu_set", type=int, default=0)
    parser.add_argument("--output_cov", default="output_cov/Sigmoid")
    parser.add_argument("--output_bbox", default="output_bbox/BiasAdd")
    parser.add_argument("-ek", "--enc_key", required=True, help="key to load the model")
    parser.add_argument("-e", "--experiment_spec_file", default=None, help="(extension)")
    parser.add_argument("-v", "--verbosity", dest="verbose", action="store_true")

    def run(args) -> int:
        from tlt_core.errors import UsageError
        from tlt_core.networks import get_network
        from tlt_core.stages.inference import inference

        if not (args.kitti_dump or args.box_overlay):
            raise UsageError("nothing to write: give -k (KITTI labels) and/or -bo (overlays)")
        network = get_network(_network(args.kind))
        out = Path(args.inference_output)
        options = network.task_options("inference", args)
        with tempfile.TemporaryDirectory() as tmp:
            spec = args.experiment_spec_file or _spec_from_model(args.model, args.enc_key, tmp)
            result = inference(
                args.model,
                spec,
                args.enc_key,
                args.inference_input,
                out / "images_annotated",
                label_dir=out / "labels" if args.kitti_dump else None,
                threshold=None,
                batch_size=args.batch_size,
                network=network.name,
                options={**options, "box_overlay": bool(args.box_overlay)},
            )
        print(f"{result.num_images} images, {result.num_detections} detections")
        return 0

    parser.set_defaults(func=run)
    return _run(parser, argv, "tlt-infer")


# -- tlt-prune ------------------------------------------------------------------------------
def prune_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlt-prune", description="002: tlt-prune")
    parser.add_argument("-pm", "--pretrained_model", required=True)
    parser.add_argument("-o", "--output_dir", required=True)
    parser.add_argument("-k", "--key", required=True)
    parser.add_argument("-n", "--normalizer", choices=["max", "L2"], default="max")
    parser.add_argument(
        "-eq",
        "--equalization_criterion",
        choices=["arithmetic_mean", "geometric_mean", "union", "intersection"],
        default="union",
    )
    parser.add_argument("-pg", "--pruning_granularity", type=int, default=8)
    parser.add_argument("-pth", "--pruning_threshold", type=float, default=0.1)
    parser.add_argument("-nf", "--min_num_filters", type=int, default=16)
    parser.add_argument("-el", "--excluded_layers", nargs="*", default=[])
    parser.add_argument("-v", "--verbose", action="store_true")

    def run(args) -> int:
        from tlt_core.stages.prune import prune

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        result = prune(
            args.pretrained_model,
            out / f"{Path(args.pretrained_model).stem}_pruned.tlt",
            args.key,
            normalizer=args.normalizer,
            equalization=args.equalization_criterion,
            granularity=args.pruning_granularity,
            threshold=args.pruning_threshold,
            min_filters=args.min_num_filters,
            excluded_layers=args.excluded_layers,
            network=_model_network(args.pretrained_model, args.key),
        )
        print(result.summary())
        return 0

    parser.set_defaults(func=run)
    return _run(parser, argv, "tlt-prune")


# -- tlt-export -----------------------------------------------------------------------------
def export_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlt-export", description="002: tlt-export")
    parser.add_argument("model", help=".tlt model to export")
    parser.add_argument("-k", "--enc_key", required=True)
    parser.add_argument("-o", "--output_file", default=None)
    parser.add_argument("--outputs", default=None, help="output node names (checked)")
    parser.add_argument("--input_dims", default=None, help="C,H,W (checked against the model)")
    parser.add_argument("--data_type", choices=["fp32", "fp16", "int8"], default="fp32")
    parser.add_argument("--cal_data_file", default=None, help="directory of calibration images")
    parser.add_argument("--cal_cache_file", default=None)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--cal_batch_size", type=int, default=8)
    parser.add_argument("--max_batch_size", type=int, default=16)
    parser.add_argument("--max_workspace_size", type=int, default=1 << 30)
    parser.add_argument("--gen_ds_config", action="store_true", help="(extension)")
    parser.add_argument("-v", "--verbose", action="store_true")

    def run(args) -> int:
        from tlt_core.errors import UsageError
        from tlt_core.networks import get_network
        from tlt_core.stages.export import export

        network = get_network(_model_network(args.model, args.enc_key))
        if args.outputs is not None:
            wanted = sorted(n.strip() for n in args.outputs.split(",") if n.strip())
            if wanted != sorted(network.raw_output_names):
                raise UsageError(
                    f"--outputs {args.outputs}: this model's outputs are "
                    f"{','.join(network.raw_output_names)}"
                )
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = _spec_from_model(args.model, args.enc_key, tmp)
            if args.input_dims is not None:
                dims = tuple(int(v) for v in args.input_dims.split(","))
                height, width, channels = network.load_spec(spec_path).input_shape
                if dims != (channels, height, width):
                    raise UsageError(
                        f"--input_dims {args.input_dims}: the model takes "
                        f"{channels},{height},{width}"
                    )
            result = export(
                args.model,
                args.enc_key,
                spec_path,
                args.output_file,
                data_type=args.data_type,
                cal_image_dir=args.cal_data_file,
                cal_cache_file=args.cal_cache_file,
                batches=args.batches,
                batch_size=args.cal_batch_size,
                max_batch_size=args.max_batch_size,
                max_workspace_size=args.max_workspace_size,
                gen_ds_config=args.gen_ds_config,
                network=network.name,
            )
        print(f"exported {result}")
        return 0

    parser.set_defaults(func=run)
    return _run(parser, argv, "tlt-export")


if __name__ == "__main__":
    sys.exit(train_main())
