"""The TLT v0.3 guide's spellings of the classification commands (002, 5.1, 6.1, 7.1):

    tlt-train classification -e SPEC -r RESULTS_DIR -k KEY [--gpus N] [-v]
    tlt-evaluate classification -d TARGET_DIR -pm MODEL -k KEY [-b BATCH] [-w WORKERS] [-v]
    tlt-infer classification -m MODEL (-i IMAGE | -d IMAGE_DIR) -k KEY [-b BATCH]
                             [-cm CLASSMAP] [-v]

Each calls the same shared stage as ``tlt classification train|evaluate|inference``.
``tlt-evaluate`` and ``tlt-infer`` take no spec (002 gives them none): the spec the model
was trained with travels in its metadata and is used with the model's classes; ``-d`` of
``tlt-evaluate`` is a class-per-directory dataset, ``-d`` of ``tlt-infer`` a folder of
images that gets ``result.csv``. ``-cm`` must list the model's classes (a check that
the class map belongs to the model; the model's own list names the outputs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tlt_core.errors import ModelFileError

NETWORK = "classification"


def _parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="kind", metavar="{classification}", required=True)
    cls = sub.add_parser(NETWORK, help="an image classification model")
    cls.add_argument("-v", "--verbose", action="store_true", help="more detailed logs")
    return parser, cls


def build_train_parser() -> argparse.ArgumentParser:
    parser, cls = _parser("tlt-train", "Train a model (TLT v0.3 guide, 5.1).")
    cls.add_argument("-e", "--experiment_spec", "--experiment_spec_file", required=True)
    cls.add_argument("-r", "--results_dir", required=True)
    cls.add_argument("-k", "--key", required=True)
    cls.add_argument("--gpus", type=int, default=1)
    cls.set_defaults(func=_train)
    return parser


def build_evaluate_parser() -> argparse.ArgumentParser:
    parser, cls = _parser("tlt-evaluate", "Evaluate a model (TLT v0.3 guide, 6.1).")
    cls.add_argument("-d", "--target_dir", required=True, help="class-per-directory dataset")
    cls.add_argument("-pm", "--pretrained_model", required=True, help="the .tlt model")
    cls.add_argument("-k", "--key", required=True)
    cls.add_argument("-b", "--batch_size", type=int, default=None)
    cls.add_argument("-w", "--workers", type=int, default=None, help="accepted, not used")
    cls.set_defaults(func=_evaluate)
    return parser


def build_infer_parser() -> argparse.ArgumentParser:
    parser, cls = _parser("tlt-infer", "Classify images with a model (TLT v0.3 guide, 7.1).")
    cls.add_argument("-m", "--model", required=True)
    source = cls.add_mutually_exclusive_group(required=True)
    source.add_argument("-i", "--image", help="one image")
    source.add_argument("-d", "--image_dir", help="a folder of images: writes result.csv there")
    cls.add_argument("-b", "--batch_size", type=int, default=1)
    cls.add_argument("-k", "--key", required=True)
    cls.add_argument("-cm", "--class_map", default=None, help="classmap.json of the model")
    cls.set_defaults(func=_infer)
    return parser


def _model_spec(model_path: str, key: str):
    """The spec a model was trained with (from its metadata), with the model's classes."""
    from tlt_core.modelfile import load_metadata
    from tlt_core.networks import get_network

    metadata = load_metadata(model_path, key)
    if metadata.get("network") != NETWORK or "spec_text" not in metadata:
        raise ModelFileError(f"{model_path}: not a classification model")
    network = get_network(NETWORK)
    spec = network.parse_spec(metadata["spec_text"], path=f"{model_path} (spec)")
    return spec.with_class_names(metadata["class_names"]), metadata


def _train(args: argparse.Namespace) -> int:
    from tlt_core.stages.train import train

    result = train(
        args.experiment_spec,
        args.results_dir,
        args.key,
        gpus=args.gpus,
        network=NETWORK,
        verbose=1 if sys.stderr.isatty() else 0,
    )
    print(f"training done: {result.epochs_completed} epochs, model {result.final_model_path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tlt_core.stages.evaluate import evaluate

    spec, _ = _model_spec(args.pretrained_model, args.key)
    spec = spec.with_paths(val=Path(args.target_dir).absolute())
    result = evaluate(
        args.pretrained_model, spec, args.key, batch_size=args.batch_size, network=NETWORK
    )
    print(result.table)
    return 0


def _infer(args: argparse.Namespace) -> int:
    from tlt_core.data.classmap import read_classmap
    from tlt_core.stages.inference import inference

    spec, metadata = _model_spec(args.model, args.key)
    if args.class_map is not None:
        names = read_classmap(args.class_map)
        if list(names) != list(metadata["class_names"]):
            raise ModelFileError(
                f"{args.class_map}: classes {list(names)} are not the model's "
                f"{list(metadata['class_names'])}"
            )
    with tempfile.TemporaryDirectory(prefix="tlt-infer-") as tmp:
        spec_path = spec.save(Path(tmp) / "spec.txt")
        output = args.image_dir if args.image_dir else tmp
        inference(
            args.model,
            spec_path,
            args.key,
            args.image_dir or args.image,
            output,
            batch_size=args.batch_size,
            network=NETWORK,
        )
    return 0


def _main(build, argv: Sequence[str] | None) -> int:
    from tlt_core.cli import configure_logging, run_command

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    from tlt_core.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    return run_command(args.func, args, prog=parser.prog)


def train_main(argv: Sequence[str] | None = None) -> int:
    return _main(build_train_parser, argv)


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    return _main(build_evaluate_parser, argv)


def infer_main(argv: Sequence[str] | None = None) -> int:
    return _main(build_infer_parser, argv)
