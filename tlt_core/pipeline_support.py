"""What the KFP components need around the stage functions: fetching inputs by URI,
pointing specs at the artifacts of earlier tasks, the model key from its Secret, metrics
for the KFP UI, and publishing. Each ``run_*`` function serves one component; the stage
functions stay free of pipeline concerns.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.errors import EngineBuildError, PipelineError

log = logging.getLogger(__name__)

MODEL_KEY_ENV = "TLT_MODEL_KEY"


def model_key() -> str:
    """The model key, set from a Kubernetes Secret (never a pipeline parameter)."""
    key = os.environ.get(MODEL_KEY_ENV)
    if not key:
        raise PipelineError(f"{MODEL_KEY_ENV} is not set: mount the model key Secret as env")
    return key


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tlt-task-"))


def _named(artifact_path: str, suffix: str) -> Path:
    """The artifact under a name with ``suffix``: KFP artifact files have no extension, and
    the model readers pick the format by it (.tlt, .onnx)."""
    link = _workdir() / f"model{suffix}"
    link.symlink_to(Path(artifact_path).absolute())
    return link


# --- data -------------------------------------------------------------------------------


def run_dataset_convert(
    dataset_uri: str, convert_spec: str, output_dir: str, network: str = "ssd"
) -> dict:
    """The data step: the dataset at ``dataset_uri`` (a local path, a mounted PVC path or
    an ``s3://`` prefix) made into what the network trains on, under ``output_dir``: the
    network's ``prepare_dataset`` hook (KITTI detectors: TFRecord folds from the
    dataset-convert spec text; classification: the class folders checked and passed on)."""
    from tlt_core.networks import get_network
    from tlt_core.storage import PathResolver

    net = get_network(network)
    with PathResolver() as paths:
        root = paths.input(dataset_uri)
        return net.prepare_dataset(Path(root), Path(output_dir), convert_spec=convert_spec)


def dataset_sources(
    dataset_dir: str, validation_fold: int, network: str = "ssd"
) -> tuple[list, list]:
    """Training and validation data sources of the data step's output (the network's
    ``dataset_sources`` hook: TFRecord folds, or classification's train/ and val/)."""
    from tlt_core.networks import get_network

    return get_network(network).dataset_sources(Path(dataset_dir), validation_fold=validation_fold)


def _source_text(source) -> str:
    """A data source as one string for the published evaluation record."""
    if isinstance(source, dict):
        return str(source.get("tfrecords_path") or source.get("image_directory_path") or source)
    return str(source)


def parse_spec(spec_text: str, network: str = "ssd"):
    """The component's spec text parsed (once) by its network: ``(network, spec)``."""
    from tlt_core.networks import get_network

    net = get_network(network)
    return net, net.parse_spec(spec_text, path="experiment_spec")


def experiment_for_artifacts(
    spec_text: str,
    dataset_dir: str,
    validation_fold: int,
    overrides: dict[str, Any] | None = None,
    *,
    network: str = "ssd",
):
    """The spec (parsed once) with its data sources pointing at the data step's artifact;
    stages take the object as it is."""
    _, experiment = parse_spec(spec_text, network)
    train, val = dataset_sources(dataset_dir, validation_fold, network)
    experiment = experiment.replace_data_sources(train=train, val=val)
    if overrides:
        experiment = experiment.with_overrides(overrides)
    return experiment


# --- training and evaluation ------------------------------------------------------------


@dataclass
class TrainOutcome:
    metrics: dict[str, float]
    model_metadata: dict[str, Any] = field(default_factory=dict)


def run_train(
    dataset_dir: str,
    spec_text: str,
    model_out: str,
    *,
    validation_fold: int = 0,
    use_amp: bool = False,
    gpus: int = 1,
    pruned_model_path: str | None = None,
    network: str = "ssd",
) -> TrainOutcome:
    from tlt_core.stages.train import train

    work = _workdir()
    from tlt_core.networks import get_network

    overrides = (
        get_network(network).pruned_start_overrides(str(_named(pruned_model_path, ".tlt")))
        if pruned_model_path
        else None
    )
    spec = experiment_for_artifacts(
        spec_text, dataset_dir, validation_fold, overrides, network=network
    )
    result = train(spec, work / "results", model_key(), gpus=gpus, use_amp=use_amp, network=network)
    if result.final_model_path is None:
        raise PipelineError("training wrote no model")
    Path(model_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.final_model_path, model_out)
    last = result.history[-1] if result.history else {}
    metrics = {"epochs": float(result.epochs_completed)}
    if result.final_map is not None:
        metrics[result.metric] = float(result.final_map)
    if "loss" in last:
        metrics["loss"] = float(last["loss"])
    return TrainOutcome(
        metrics, {"epochs": result.epochs_completed, "pruned": bool(pruned_model_path)}
    )


def retrain_spec_text(experiment_spec: str, retrain_spec: str, network: str = "ssd") -> str:
    """The retrain spec: the one given, else the training spec with NO_REG (as 000
    recommends for retraining a pruned model)."""
    if retrain_spec.strip():
        return retrain_spec
    net, experiment = parse_spec(experiment_spec, network)
    log.info("retrain_spec not given: retraining with the training spec and no regularizer")
    return experiment.with_overrides(net.no_regularizer_overrides()).to_text(absolute_paths=True)


def evaluation_report_html(result, title: str, threshold: float) -> str:
    """The evaluation page of an ``EvalResult`` (``tlt_core.reports.evaluation_html``): a
    detector's AP result adds the counts per class; frames are there when drawn."""
    from tlt_core.evaluate.frames import MAX_DRAWN
    from tlt_core.reports import ClassRow, evaluation_html

    ap = result.ap_result
    counted = all(
        hasattr(ap, name) for name in ("num_ground_truth", "num_detections", "num_true_positives")
    )
    classes = [
        ClassRow(
            name,
            float(value),
            *(
                (
                    int(ap.num_ground_truth[name]),
                    int(ap.num_detections[name]),
                    int(ap.num_true_positives[name]),
                    int(ap.num_false_positives[name]),
                )
                if counted and name in ap.num_ground_truth
                else ()
            ),
        )
        for name, value in result.per_class_ap.items()
    ]
    curves = [
        (Path(path).stem.removeprefix("pr_curve_"), Path(path).read_bytes())
        for path in result.report_paths
        if Path(path).suffix.lower() == ".png"
    ]
    return evaluation_html(
        title,
        mean_ap=float(result.mAP),
        mode=result.mode,
        iou_threshold=float(result.iou_threshold),
        num_images=int(result.num_images),
        classes=classes,
        pr_curves=curves,
        tiles=result.frames,
        threshold=threshold,
        max_drawn=MAX_DRAWN,
        metric=result.metric,
    )


def write_report(path: str | Path, text: str) -> Path:
    """A report artifact's file, written atomically."""
    from tlt_core.io_utils import write_text_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)


def run_evaluate(
    model_path: str,
    dataset_dir: str,
    spec_text: str,
    report_path: str,
    *,
    validation_fold: int = 0,
    dataset_uri: str | None = None,
    frames: int = 12,
    frame_threshold: float = 0.3,
    title: str = "Evaluation",
    network: str = "ssd",
) -> dict[str, Any]:
    """Evaluate; the metrics carry the network's primary metric under its name (SSD:
    ``mAP``, with ``AP_<class>``) and under ``primary_metric`` (what the gate reads), and
    under ``evaluation`` what they were measured on: the spec as evaluated (data sources
    pointing at the data evaluated) and the data's identity (URI, validation fold, images,
    SHA-256 of the label set). Writes the HTML report (table, PR curves, ``frames`` drawn
    validation frames for a detector)."""
    from tlt_core.stages.evaluate import evaluate

    work = _workdir()
    spec = experiment_for_artifacts(spec_text, dataset_dir, validation_fold, network=network)
    result = evaluate(
        _named(model_path, ".tlt"),
        spec,
        model_key(),
        output_dir=work / "evaluation",
        network=network,
        frames=frames,
        frame_threshold=frame_threshold,
    )
    write_report(report_path, evaluation_report_html(result, title, frame_threshold))
    prefix = "AP" if result.metric == "mAP" else result.metric
    metrics: dict[str, Any] = {
        result.metric: float(result.mAP),
        "primary_metric": float(result.mAP),
    }
    metrics.update({f"{prefix}_{name}": float(v) for name, v in result.per_class_ap.items()})
    metrics[EVALUATION_KEY] = {
        "spec": spec.to_text(absolute_paths=True),
        "data": {
            "dataset_uri": dataset_uri or str(dataset_dir),
            "validation_fold": validation_fold,
            "validation_sources": [
                _source_text(s) for s in dataset_sources(dataset_dir, validation_fold, network)[1]
            ],
            "num_images": result.num_images,
            "label_set_sha256": result.label_set_sha256,
        },
        "mode": result.mode,
        "iou_threshold": result.iou_threshold,
        "metric": result.metric,
    }
    return metrics


def record_stage(artifact, stage: str, start: float) -> None:
    """Note on a task's main output artifact which stage made it and its wall time: the
    run summary reads them from its inputs (KFP passes artifact metadata downstream)."""
    import time

    artifact.metadata["stage"] = stage
    artifact.metadata["wall_seconds"] = round(time.time() - start, 1)


# Key of the metrics dict (and of a Metrics artifact's metadata) holding what an evaluation
# measured: the spec as used and the data's identity.
EVALUATION_KEY = "evaluation"


def log_metrics(metrics_artifact, values: dict) -> None:
    """Scalars go to a KFP ``Metrics`` artifact: shown in the UI and in run comparison.
    What an evaluation measured (``evaluation``) rides along in the artifact's metadata."""
    for name, value in values.items():
        if isinstance(value, (int, float)):
            metrics_artifact.log_metric(name, float(value))
    if isinstance(values.get(EVALUATION_KEY), dict):
        metrics_artifact.metadata[EVALUATION_KEY] = values[EVALUATION_KEY]


def gate_verdict(
    unpruned: float,
    pruned: float,
    minimum: float,
    max_drop: float,
    *,
    network: str = "ssd",
) -> str:
    """'pass', or why not: the values are the network's primary metric (its
    ``MetricSpec``: mAP for the detectors, top1_accuracy for classification). ``minimum``
    is a floor (a ceiling for a metric where lower is better) and ``max_drop`` the largest
    loss pruning may cause."""
    metric = primary_metric(network)
    sign = 1.0 if metric.higher_is_better else -1.0
    if sign * (pruned - minimum) < 0:
        bound = "minimum" if metric.higher_is_better else "maximum"
        relation = "<" if metric.higher_is_better else ">"
        return f"fail: pruned {metric.name} {pruned:.4f} {relation} {bound} {minimum:.4f}"
    loss = sign * (unpruned - pruned)
    if loss > max_drop:
        return f"fail: pruning lost {loss:.4f} {metric.name} (> {max_drop:.4f} allowed)"
    return "pass"


def gate_report_markdown(
    unpruned: float,
    pruned: float,
    minimum: float,
    max_drop: float,
    *,
    network: str = "ssd",
) -> str:
    from tlt_core.reports import gate_markdown

    metric = primary_metric(network)
    return gate_markdown(
        unpruned_map=unpruned,
        pruned_map=pruned,
        min_map=minimum,
        max_map_drop=max_drop,
        verdict=gate_verdict(unpruned, pruned, minimum, max_drop, network=network),
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
    )


def primary_metric(network: str = "ssd"):
    """The network's ``MetricSpec`` (name, description, direction)."""
    from tlt_core.networks import get_network

    return get_network(network).primary_metric


def primary_metric_name(network: str = "ssd") -> str:
    return primary_metric(network).name


def run_prune(
    model_path: str,
    output_path: str,
    *,
    threshold: float,
    normalizer: str,
    equalization_criterion: str,
    granularity: int,
    min_filters: int,
    report_path: str | None = None,
    network: str = "ssd",
):
    """Prune; with ``report_path``, also write the pruning report (Markdown)."""
    from tlt_core.stages.prune import prune

    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    source = _named(model_path, ".tlt")
    result = prune(
        source,
        output_path,
        model_key(),
        normalizer=normalizer,
        equalization=equalization_criterion,
        granularity=granularity,
        threshold=threshold,
        min_filters=min_filters,
        network=network,
    )
    if report_path:
        write_report(report_path, prune_report_markdown(source, output_path, threshold))
    return result


def prune_report_markdown(model_path, pruned_path, threshold: float) -> str:
    """Parameters per layer group and Keras CPU latency of both models (batch 1)."""
    from tlt_core.networks import load_model
    from tlt_core.prune.profile import cpu_latency_ms, params_by_layer_group
    from tlt_core.reports import Latency, LayerGroupParams, prune_markdown

    # The network each file names registers its Keras classes first.
    model, _, _ = load_model(model_path, model_key())
    pruned, _, _ = load_model(_named(str(pruned_path), ".tlt"), model_key())
    before, after = params_by_layer_group(model), params_by_layer_group(pruned)
    groups = [LayerGroupParams(name, count, after.get(name, 0)) for name, count in before.items()]
    input_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    runs = 10
    latency_before, latency_after = cpu_latency_ms([model, pruned], input_shape, runs=runs)
    latency = Latency(
        latency_before,
        latency_after,
        f"Keras on this task's CPU, batch 1, {input_shape[1]}x{input_shape[0]}, median of "
        f"{runs} interleaved runs (shared nodes: a rough figure)",
    )
    return prune_markdown(groups, threshold=threshold, latency=latency)


# --- export, calibration, engines --------------------------------------------------------


def run_export(
    model_path: str,
    spec_text: str,
    onnx_out: str,
    deepstream_dir: str,
    *,
    max_batch_size: int = 16,
    network: str = "ssd",
) -> dict:
    from tlt_core.stages.export import export

    work = _workdir()
    _, spec = parse_spec(spec_text, network)
    result = export(
        _named(model_path, ".tlt"),
        model_key(),
        spec,
        work / "model.onnx",
        data_type="fp32",
        max_batch_size=max_batch_size,
        gen_ds_config=True,
        network=network,
    )
    Path(onnx_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.onnx_path or result.output_path, onnx_out)
    ds = Path(deepstream_dir)
    ds.mkdir(parents=True, exist_ok=True)
    for path in result.ds_files.values():
        shutil.copyfile(path, ds / Path(path).name)
    return {k: v for k, v in result.metadata.items() if isinstance(v, (str, int, float))}


def run_calibrate(
    onnx_path: str,
    spec_text: str,
    images_uri: str,
    cache_out: str,
    *,
    batches: int,
    batch_size: int,
    network: str = "ssd",
    qdq_out: str | None = None,
    model_path: str | None = None,
) -> int:
    """The calibration cache at ``cache_out`` and, with ``qdq_out``, the Q/DQ ONNX there
    (both from the same images); returns the cache's tensor count. With ``model_path``,
    the ``.tlt`` the ONNX was exported from: a QAT model's learned ranges give both forms
    (000's peeling; no images are read), a float model is calibrated on the images."""
    from tlt_core.stages.calibrate import calibrate
    from tlt_core.stages.export import quantize_from_qat
    from tlt_core.storage import PathResolver

    # The Q/DQ model is written under a .onnx name of its own and then moved onto the
    # artifact path: a link to the artifact would be replaced by the atomic write's rename,
    # leaving the artifact unwritten.
    qdq_staged = _workdir() / "model.qdq.onnx" if qdq_out else None
    if model_path:
        count = quantize_from_qat(
            _named(onnx_path, ".onnx"),
            _named(model_path, ".tlt"),
            model_key(),
            cache_out,
            qdq_path=qdq_staged,
        )
        if count is not None:
            log.info("INT8 scales peeled from the QAT model: %d tensors", count)
            _move_staged(qdq_staged, qdq_out)
            return count
    if not images_uri:
        raise PipelineError("calibration_images_uri is empty: name a folder of images")
    _, spec = parse_spec(spec_text, network)
    with PathResolver() as paths:
        images = paths.input(images_uri)
        result = calibrate(
            _named(onnx_path, ".onnx"),
            spec,
            images,
            cache_out,
            batches=batches,
            batch_size=batch_size,
            network=network,
            qdq_path=qdq_staged,
        )
    _move_staged(qdq_staged, qdq_out)
    return int(result.tensor_count)


def _move_staged(staged: Path | None, artifact_path: str | None) -> None:
    if staged is not None and artifact_path:
        Path(artifact_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, artifact_path)


def run_engine_builds(
    onnx_path: str,
    cache_path: str,
    engines_dir: str,
    *,
    target: str,
    precisions: list[str],
    max_batch_size: int,
    publish_uri: str,
    model_version: str,
    require_tensorrt: bool,
    qdq_path: str | None = None,
    int8_mode: str = "cache",
) -> dict:
    """Build one engine per precision; stage them (and the report) in the version.

    ``int8_mode`` (the target's): ``cache``: INT8 from the float ONNX and the calibration
    cache (TensorRT 8.x); ``qdq``: INT8 from the Q/DQ ONNX at ``qdq_path``, no cache
    (TensorRT 10's explicit quantization)."""
    import time

    from tlt_core.export.tensorrt import EngineOptions
    from tlt_core.publish import VersionLocation
    from tlt_core.stages.convert import build_engine

    out = Path(engines_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict] = {}
    for precision in precisions:
        explicit = precision == "int8" and int8_mode == "qdq"
        if explicit and not qdq_path:
            raise PipelineError(f"target {target}: int8_mode qdq needs the Q/DQ ONNX model")
        options = EngineOptions(
            data_type=precision,
            max_batch_size=max_batch_size,
            cal_cache=cache_path if precision == "int8" and not explicit else None,
            int8_mode="qdq" if explicit else "cache",
        )
        source = qdq_path if explicit else onnx_path
        start = time.time()
        try:
            result = build_engine(
                _named(source, ".onnx"), out / f"{precision}.engine", key=None, options=options
            )
        except EngineBuildError as error:
            if require_tensorrt:
                raise
            # Not a warning: without require_tensorrt a skipped build is what was asked
            # for, and the task's report and the run summary name each skipped engine.
            log.info("target %s, %s: engine NOT built: %s", target, precision, error)
            report[precision] = {
                "status": "skipped",
                "reason": str(error),
                "seconds": round(time.time() - start, 1),
            }
            continue
        report[precision] = {
            "status": "built",
            **({"int8_mode": int8_mode} if precision == "int8" else {}),
            "engine": Path(result.engine_path).name,
            "info": Path(result.info_path).name,
            "engine_bytes": Path(result.engine_path).stat().st_size,
            "seconds": round(time.time() - start, 1),
        }
        report[precision].update(engine_latency(result.engine_path))
    (out / "build_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    VersionLocation(publish_uri, model_version).put(out, f"engines/{target}")
    return report


def engine_latency(engine_path: str | Path, runs: int = 20) -> dict:
    """``{"latency_ms": median}`` of one zero image through the engine on this GPU (host
    copies included), or ``{"latency_note": why not}``: a failed measurement never fails a
    build that succeeded."""
    import statistics
    import time

    import numpy as np

    try:
        from tlt_core.export.runners import TensorRTRunner

        runner = TensorRTRunner.from_file(engine_path)
        batch = np.zeros((1, *runner.input_shape), np.float32)
        runner.detect(batch)  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.detect(batch)
            times.append((time.perf_counter() - start) * 1000.0)
    except Exception as error:  # best effort: reported in the table
        return {"latency_note": str(error).splitlines()[0] if str(error) else type(error).__name__}
    return {"latency_ms": round(statistics.median(times), 3)}


def engine_report_markdown(target: str, report: dict) -> str:
    from tlt_core.reports import engine_builds_markdown

    return engine_builds_markdown(target, report)


# --- publishing ----------------------------------------------------------------------------


def run_publish(
    publish_uri: str,
    model_version: str,
    *,
    files: dict[str, str],
    metrics: dict,
    experiment_spec: str,
    git_commit: str,
) -> str:
    """Upload the version's files and its manifest (last); returns the manifest's URI."""
    import hashlib

    from tlt_core.publish import MANIFEST, VersionLocation

    version = VersionLocation(publish_uri, model_version)
    work = _workdir()
    for relative, local in files.items():
        version.put(local, relative)
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    # The published spec is the one the metrics were measured with (data sources as the
    # evaluation used them), so that evaluating the published model with it reproduces them.
    evaluation = metrics.get(EVALUATION_KEY) or {}
    spec_text = evaluation.get("spec") or experiment_spec
    data = evaluation.get("data")
    # The primary metric's name (versions published before it was recorded are SSD's: mAP).
    metric = evaluation.get("metric") or "mAP"
    published_metrics: dict[str, Any] = {**scalars, "metric": metric}
    if data:
        published_metrics[EVALUATION_KEY] = {
            "data": data,
            **{k: evaluation[k] for k in ("mode", "iou_threshold", "metric") if k in evaluation},
        }
    (work / "metrics.json").write_text(
        json.dumps(published_metrics, indent=2, sort_keys=True) + "\n"
    )
    (work / "experiment_spec.txt").write_text(spec_text)
    version.put(work / "metrics.json", "metrics.json")
    version.put(work / "experiment_spec.txt", "experiment_spec.txt")
    info: dict[str, Any] = {
        "git_commit": git_commit,
        "metric": metric,
        "metrics": scalars,
        "experiment_spec_sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
    }
    if data:
        info["evaluation_data"] = data
    version.write_manifest(info)
    log.info("published %s", version.uri)
    return f"{version.uri}/{MANIFEST}"


def run_fetch_published(
    publish_uri: str, model_version: str, onnx_out: str, deepstream_dir: str
) -> tuple[str, dict]:
    from tlt_core.publish import VersionLocation

    version = VersionLocation(publish_uri, model_version)
    manifest = version.read_manifest()
    version.fetch("model.onnx", onnx_out)
    version.fetch("deepstream", deepstream_dir)
    work = _workdir()
    spec = version.fetch("experiment_spec.txt", work / "experiment_spec.txt").read_text()
    metrics: dict[str, Any] = dict(manifest.get("metrics", {}))
    if "metrics.json" in manifest.get("artifacts", {}):
        published = json.loads(version.fetch("metrics.json", work / "metrics.json").read_text())
        if isinstance(published.get(EVALUATION_KEY), dict):
            # The spec fetched above is the one evaluated: keep the pair together.
            metrics[EVALUATION_KEY] = {**published[EVALUATION_KEY], "spec": spec}
    return spec, metrics


def summary_report_markdown(
    pipeline: str, publish_uri: str, model_version: str, stage_artifacts: list[tuple[str, Any]]
) -> str:
    """The run summary: the published version (its manifest), mAP, stage wall times and the
    engine build reports staged in the version. ``stage_artifacts``: (default stage name,
    artifact or None) in DAG order; each artifact's ``record_stage`` metadata gives the time."""
    from tlt_core.publish import VersionLocation
    from tlt_core.reports import StageTime, run_summary_markdown

    version = VersionLocation(publish_uri, model_version)
    manifest = version.read_manifest()
    engines: dict[str, dict] = {}
    work = _workdir()
    for relative in sorted(manifest.get("artifacts", {})):
        parts = relative.split("/")
        if len(parts) == 3 and parts[0] == "engines" and parts[2] == "build_report.json":
            local = version.fetch(relative, work / relative)
            engines[parts[1]] = json.loads(Path(local).read_text())
    stages = []
    for default, artifact in stage_artifacts:
        if artifact is None:
            continue
        seconds = (artifact.metadata or {}).get("wall_seconds")
        stages.append(StageTime(default, float(seconds) if seconds is not None else None))
    for target, builds in engines.items():
        seconds = [e["seconds"] for e in builds.values() if "seconds" in e]
        stages.append(StageTime(f"build-engines-{target}", sum(seconds) if seconds else None))
    metric = manifest.get("metric") or "mAP"
    value = manifest.get("metrics", {}).get(metric)
    return run_summary_markdown(
        pipeline=pipeline,
        model_version=model_version,
        version_uri=version.uri,
        metric=metric,
        value=float(value) if value is not None else None,
        stages=stages,
        engines=engines,
    )
