"""DetectNet_v2 (TLT v0.3 guide, 002) behind the `Network` interface.

Everything DetectNet_v2-only is reached from here: the experiment spec (`spec`), the model
(`model`), the rasterised targets (`rasterizer`) and the cost (`cost`), the DBSCAN
post-processing (`clustering`), AP per difficulty bucket (`metrics`), the ONNX outputs in
DeepStream's layout and the nvinfer config for DeepStream's built-in DetectNet_v2 parser
(`deepstream`). TensorFlow, Keras and ONNX are imported inside the hooks.

Raw outputs (what every runner returns, and the tensors of the exported graph) are in
DeepStream's NCHW layout: ``output_cov/Sigmoid`` [B, C, H/16, W/16] and
``output_bbox/BiasAdd`` [B, 4C, H/16, W/16].
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tlt_core.networks.base import MetricResult, MetricSpec, ModelInfo
from tlt_core.networks.detectnet_v2.outputs import (
    BBOX_NODE,
    BBOX_OUTPUT,
    COV_NODE,
    COV_OUTPUT,
    HEAD_LAYERS,
)
from tlt_core.networks.detector import KittiDetector

log = logging.getLogger(__name__)


class DetectNetV2Network(KittiDetector):
    name: ClassVar[str] = "detectnet_v2"
    title: ClassVar[str] = "DetectNet_v2 object detection (TLT v0.3): train, evaluate, ..."
    primary_metric: ClassVar[MetricSpec] = MetricSpec(
        "mAP",
        "mean average precision over the target classes, all objects (per-class IoU); "
        "also per difficulty bucket",
    )
    raw_output_names: ClassVar[tuple[str, ...]] = (COV_NODE, BBOX_NODE)
    export_variants: ClassVar[tuple[str, ...]] = ("none",)

    # --- spec ------------------------------------------------------------------------------
    def load_spec(self, path):
        from tlt_core.networks.detectnet_v2.spec import load_experiment

        return load_experiment(path)

    def parse_spec(self, text, *, path="<string>", base_dir=None):
        from tlt_core.networks.detectnet_v2.spec import parse_experiment

        return parse_experiment(text, path=path, base_dir=base_dir)

    def sample_spec(self, data_dir, *, fast=False, epochs=None) -> str:
        from tlt_core.networks.detectnet_v2.sample_spec import FAST_OVERRIDES, sample_spec

        overrides = dict(FAST_OVERRIDES) if fast else {}
        if epochs is not None:
            overrides["num_epochs"] = epochs
        return sample_spec(data_dir, **overrides)

    def _more_training_settings(self, spec) -> dict:
        return {"first_validation_epoch": int(spec.eval.first_validation_epoch)}

    def pruned_start_overrides(self, pruned_model_path):
        """The pruned model replaces the spec's other start (002's spec takes one of
        pretrained_model_file, resume_model_path and pruned_model_path)."""
        return {
            **super().pruned_start_overrides(pruned_model_path),
            "model_config.pretrained_model_file": None,
            "training_config.resume_model_path": None,
        }

    # --- model -----------------------------------------------------------------------------
    def build_model(self, spec, *, kernel_regularizer=None):
        from tlt_core.networks.detectnet_v2.model import build_detectnet_v2

        return build_detectnet_v2(spec, kernel_regularizer=kernel_regularizer)

    def kernel_regularizer(self, spec):
        from tlt_core.networks.detectnet_v2.model import make_regularizer

        return make_regularizer(spec.training.regularizer, spec.training.regularizer_weight)

    def register_keras_classes(self) -> None:
        """Nothing to register: the model is built from stock Keras layers."""

    def model_classes(self, model) -> int:
        output = model.output
        cov = output[COV_OUTPUT] if isinstance(output, dict) else model.outputs[0]
        return int(cov.shape[-1])

    def describe_model(self, model) -> dict[str, Any]:
        output = model.output
        cov = output[COV_OUTPUT] if isinstance(output, dict) else model.outputs[0]
        return {"grid_shape": [int(cov.shape[1]), int(cov.shape[2])]}

    def model_metadata(self, spec, model) -> dict[str, Any]:
        return {
            "arch": spec.backbone.arch,
            "nlayers": spec.backbone.nlayers,
            "bbox_scale": spec.bbox_scale,
            "bbox_offset": spec.bbox_offset,
            "image_mean_bgr": list(spec.image_mean_bgr),
            **self.describe_model(model),
        }

    def checkpoint_stem(self, spec) -> str:
        return f"detectnet_v2_{spec.backbone.arch}{spec.backbone.nlayers or ''}"

    def prune_keep_layers(self, model) -> list[str]:
        return [layer.name for layer in model.layers if layer.name in HEAD_LAYERS]

    def head_layers_description(self) -> str:
        return "coverage and box heads (output_cov, output_bbox)"

    # --- data ------------------------------------------------------------------------------
    def _sources(self, spec, training: bool, sources):
        if sources is not None or spec.validation_fold is None:
            return sources
        from tlt_core.networks.detectnet_v2.spec import fold_sources

        return list(fold_sources(spec, training=training))

    def detection_transform(self, spec):
        from tlt_core.networks.detectnet_v2.augment import DetectNetTransform

        return DetectNetTransform.from_spec(spec)

    def has_validation_data(self, spec) -> bool:
        return bool(spec.validation_data_sources) or spec.validation_fold is not None

    def training_sources(self, spec):
        if spec.validation_fold is not None:
            from tlt_core.networks.detectnet_v2.spec import fold_sources

            return list(fold_sources(spec, training=True))
        return list(spec.data_sources)

    def preprocess(self, spec, rgb):
        from tlt_core.data.render_cv import render_window
        from tlt_core.networks.detectnet_v2.augment import NEUTRAL_JITTER

        rgb = np.asarray(rgb)
        mean = np.asarray(spec.image_mean_bgr, np.float32)
        return render_window(
            rgb,
            np.asarray(rgb.shape[:2], np.float32),
            np.zeros(2, np.float32),
            False,
            np.asarray(spec.input_shape[:2], np.int32),
            mean[::-1],
            np.asarray(NEUTRAL_JITTER, np.float32),
            mean,
        )

    # --- training --------------------------------------------------------------------------
    def training_model(self, model):
        import keras

        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
        outputs = model(inputs)
        output = keras.layers.Concatenate(axis=-1, dtype="float32", name="detectnet_v2_train")(
            [outputs[COV_OUTPUT], outputs[BBOX_OUTPUT]]
        )
        return keras.Model(inputs, output, name="detectnet_v2_train")

    def training_targets(self, spec, model):
        from tlt_core.networks.detectnet_v2.rasterizer import RasterSettings, rasterize

        settings = RasterSettings.from_experiment(spec)

        def to_targets(batch):
            return batch["image"], rasterize(batch["boxes"], batch["classes"], settings)

        return to_targets

    def loss(self, spec):
        from tlt_core.data.pipeline import steps_per_epoch
        from tlt_core.networks.detectnet_v2.cost import DetectNetCost

        # The objective-weight schedule runs over the whole training (one replica's view).
        steps = steps_per_epoch(
            self.dataset_size(spec, training=True), int(spec.training.batch_size_per_gpu)
        )
        return DetectNetCost(spec.cost, spec.num_classes, steps * int(spec.training.num_epochs))

    def optimizer(self, spec, *, total_steps, replicas):
        import keras

        from tlt_core.models.schedule import SoftStartAnnealingSchedule

        training = spec.training
        schedule = SoftStartAnnealingSchedule(
            float(training.min_learning_rate),
            float(training.max_learning_rate),
            float(training.soft_start),
            float(training.annealing),
            total_steps=total_steps,
            scale=replicas,
        )
        adam = spec.proto.training_config.optimizer.adam
        has_adam = spec.proto.training_config.optimizer.HasField("adam")
        return keras.optimizers.Adam(
            learning_rate=schedule,
            beta_1=float(adam.beta1) if has_adam else 0.9,
            beta_2=float(adam.beta2) if has_adam else 0.999,
            epsilon=float(adam.epsilon) if has_adam and adam.epsilon > 0 else 1e-8,
        )

    # --- prediction and evaluation ---------------------------------------------------------
    def raw_outputs(self, outputs) -> tuple[np.ndarray, ...]:
        if isinstance(outputs, dict):
            cov, bbox = outputs[COV_OUTPUT], outputs[BBOX_OUTPUT]
        else:
            cov, bbox = outputs
        return (
            np.ascontiguousarray(np.asarray(cov, np.float32).transpose(0, 3, 1, 2)),
            np.ascontiguousarray(np.asarray(bbox, np.float32).transpose(0, 3, 1, 2)),
        )

    def postprocessor(self, spec, info: ModelInfo, *, threshold=None, options=None):
        """``options["cluster_params_file"]`` (inference ``-cp``): 002's cluster-params
        file replaces the spec's clustering settings, its ``confidence_th`` the threshold."""
        import dataclasses

        from tlt_core.networks.detectnet_v2.clustering import cluster_image

        params = _cluster_params(spec, options)
        if params is not None:
            settings = list(params.settings)
            if threshold is not None:
                log.info("confidence thresholds from the cluster-params file (confidence_th)")
        else:
            settings = list(spec.clustering)
            if threshold is not None:
                settings = [
                    dataclasses.replace(s, confidence_threshold=threshold) for s in settings
                ]
        height, width = spec.input_shape[0], spec.input_shape[1]
        scale, offset = spec.bbox_scale, spec.bbox_offset

        def postprocess(raw, image_sizes):
            cov, bbox = raw
            out = []
            for i, (h, w) in enumerate(image_sizes):
                det = cluster_image(
                    np.asarray(cov[i]).transpose(1, 2, 0),
                    np.asarray(bbox[i]).transpose(1, 2, 0),
                    settings,
                    scale=scale,
                    offset=offset,
                )
                out.append(_scaled(_clipped(det, height, width), h / height, w / width))
            return out

        return postprocess

    def ground_truth(self, batch: Mapping[str, Any]) -> list[Any]:
        from tlt_core.networks.detectnet_v2.metrics import FrameTruth

        height = float(batch["image"].shape[1])
        truths = []
        for i in range(len(batch["classes"])):
            classes = np.asarray(batch["classes"][i]).reshape(-1)
            keep = classes > 0
            truths.append(
                FrameTruth(
                    boxes=np.asarray(batch["boxes"][i], np.float64).reshape(-1, 4)[keep],
                    classes=classes[keep].astype(np.int64) - 1,
                    occlusion=np.asarray(batch["occlusion"][i]).reshape(-1)[keep],
                    truncation=np.asarray(batch["truncation"][i]).reshape(-1)[keep],
                    height_scale=float(batch["orig_size"][i][0]) / height,
                )
            )
        return truths

    def metric(self, spec, predictions, truths, *, mode=None) -> MetricResult:
        from tlt_core.networks.detectnet_v2.metrics import evaluate_detections, format_table

        metrics = evaluate_detections(
            list(predictions),
            list(truths),
            spec.class_names,
            spec.eval.iou_thresholds,
            spec.eval.buckets,
            mode=mode or spec.eval.average_precision_mode,
        )
        return MetricResult(
            name="mAP",
            value=float(metrics.mAP),
            per_class={k: float(v) for k, v in metrics.combined.per_class_ap.items()},
            num_images=int(metrics.combined.num_images),
            table=format_table(metrics),
            details={
                "mode": metrics.combined.mode,
                "iou_thresholds": dict(
                    zip(spec.class_names, map(float, spec.eval.iou_thresholds), strict=True)
                ),
                "buckets": {k: float(v.mAP) for k, v in sorted(metrics.buckets.items())},
            },
            raw=metrics,
        )

    def metric_report(self, spec, result: MetricResult, output_dir) -> list[Path]:
        import json

        from tlt_core.evaluate import report
        from tlt_core.io_utils import write_text_atomic

        out = Path(output_dir)
        metrics = result.raw
        summary = {"mAP": result.value, "num_images": result.num_images, **metrics.to_dict()}
        summary.update(result.details)
        written = write_text_atomic(out / "results.json", json.dumps(summary, indent=2))
        return [written, *report.plot_pr_curves(metrics.combined, out)]

    def evaluation_cost(self, spec):
        from tlt_core.networks.detectnet_v2.cost import evaluation_cost
        from tlt_core.networks.detectnet_v2.rasterizer import RasterSettings, rasterize

        settings = RasterSettings.from_experiment(spec)
        cost = evaluation_cost(spec.cost, spec.num_classes)

        def batch_cost(raw, batch):
            cov, bbox = (np.asarray(r, np.float32).transpose(0, 2, 3, 1) for r in raw)
            y_true = rasterize(batch["boxes"], batch["classes"], settings).numpy()
            return cost(y_true, np.concatenate([cov, bbox], axis=-1))

        return batch_cost

    def matching_iou(self, spec) -> tuple[float, ...]:
        return tuple(float(t) for t in spec.eval.iou_thresholds)

    # --- inference -------------------------------------------------------------------------
    def add_task_options(self, task, parser) -> None:
        if task != "inference":
            return
        parser.add_argument(
            "-cp",
            "--cluster_params_file",
            default=None,
            help="002's cluster-params JSON (per-class DBSCAN settings, confidence_th, "
            "output_map, postproc_classes, color); default: the spec's postprocessing_config",
        )
        parser.add_argument(
            "-lw", "--line_width", type=int, default=None, help="overlay line width"
        )
        parser.add_argument(
            "--output_cov",
            default=COV_NODE,
            help=f"name of the coverage output (this model's: {COV_NODE})",
        )
        parser.add_argument(
            "--output_bbox",
            default=BBOX_NODE,
            help=f"name of the box output (this model's: {BBOX_NODE})",
        )

    def task_options(self, task, args) -> dict[str, Any]:
        from tlt_core.errors import UsageError

        if task != "inference":
            return {}
        for given, ours, flag in (
            (args.output_cov, COV_NODE, "--output_cov"),
            (args.output_bbox, BBOX_NODE, "--output_bbox"),
        ):
            if given not in (ours, ours.split("/")[0]):
                raise UsageError(f"{flag} {given!r}: DetectNet_v2 models here output {ours!r}")
        options: dict[str, Any] = {}
        if args.cluster_params_file:
            options["cluster_params_file"] = args.cluster_params_file
        if args.line_width:
            options["line_width"] = int(args.line_width)
        return options

    def inference_writer(self, spec, output_dir, *, label_dir=None, options=None):
        from tlt_core.networks.detectnet_v2.inference import DetectNetWriter

        return DetectNetWriter(
            list(spec.class_names),
            Path(output_dir),
            label_dir,
            cluster_params=_cluster_params(spec, options),
            line_width=(options or {}).get("line_width"),
            draw=bool((options or {}).get("box_overlay", True)),
        )

    # --- export ----------------------------------------------------------------------------
    def onnx_postprocess(self, spec, network_onnx, model, *, variant):
        from tlt_core.networks.detectnet_v2.deepstream import nchw_outputs

        return nchw_outputs(network_onnx)

    def export_metadata(self, spec, model, *, variant) -> dict[str, Any]:
        return {
            "bbox_scale": spec.bbox_scale,
            "bbox_offset": spec.bbox_offset,
            "image_mean_bgr": list(spec.image_mean_bgr),
        }

    def deepstream_config(self, spec, **options) -> dict[str, str]:
        # The options are the interface's (Network.deepstream_config), passed on as given.
        from tlt_core.networks.detectnet_v2.deepstream import deepstream_files

        return deepstream_files(spec, **options)


def _cluster_params(spec, options):
    path = (options or {}).get("cluster_params_file")
    if not path:
        return None
    from tlt_core.networks.detectnet_v2.inference import load_cluster_params

    return load_cluster_params(path, spec.class_names, spec.clustering)


def _clipped(det, height: int, width: int):
    """Boxes clipped to the image; boxes clipped to nothing dropped."""
    boxes = det.boxes.copy()
    np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return type(det)(boxes[keep], det.classes[keep], det.scores[keep])


def _scaled(det, sy: float, sx: float):
    """Detections from network-input pixels to an image ``sy``/``sx`` times as large."""
    if sx == 1.0 and sy == 1.0:
        return det
    factor = np.array([sx, sy, sx, sy])
    return type(det)(det.boxes * factor, det.classes, det.scores)


NETWORK = DetectNetV2Network()
