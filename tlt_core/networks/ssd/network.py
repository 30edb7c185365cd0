"""SSD (TLT 3.0, 000) behind the `Network` interface.

Everything SSD-only is reached from here: the experiment spec, the model and its loss,
anchors and box coding, the augmentation chain, decode + NMS, the ONNX post-processing graph
and the DeepStream parser settings. TensorFlow, Keras and ONNX are imported inside the hooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tlt_core.networks.base import MetricResult, MetricSpec, ModelInfo
from tlt_core.networks.detector import KittiDetector

# Predictor heads ssd_conf_{i} / ssd_loc_{i}: their filter counts are n_boxes x (classes + 1)
# and n_boxes x 4, fixed by the anchors and the classes, so pruning keeps them whole.
if TYPE_CHECKING:
    import numpy as np

HEAD_PATTERN = re.compile(r"ssd_(conf|loc)_\d+")
MOMENTUM = 0.9  # TLT's SGD momentum for SSD
CONF, LOC = "conf", "loc"
SCORES_TENSOR = "pp_scores"  # softmax(conf) inside the exported graph


class SsdNetwork(KittiDetector):
    name: ClassVar[str] = "ssd"
    title: ClassVar[str] = "SSD object detection: train, evaluate, inference, prune, export"
    primary_metric: ClassVar[MetricSpec] = MetricSpec(
        "mAP", "mean average precision over the target classes (eval_config mode and IoU)"
    )
    # Runners return softmax(conf) and loc; in the exported graph they are named so.
    raw_output_names: ClassVar[tuple[str, ...]] = (SCORES_TENSOR, LOC)
    export_variants: ClassVar[tuple[str, ...]] = ("onnx", "efficient_nms_trt")
    # BatchedNMS's four tensors, or TLT 3.0's NMS / NMS_1 (see onnx_postprocess).
    output_layouts: ClassVar[tuple[str, ...]] = ("batched_nms", "tlt_nms")
    input_shape_field: ClassVar[str] = "augmentation_config"
    class_names_field: ClassVar[str] = "dataset_config.target_class_mapping"

    # --- spec ------------------------------------------------------------------------------
    def load_spec(self, path):
        from tlt_core.networks.ssd.spec import load_experiment

        return load_experiment(path)

    def parse_spec(self, text, *, path="<string>", base_dir=None):
        from tlt_core.networks.ssd.spec import parse_experiment

        return parse_experiment(text, path=path, base_dir=base_dir)

    def sample_spec(self, data_dir, *, fast=False, epochs=None) -> str:
        from tlt_core.networks.ssd.sample_spec import FAST_OVERRIDES, sample_experiment_spec

        overrides = dict(FAST_OVERRIDES) if fast else {}
        if epochs is not None:
            overrides["num_epochs"] = epochs
        return sample_experiment_spec(data_dir, **overrides)

    def _more_training_settings(self, spec) -> dict:
        return {"enable_qat": bool(spec.training.enable_qat)}

    def pruned_start_overrides(self, pruned_model_path):
        """The pruned model replaces the spec's other start: SSD's spec takes at most one of
        pretrain/resume/pruned_model_path, and a user's spec usually names pretrained weights."""
        return {
            **super().pruned_start_overrides(pruned_model_path),
            "training_config.pretrain_model_path": None,
            "training_config.resume_model_path": None,
        }

    # --- model -----------------------------------------------------------------------------
    def build_model(self, spec, *, kernel_regularizer=None):
        from tlt_core.networks.ssd.model import build_ssd

        return build_ssd(spec, spec.num_classes, kernel_regularizer=kernel_regularizer)

    def kernel_regularizer(self, spec):
        from tlt_core.networks.ssd.model import regularizer_from_config

        return regularizer_from_config(spec.proto.training_config.regularizer)

    def register_keras_classes(self) -> None:
        import tlt_core.networks.ssd.loss
        import tlt_core.networks.ssd.model  # noqa: F401

    def model_classes(self, model) -> int:
        conf, _ = split_outputs(model.output if isinstance(model.output, dict) else model.outputs)
        return int(conf.shape[-1]) - 1

    def describe_model(self, model) -> dict[str, Any]:
        return {"feature_map_sizes": [list(s) for s in feature_map_sizes(model)]}

    def model_metadata(self, spec, model) -> dict[str, Any]:
        config = spec.proto.ssd_config
        return {
            "arch": config.arch,
            "nlayers": int(config.nlayers) if config.HasField("nlayers") else None,
            "anchor_spec": spec.anchors.to_dict(),
            **self.describe_model(model),
            "image_mean_bgr": list(spec.image_mean_bgr),
        }

    def checkpoint_stem(self, spec) -> str:
        config = spec.proto.ssd_config
        nlayers = config.nlayers if config.HasField("nlayers") else ""
        return f"ssd_{config.arch}{nlayers}"

    def prune_keep_layers(self, model) -> list[str]:
        return [layer.name for layer in model.layers if HEAD_PATTERN.fullmatch(layer.name)]

    def head_layers_description(self) -> str:
        return "classification heads (ssd_conf_*)"

    # --- data ------------------------------------------------------------------------------
    def detection_transform(self, spec):
        from tlt_core.networks.ssd.augment import SsdTransform

        return SsdTransform.from_spec(spec)

    def parallel_calls(self, spec) -> int | None:
        return spec.training.n_workers or None

    def has_validation_data(self, spec) -> bool:
        return len(spec.validation_data_sources) > 0

    def preprocess(self, spec, rgb):
        import tensorflow as tf

        from tlt_core.networks.ssd.augment import model_channels, model_input, resize_example

        output_size = (spec.input_shape[0], spec.input_shape[1])
        pixels, _ = resize_example(
            tf.convert_to_tensor(rgb), tf.zeros((0, 4), tf.float32), output_size
        )
        inputs = model_input(pixels, spec.image_mean_bgr)
        return model_channels(inputs, int(spec.input_shape[2])).numpy()

    # --- training --------------------------------------------------------------------------
    def training_model(self, model):
        import keras

        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
        conf, loc = split_outputs(model(inputs))
        output = keras.layers.Concatenate(axis=-1, dtype="float32", name="ssd_train_output")(
            [conf, loc]
        )
        return keras.Model(inputs, output, name="ssd_train")

    def training_targets(self, spec, model):
        import tensorflow as tf

        from tlt_core.networks.ssd.box_coding import encode_batch

        anchors = self.anchors(spec, feature_map_sizes(model))
        height, width = spec.input_shape[0], spec.input_shape[1]
        variances = tuple(spec.anchors.variances)
        num_classes = spec.num_classes
        scale = tf.constant([width, height, width, height], tf.float32)

        def to_targets(batch):
            boxes = batch["boxes"] / scale
            cls, loc = encode_batch(boxes, batch["classes"], anchors, variances, num_classes)
            y_true = tf.concat([tf.cast(cls, tf.float32)[..., None], loc], axis=-1)
            return batch["image"], y_true

        return to_targets

    def loss(self, spec):
        from tlt_core.networks.ssd.loss import SsdLoss

        return SsdLoss()

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
        return keras.optimizers.SGD(learning_rate=schedule, momentum=MOMENTUM)

    # --- anchors: the one place they are generated -----------------------------------------
    def anchors(self, spec, feature_maps: Sequence[Sequence[int]]) -> np.ndarray:
        """``[A, 4]`` normalised (cx, cy, w, h) for the predictor maps of a model."""
        from tlt_core.networks.ssd.anchors import generate_anchors

        height, width = spec.input_shape[0], spec.input_shape[1]
        return generate_anchors(spec.anchors, feature_maps, (height, width))

    # --- prediction and evaluation ---------------------------------------------------------
    def raw_outputs(self, outputs) -> tuple[np.ndarray, ...]:
        import numpy as np

        conf, loc = split_outputs(outputs)
        return softmax(np.asarray(conf, np.float32)), np.asarray(loc, np.float32)

    def postprocessor(self, spec, info: ModelInfo, *, threshold=None):
        from tlt_core.boxes.nms import NmsConfig
        from tlt_core.networks.ssd.postprocess import detections_from_outputs

        anchors = self.anchors(spec, info.metadata["feature_map_sizes"])
        variances = tuple(spec.anchors.variances)
        nms = spec.nms
        config = NmsConfig(
            confidence_threshold=float(nms.confidence_threshold),
            clustering_iou_threshold=float(nms.clustering_iou_threshold),
            top_k=int(nms.top_k),
            score_bits=int(nms.infer_nms_score_bits),
        )

        def postprocess(raw, image_sizes):
            conf, loc = raw
            detections = detections_from_outputs(conf, loc, anchors, variances, config, image_sizes)
            if threshold is None:
                return detections
            return [keep_confident(d, threshold) for d in detections]

        return postprocess

    def final_postprocessor(self, spec, info: ModelInfo, *, threshold=None):
        import numpy as np

        from tlt_core.boxes.nms import Detections
        from tlt_core.networks.ssd.onnx_postprocess import read_detections

        def postprocess(outputs, image_sizes):
            rows = read_detections(outputs)
            if len(rows) != len(image_sizes):
                raise ValueError(f"{len(rows)} images of outputs, {len(image_sizes)} sizes")
            result = []
            for row, (height, width) in zip(rows, image_sizes, strict=True):
                scale = np.array([width, height, width, height], np.float64)
                boxes = np.clip(row.boxes.astype(np.float64) * scale, 0.0, scale)
                detections = Detections(
                    boxes, row.classes.astype(np.int64) - 1, row.scores.astype(np.float64)
                )
                result.append(
                    detections if threshold is None else keep_confident(detections, threshold)
                )
            return result

        return postprocess

    def ground_truth(self, batch: Mapping[str, Any]) -> list[Any]:
        from tlt_core.evaluate.ap import GroundTruth

        return [
            GroundTruth.from_model_classes(boxes, classes, difficult)
            for boxes, classes, difficult in zip(
                batch["boxes"], batch["classes"], batch["difficult"], strict=True
            )
        ]

    def metric(self, spec, predictions, truths, *, mode=None) -> MetricResult:
        from tlt_core.evaluate.ap import compute_ap
        from tlt_core.evaluate.report import format_ap_table

        result = compute_ap(
            list(predictions),
            list(truths),
            list(spec.class_names),
            iou_threshold=float(spec.eval.matching_iou_threshold),
            mode=mode or str(spec.eval.average_precision_mode),
        )
        return MetricResult(
            name="mAP",
            value=float(result.mAP),
            per_class={k: float(v) for k, v in result.per_class_ap.items()},
            num_images=int(result.num_images),
            table=format_ap_table(result),
            details={"mode": result.mode, "iou_threshold": float(result.iou_threshold)},
            raw=result,
        )

    def metric_report(self, spec, result: MetricResult, output_dir) -> list[Path]:
        from tlt_core.evaluate import report

        out = Path(output_dir)
        return [
            report.write_json(result.raw, out / "results.json"),
            *report.plot_pr_curves(result.raw, out),
        ]

    def matching_iou(self, spec) -> float:
        return float(spec.eval.matching_iou_threshold)

    # --- inference -------------------------------------------------------------------------
    def inference_writer(self, spec, output_dir, *, label_dir=None):
        from tlt_core.networks.ssd.inference import DetectionWriter

        return DetectionWriter(list(spec.class_names), Path(output_dir), label_dir)

    # --- export ----------------------------------------------------------------------------
    def onnx_postprocess(self, spec, network_onnx, model, *, variant):
        from tlt_core.errors import ExportError, located
        from tlt_core.export.onnx import output_dims
        from tlt_core.networks.ssd.onnx_postprocess import CONF_INPUT, LOC_INPUT, attach_postprocess

        conf = output_dims(network_onnx, CONF_INPUT)
        conf_dim = int(conf[-1]) if conf and isinstance(conf[-1], int) else 0
        if conf_dim != spec.num_classes + 1:
            raise ExportError(
                located(
                    f"the model outputs {conf_dim} classes (with background), the "
                    f"spec has {spec.num_classes} + background",
                    field="dataset_config.target_class_mapping",
                )
            )
        cfg = self._postprocess_config(spec, model)
        loc = output_dims(network_onnx, LOC_INPUT)
        boxes = int(loc[1]) if len(loc) == 3 and isinstance(loc[1], int) else -1
        if cfg.num_anchors != boxes:
            raise ExportError(f"{cfg.num_anchors} anchors for a model with {boxes} box predictions")
        return attach_postprocess(network_onnx, cfg, variant)

    def with_output_layout(self, exported, layout):
        from tlt_core.networks.ssd.onnx_postprocess import with_layout

        return with_layout(exported, layout)

    def layout_for_outputs(self, names):
        from tlt_core.networks.ssd.onnx_postprocess import layout_of

        return layout_of(names)

    def export_metadata(self, spec, model, *, variant) -> dict[str, Any]:
        cfg = self._postprocess_config(spec, model)
        return {
            "input_format": "BGR minus image_mean, NCHW float32",
            "image_mean_bgr": [float(v) for v in spec.image_mean_bgr],
            "nms": {
                "confidence_threshold": cfg.confidence_threshold,
                "clustering_iou_threshold": cfg.iou_threshold,
                "top_k": cfg.top_k,
                "score_bits": cfg.score_bits,
            },
            "variances": list(cfg.variances),
            "num_anchors": cfg.num_anchors,
        }

    def _postprocess_config(self, spec, model):
        import numpy as np

        from tlt_core.networks.ssd.onnx_postprocess import PostprocessConfig

        nms = spec.nms
        return PostprocessConfig(
            anchors=np.asarray(self.anchors(spec, feature_map_sizes(model)), np.float32),
            variances=tuple(float(v) for v in spec.anchors.variances),
            num_classes=spec.num_classes + 1,
            confidence_threshold=float(nms.confidence_threshold),
            iou_threshold=float(nms.clustering_iou_threshold),
            top_k=int(nms.top_k),
            score_bits=int(nms.infer_nms_score_bits),
        )

    def deepstream_config(self, spec, **options) -> dict[str, str]:
        # The options are the interface's (Network.deepstream_config), passed on as given.
        from tlt_core.networks.ssd.deepstream import deepstream_files

        return deepstream_files(spec, **options)


def split_outputs(outputs: Any) -> tuple[Any, Any]:
    """``(conf, loc)`` from a model call's outputs (a dict keyed by name, or [conf, loc])."""
    if isinstance(outputs, dict):
        return outputs[CONF], outputs[LOC]
    conf, loc = outputs
    return conf, loc


def feature_map_sizes(model) -> list[tuple[int, int]]:
    from tlt_core.networks.ssd.model import ssd_feature_map_sizes

    return [tuple(s) for s in ssd_feature_map_sizes(model)]


def softmax(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def keep_confident(det, threshold: float):
    """Detections scoring at least ``threshold`` whose clipped box is not empty (a box
    clipped to nothing at the border is not an object, nor a valid KITTI box)."""
    keep = (
        (det.scores >= threshold)
        & (det.boxes[:, 2] > det.boxes[:, 0])
        & (det.boxes[:, 3] > det.boxes[:, 1])
    )
    return type(det)(det.boxes[keep], det.classes[keep], det.scores[keep])


NETWORK = SsdNetwork()
