"""The image classifier (002) behind the `Network` interface.

Everything classification-only is reached from here: the spec, the class-per-directory
input, the model, its loss (categorical cross-entropy with label smoothing), optimizer and
learning-rate schedules, the metrics (top-1 / top-k, per-class precision / recall / F1,
confusion matrix), the ``result.csv`` writer and the DeepStream secondary-classifier
config. The exported graph needs no post-processing: its output is the softmax of the
``predictions`` layer, ``predictions/Softmax`` (002, chapter 9). TensorFlow, Keras and
ONNX are imported inside the hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tlt_core.networks.base import MetricResult, MetricSpec, ModelInfo, Network, TrainingSettings

log = logging.getLogger(__name__)

OUTPUT_TENSOR = "predictions/Softmax"
OUTPUT_LAYER = "predictions"


class ClassificationNetwork(Network):
    name: ClassVar[str] = "classification"
    sample_task: ClassVar[str] = "classification"
    title: ClassVar[str] = (
        "image classification (TLT v0.3): train, evaluate, inference, prune, export"
    )
    primary_metric: ClassVar[MetricSpec] = MetricSpec(
        "top1_accuracy", "top-1 accuracy on the validation (or evaluation) directory"
    )
    raw_output_names: ClassVar[tuple[str, ...]] = (OUTPUT_TENSOR,)
    inference_description: ClassVar[str] = (
        "Classify an image or a folder of images: one image logs its score vector, class "
        "label and class name (002, 7.1); a folder writes result.csv (index,path,class) in "
        "the output folder."
    )
    inference_output_help: ClassVar[str] = "folder for result.csv (local or s3://)"
    prediction_noun: ClassVar[str] = "classified"

    # --- spec ------------------------------------------------------------------------------
    def load_spec(self, path):
        from tlt_core.networks.classification.spec import load_spec

        return load_spec(path)

    def parse_spec(self, text, *, path="<string>", base_dir=None):
        from tlt_core.networks.classification.spec import parse_spec

        return parse_spec(text, path=path, base_dir=base_dir)

    def sample_spec(self, data_dir, *, fast=False, epochs=None) -> str:
        """The spec of ``tlt sample-data --task classification``'s data; ``fast``: the
        quarter-size run of the local pipeline (resnet10 at 32x32, 4 epochs)."""
        from tlt_core.networks.classification.sample import FAST_OVERRIDES, sample_spec

        overrides: dict[str, object] = dict(FAST_OVERRIDES) if fast else {}
        if epochs is not None:
            overrides["n_epochs"] = int(epochs)
        return sample_spec(data_dir, **overrides)

    def generate_sample(self, output_dir, *, num_train, num_val, seed, spec_root):
        from tlt_core.networks.classification.sample import (
            SPEC_NAME,
            generate_classification_sample,
        )

        counts = generate_classification_sample(
            output_dir, num_train=num_train, num_val=num_val, seed=seed, spec_root=spec_root
        )
        return counts, Path("specs") / SPEC_NAME

    def training_settings(self, spec) -> TrainingSettings:
        starts = ((spec.pretrained_model_path, False),) if spec.pretrained_model_path else ()
        return TrainingSettings(
            batch_size_per_replica=int(spec.batch_size_per_gpu),
            num_epochs=int(spec.n_epochs),
            num_epochs_field="train_config.n_epochs",
            checkpoint_interval=int(spec.checkpoint_interval),
            validation_period=int(spec.validation_period),
            seed=int(spec.random_seed) if spec.random_seed else None,
            start_models=starts,
        )

    def pruned_start_overrides(self, pruned_model_path):
        """002 retrains a pruned classifier from ``pretrained_model_path``; the trainer
        keeps the shape of a model whose metadata says it is pruned."""
        return {"train_config.pretrained_model_path": str(pruned_model_path)}

    def no_regularizer_overrides(self):
        return {"train_config.reg_config.type": "None"}

    # --- model -----------------------------------------------------------------------------
    def build_model(self, spec, *, kernel_regularizer=None):
        from tlt_core.networks.classification.model import build_classifier

        scope = spec.reg_scope
        return build_classifier(
            arch=spec.arch,
            n_layers=spec.n_layers,
            input_shape=spec.input_shape,
            num_classes=spec.num_classes,
            freeze_blocks=spec.freeze_blocks,
            freeze_bn=spec.freeze_bn,
            dropout=spec.dropout,
            conv_regularizer=kernel_regularizer if "Conv2D" in scope else None,
            dense_regularizer=kernel_regularizer if "Dense" in scope else None,
        )

    def kernel_regularizer(self, spec):
        from tlt_core.networks.classification.model import make_regularizer

        return make_regularizer(spec.reg_type, spec.weight_decay)

    def register_keras_classes(self) -> None:
        import tlt_core.networks.classification.schedule  # noqa: F401

    def model_classes(self, model) -> int:
        return int(model.outputs[0].shape[-1])

    def model_metadata(self, spec, model) -> dict[str, Any]:
        return {
            "arch": spec.arch,
            "n_layers": spec.n_layers,
            "preprocess_mode": spec.preprocess_mode,
            "center_crop": bool(spec.eval_center_crop),
        }

    def check_model(self, spec, info: ModelInfo, *, source: str) -> None:
        """Input shape and class count; class names only where the spec's data says them
        (an inference spec need not point at the training data: the model names them)."""
        from tlt_core.errors import DataError, ModelFileError

        other = info.metadata.get("network")
        if other is not None and other != self.name:
            raise ModelFileError(f"{source}: a {other} model, not {self.name}")
        if tuple(info.input_shape) != tuple(spec.input_shape):
            raise ModelFileError(
                f"{source}: model input (H, W, C) {tuple(info.input_shape)} does not match "
                f"the spec's model_config.input_image_size {tuple(spec.input_shape)}"
            )
        try:
            names = spec.class_names
        except DataError:
            return
        model_names = info.metadata.get("class_names")
        if model_names is not None and set(names) - set(model_names):
            raise ModelFileError(
                f"{source}: the data's classes {sorted(set(names) - set(model_names))} are "
                f"not among the model's {list(model_names)}"
            )
        if model_names is None and info.num_classes != len(names):
            raise ModelFileError(
                f"{source}: model predicts {info.num_classes} classes, the data has "
                f"{len(names)} ({', '.join(names)})"
            )

    def model_companion_files(self, class_names) -> dict[str, str]:
        from tlt_core.data.classmap import CLASSMAP_FILE, classmap_text

        return {CLASSMAP_FILE: classmap_text(class_names)}

    def checkpoint_stem(self, spec) -> str:
        return spec.arch_name

    def prune_keep_layers(self, model) -> list[str]:
        return [OUTPUT_LAYER]

    def head_layers_description(self) -> str:
        return f"the {OUTPUT_LAYER} layer"

    # --- data ------------------------------------------------------------------------------
    def _folders(self, spec, *, training: bool, sources=None):
        from tlt_core.errors import DataError
        from tlt_core.networks.classification.data import list_class_folders

        if sources is not None:
            root = sources[0] if isinstance(sources, (list, tuple)) else sources
        else:
            root = spec.train_dataset_path if training else spec.val_dataset_path
        if root is None:
            raise DataError("no validation directory: set train_config.val_dataset_path", spec.path)
        return list_class_folders(root, class_names=spec.class_names)

    def input_pipeline(
        self,
        spec,
        *,
        training,
        batch_size,
        sources=None,
        shuffle=None,
        seed=None,
        repeat=False,
        stats=None,
    ):
        import tensorflow as tf

        from tlt_core.networks.classification.data import build_dataset, mixup

        folders = self._folders(spec, training=training, sources=sources)
        seed = int(spec.random_seed if seed is None else seed)
        height, width, _ = spec.input_shape
        dataset = build_dataset(
            folders,
            input_hw=(height, width),
            preprocess_mode=spec.preprocess_mode,
            batch_size=batch_size,
            training=training,
            seed=seed,
            random_crop=spec.random_crop,
            center_crop=spec.center_crop if training else spec.eval_center_crop,
            color_augmentation=spec.color_augmentation,
            shuffle=shuffle,
            stats=stats,
        )
        num_classes = len(folders.class_names)
        alpha = float(spec.mixup_alpha) if training else 0.0

        def with_targets(index, batch):
            one_hot = tf.one_hot(batch["label"], num_classes, dtype=tf.float32)
            image = batch["image"]
            if alpha > 0:
                batch_seed = tf.stack([tf.constant(seed, tf.int64), index])
                image, one_hot = mixup(image, one_hot, batch_seed, alpha)
            return {**batch, "image": image, "targets": one_hot, "frame_id": batch["path"]}

        dataset = dataset.enumerate().map(with_targets, num_parallel_calls=tf.data.AUTOTUNE)
        if repeat:
            dataset = dataset.repeat()
        return dataset.prefetch(2)

    def dataset_size(self, spec, *, training, sources=None) -> int:
        return len(self._folders(spec, training=training, sources=sources))

    def prepare_dataset(self, dataset_dir, output_dir, *, convert_spec=""):
        """The pipeline's data step: ``train/`` and ``val/`` class folders checked and
        passed through with ``classmap.json`` (002 has no conversion for classifiers)."""
        from tlt_core.networks.classification.pipeline_data import stage_class_folders

        if convert_spec.strip():
            log.warning("convert_spec is not used: classification reads class folders")
        return stage_class_folders(Path(dataset_dir), Path(output_dir))

    def dataset_sources(self, dataset_dir, *, validation_fold):
        """The ``train/`` and ``val/`` folders `prepare_dataset` wrote (the validation
        split is the ``val/`` folder: there are no folds to choose from)."""
        from tlt_core.errors import UsageError
        from tlt_core.networks.classification.pipeline_data import SPLITS

        if validation_fold != 0:
            raise UsageError(
                f"validation fold {validation_fold}: classification validates on val/ "
                "(fold 0), it has no folds"
            )
        train, val = (str(Path(dataset_dir) / split) for split in SPLITS)
        return [train], [val]

    def has_validation_data(self, spec) -> bool:
        return bool(spec.val_dataset_path)

    def preprocess(self, spec, rgb):
        import tensorflow as tf

        from tlt_core.networks.classification.data import eval_pixels, preprocess

        height, width, _ = spec.input_shape
        image = tf.convert_to_tensor(rgb, tf.uint8)
        pixels = eval_pixels(image, (height, width), center_crop=spec.eval_center_crop)
        return preprocess(pixels, spec.preprocess_mode).numpy()

    # --- training --------------------------------------------------------------------------
    def training_model(self, model):
        return model

    def training_targets(self, spec, model):
        def to_targets(batch):
            return batch["image"], batch["targets"]

        return to_targets

    def loss(self, spec):
        import keras

        return keras.losses.CategoricalCrossentropy(label_smoothing=float(spec.label_smoothing))

    def optimizer(self, spec, *, total_steps, replicas):
        import keras

        from tlt_core.networks.classification.schedule import ClassificationSchedule

        steps_per_epoch = max(int(total_steps) // max(int(spec.n_epochs), 1), 1)
        schedule = ClassificationSchedule.from_spec(
            spec.lr, steps_per_epoch=steps_per_epoch, total_steps=total_steps, scale=replicas
        )
        if spec.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=schedule)
        if spec.optimizer == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate=schedule, momentum=spec.momentum)
        return keras.optimizers.SGD(
            learning_rate=schedule, momentum=spec.momentum, nesterov=spec.nesterov
        )

    # --- prediction and evaluation ---------------------------------------------------------
    def raw_outputs(self, outputs) -> tuple[np.ndarray, ...]:
        if isinstance(outputs, dict):
            outputs = next(iter(outputs.values()))
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return (np.asarray(outputs, np.float32),)

    def postprocessor(self, spec, info: ModelInfo, *, threshold=None):
        from tlt_core.networks.classification.inference import predictions_from_scores

        names = info.metadata.get("class_names")
        if names is None:
            names = spec.class_names

        def postprocess(raw, image_sizes):
            return predictions_from_scores(raw[0], names)

        return postprocess

    def ground_truth(self, batch: Mapping[str, Any]) -> list[Any]:
        return [int(v) for v in np.asarray(batch["label"])]

    def metric(self, spec, predictions, truths, *, mode=None) -> MetricResult:
        from tlt_core.networks.classification.metrics import compute_metrics, format_report

        names = spec.class_names
        scores = (
            np.stack([p.scores for p in predictions])
            if predictions
            else np.zeros((0, len(names)), np.float32)
        )
        result = compute_metrics(scores, np.asarray(truths, np.int64), names, k=spec.top_k)
        return MetricResult(
            name=self.primary_metric.name,
            value=float(result.top1),
            per_class={n: float(r) for n, r in zip(names, result.recall, strict=True)},
            num_images=result.num_images,
            table=format_report(result),
            details={f"top{result.k}_accuracy": result.top_k},
            raw=result,
        )

    def prediction_agreement(self, spec, predictions, reference, *, threshold) -> float | None:
        """The fraction of images whose top-1 class is the same in both."""
        if not reference:
            return None
        same = sum(p.label == r.label for p, r in zip(predictions, reference, strict=True))
        return same / len(reference)

    def metric_report(self, spec, result: MetricResult, output_dir) -> list[Path]:
        from tlt_core.networks.classification.metrics import (
            CONFUSION_PNG,
            plot_confusion_matrix,
            write_json,
        )

        out = Path(output_dir)
        return [
            write_json(result.raw, out / "results.json"),
            plot_confusion_matrix(result.raw, out / CONFUSION_PNG),
        ]

    def eval_batch_size(self, spec) -> int:
        return int(spec.eval_batch_size)

    # --- inference -------------------------------------------------------------------------
    def inference_writer(self, spec, output_dir, *, label_dir=None):
        from tlt_core.networks.classification.inference import ResultCsvWriter

        return ResultCsvWriter(Path(output_dir))

    # --- export ----------------------------------------------------------------------------
    def onnx_postprocess(self, spec, network_onnx, model, *, variant):
        """The model's softmax as it is, named ``predictions/Softmax`` (002's output blob)
        by an Identity node: the graph tf2onnx gives names it after the Keras layer."""
        import onnx

        from tlt_core.export.onnx import append_graph

        (output,) = network_onnx.graph.output
        # The output keeps the softmax's shape ([batch, classes]): a shapeless output fails
        # onnx.checker (the Q/DQ export checks every graph it writes).
        shape = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
        post = onnx.helper.make_model(
            onnx.helper.make_graph(
                [onnx.helper.make_node("Identity", [output.name], [OUTPUT_TENSOR])],
                "classification_output",
                [],
                [onnx.helper.make_tensor_value_info(OUTPUT_TENSOR, onnx.TensorProto.FLOAT, shape)],
            )
        )
        return append_graph(network_onnx, post, name="classification", check=False)

    def deepstream_config(self, spec, **options) -> dict[str, str]:
        # The options are the interface's (Network.deepstream_config), passed on as given.
        from tlt_core.networks.classification.deepstream import deepstream_files

        return deepstream_files(spec, **options)


NETWORK = ClassificationNetwork()
