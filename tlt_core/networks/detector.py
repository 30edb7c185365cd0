"""What the KITTI detectors (SSD, DetectNet_v2) share behind the `Network` interface.

Both read KITTI frames through ``data.pipeline.build_dataset`` with their own
``DetectionTransform``, predict ``boxes.nms.Detections`` scored by the shared AP
(``evaluate.ap``) in the spec's ``eval`` mode, start from the spec's pruned / resume /
pretrained model, and draw their validation frames with ``evaluate.frames``. A detector
subclasses `KittiDetector` and says only what differs: its transform
(`detection_transform`), the data sources of a fold (`_sources`), its own training
settings (`_more_training_settings`) and the matching IoU of its frames (`matching_iou`).
"""

from __future__ import annotations

import abc
from typing import Any

from tlt_core.networks.base import FrameDrawing, Network, TrainingSettings


def start_models(training: Any) -> tuple[tuple[str, bool], ...]:
    """``TrainingSettings.start_models`` of a detector's ``training_config`` view:
    ``(path, pruned)`` for the pruned, resume and pretrained model paths that are set."""
    return tuple(
        (value, pruned)
        for value, pruned in (
            (training.pruned_model_path, True),
            (training.resume_model_path, False),
            (training.pretrain_model_path, False),
        )
        if value
    )


class KittiDetector(Network):
    """The hooks SSD and DetectNet_v2 share (see the module docstring)."""

    def _more_training_settings(self, spec: Any) -> dict[str, Any]:
        """`TrainingSettings` fields only this detector's spec has."""
        return {}

    def training_settings(self, spec) -> TrainingSettings:
        training, evaluation = spec.training, spec.eval
        return TrainingSettings(
            batch_size_per_replica=int(training.batch_size_per_gpu),
            num_epochs=int(training.num_epochs),
            checkpoint_interval=max(int(training.checkpoint_interval), 1),
            validation_period=max(int(evaluation.validation_period_during_training), 1),
            seed=int(spec.random_seed) if spec.random_seed else None,
            start_models=start_models(training),
            **self._more_training_settings(spec),
        )

    @abc.abstractmethod
    def detection_transform(self, spec: Any) -> Any:
        """The network's ``data.pipeline.DetectionTransform`` for ``spec``."""

    @abc.abstractmethod
    def matching_iou(self, spec: Any) -> float | tuple[float, ...]:
        """The IoU at which a detection matches an object (one, or one per class)."""

    def parallel_calls(self, spec: Any) -> int | None:
        """Parallel image decodes of the input pipeline (None: tf.data's choice)."""
        return None

    def _sources(self, spec: Any, training: bool, sources: Any) -> Any:
        """The sources `input_pipeline` reads (default: those given, else the spec's)."""
        return sources

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
        from tlt_core.data.pipeline import build_dataset

        return build_dataset(
            spec,
            training=training,
            batch_size=batch_size,
            transform=self.detection_transform(spec),
            sources=self._sources(spec, training, sources),
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            stats=stats,
            parallel_calls=self.parallel_calls(spec),
        )

    def dataset_size(self, spec, *, training, sources=None) -> int:
        from tlt_core.data.pipeline import dataset_size

        return dataset_size(spec, training=training, sources=self._sources(spec, training, sources))

    def prediction_agreement(self, spec, predictions, reference, *, threshold):
        """mAP of ``predictions`` against the ``reference`` detections scoring at least
        ``threshold`` taken as ground truth (IoU 0.5), over the classes the reference has."""
        import numpy as np

        from tlt_core.evaluate.ap import GroundTruth, compute_ap

        pseudo = []
        for det in reference:
            keep = det.scores >= threshold
            pseudo.append(
                GroundTruth(det.boxes[keep], det.classes[keep], np.zeros(int(keep.sum()), bool))
            )
        if not sum(len(g) for g in pseudo):
            return None
        agreement = compute_ap(list(predictions), pseudo, spec.class_names, iou_threshold=0.5)
        present = [n for n in agreement.class_names if agreement.num_ground_truth[n] > 0]
        return float(np.mean([agreement.per_class_ap[n] for n in present]))

    def metric_variants(self, spec) -> tuple[str, ...]:
        return ("INTEGRATE",) if spec.eval.average_precision_mode == "SAMPLE" else ("SAMPLE",)

    def eval_batch_size(self, spec) -> int:
        return int(spec.eval.batch_size)

    def frame_drawing(self, spec) -> FrameDrawing:
        return FrameDrawing(tuple(float(v) for v in spec.image_mean_bgr), self.matching_iou(spec))
