"""The container entry point of every worker pod of a distributed train job.

    python3 -m tlt_core.cluster.worker --network NETWORK --dataset URI --spec URI \\
        --results URI [--validation-fold N] [--pruned-model URI] [--gpus N]

1. ``TF_CONFIG``: kept when the operator set it (TFJob), else derived from the JobSet
   environment (TrainJob, ``tf_config.ensure_tf_config``);
2. inputs fetched to a private folder: the data step's output (``--dataset``: the KITTI
   detectors' TFRecord folds, classification's train/ and val/ class folders; the older
   name ``--tfrecords`` is still accepted) and the spec, whose data sources the network
   points at that copy (the same rewrite the single-pod task does);
3. resume: when ``RESULTS/status.json`` shows an unfinished run (a restarted job), every
   worker starts from its last checkpoint and epoch; a finished run is not trained again;
4. ``exec tlt <network> train``: the chief (worker 0) writes to ``RESULTS`` (uploaded when
   training ends, also after a SIGTERM with its checkpoint); the others to a local folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from tlt_core.cluster import locations, tf_config
from tlt_core.errors import TltError

log = logging.getLogger("tlt.worker")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tlt-worker", description=__doc__.split("\n")[0])
    from tlt_core.networks import DEFAULT_NETWORK, NETWORKS

    parser.add_argument("--network", choices=tuple(NETWORKS), default=DEFAULT_NETWORK)
    # --tfrecords: the name from when only SSD ran here; jobs created by older pipeline
    # tasks still pass it.
    parser.add_argument(
        "--dataset",
        "--tfrecords",
        dest="dataset",
        required=True,
        help="the data step's output folder (s3:// or path): TFRecord folds for a "
        "detector, train/ and val/ class folders for classification",
    )
    parser.add_argument("--spec", required=True, help="experiment spec file (s3:// or path)")
    parser.add_argument("--results", required=True, help="results folder (s3:// or path)")
    parser.add_argument("--validation-fold", type=int, default=0)
    parser.add_argument("--pruned-model", default="")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--use-amp", action="store_true")
    return parser.parse_args(argv)


def placement(env) -> tf_config.WorkerPlacement:
    if tf_config.ensure_tf_config(env):
        return tf_config.placement_from_tf_config(env["TF_CONFIG"])
    return tf_config.WorkerPlacement(("localhost",), 0)


def train_command(args: argparse.Namespace, env, work: Path) -> list[str] | None:
    """The ``tlt`` argv this worker runs, or None when the job already finished."""
    from tlt_core import pipeline_support as support

    place = placement(env)
    status = locations.read_status(args.results)
    if status is not None and status.get("state") == "done":
        log.info("%s/status.json says done: nothing to train", args.results)
        return None
    dataset = locations.fetch(args.dataset, work / "dataset")
    spec_text = locations.fetch(args.spec, work / "spec_in.txt").read_text()
    overrides = None
    if args.pruned_model:
        pruned = locations.fetch(args.pruned_model, work / "pruned.tlt")
        from tlt_core.networks import get_network

        overrides = get_network(args.network).pruned_start_overrides(str(pruned))
    experiment = support.experiment_for_artifacts(
        spec_text, str(dataset), args.validation_fold, overrides, network=args.network
    )
    spec = experiment.save(work / "experiment_spec.txt", absolute_paths=True)
    results = args.results if place.chief else str(work / "results")
    key = env.get(support.MODEL_KEY_ENV)
    if not key:
        raise TltError(f"{support.MODEL_KEY_ENV} is not set: mount the model key Secret")
    argv = ["tlt", args.network, "train", "-e", str(spec), "-r", results, "-k", key]
    argv += ["--gpus", str(max(1, args.gpus))]
    if args.use_amp:
        argv.append("--use_amp")
    checkpoint = (status or {}).get("last_checkpoint")
    if checkpoint:
        done = max((int(e["epoch"]) for e in status.get("epochs", [])), default=0)
        local = locations.fetch(locations.join(args.results, checkpoint), work / "resume.tlt")
        argv += ["-m", str(local), "--initial_epoch", str(done)]
        log.info("resuming from %s at epoch %d", checkpoint, done)
    log.info(
        "worker %d of %d%s", place.index, len(place.workers), " (chief)" if place.chief else ""
    )
    return argv


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="tlt-worker-"))
    try:
        command = train_command(args, os.environ, work)
    except TltError as error:
        print(f"tlt-worker: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    if command is None:
        return 0
    sys.stdout.flush()
    os.execvp(command[0], command)  # the pod's process becomes `tlt` (signals, exit code)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
