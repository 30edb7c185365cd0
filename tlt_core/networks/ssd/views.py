"""Resolved, validated views of an SSD experiment spec (see `tlt_core.networks.ssd.resolve`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tlt_core.networks.ssd import ssd_experiment_pb2 as pb


@dataclass(frozen=True)
class AnchorSpec:
    """Anchor boxes of the SSD predictor layers (see the module docstring for resolution)."""

    scales: tuple[float, ...]  # n_layers + 1, fractions of min(image h, w)
    aspect_ratios: tuple[tuple[float, ...], ...]  # one tuple per predictor layer
    two_boxes_for_ar1: bool
    variances: tuple[
        float, float, float, float
    ]  # cx, cy, log w, log h (as TLT's box coder divides them)
    clip_boxes: bool = False
    steps: tuple[tuple[float, float], ...] | None = None  # (vertical, horizontal) pixels
    offsets: tuple[tuple[float, float], ...] | None = None  # (vertical, horizontal), [0, 1)

    @property
    def n_layers(self) -> int:
        return len(self.aspect_ratios)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (model-file metadata); `from_dict` reads it back."""
        return {
            "scales": list(self.scales),
            "aspect_ratios": [list(r) for r in self.aspect_ratios],
            "two_boxes_for_ar1": self.two_boxes_for_ar1,
            "variances": list(self.variances),
            "clip_boxes": self.clip_boxes,
            "steps": None if self.steps is None else [list(s) for s in self.steps],
            "offsets": None if self.offsets is None else [list(o) for o in self.offsets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnchorSpec:
        def pairs(value: Any) -> tuple[tuple[float, float], ...] | None:
            if value is None:
                return None
            return tuple((float(a), float(b)) for a, b in value)

        return cls(
            scales=tuple(float(s) for s in data["scales"]),
            aspect_ratios=tuple(tuple(float(a) for a in r) for r in data["aspect_ratios"]),
            two_boxes_for_ar1=bool(data["two_boxes_for_ar1"]),
            variances=tuple(float(v) for v in data["variances"]),  # type: ignore[arg-type]
            clip_boxes=bool(data.get("clip_boxes", False)),
            steps=pairs(data.get("steps")),
            offsets=pairs(data.get("offsets")),
        )


@dataclass(frozen=True)
class BackboneSpec:
    arch: str
    nlayers: int | None  # None for families without it (googlenet, mobilenet_*, squeezenet)
    freeze_bn: bool
    freeze_blocks: tuple[int, ...]


@dataclass(frozen=True)
class TrainingSpec:
    batch_size_per_gpu: int
    num_epochs: int
    enable_qat: bool
    min_learning_rate: float
    max_learning_rate: float
    soft_start: float  # fraction of training spent warming up
    annealing: float  # fraction of training after which the rate anneals
    regularizer: str  # "NO_REG", "L1" or "L2"
    regularizer_weight: float
    max_queue_size: int
    n_workers: int
    use_multiprocessing: bool
    checkpoint_interval: int
    pretrain_model_path: str | None
    resume_model_path: str | None
    pruned_model_path: str | None


@dataclass(frozen=True)
class EvalSpec:
    validation_period_during_training: int
    average_precision_mode: str  # "SAMPLE" or "INTEGRATE"
    batch_size: int
    matching_iou_threshold: float


@dataclass(frozen=True)
class NmsSpec:
    confidence_threshold: float
    clustering_iou_threshold: float
    top_k: int
    infer_nms_score_bits: int  # 1..10: NMS sorts on FP16 scores cut to that many bits; 0: off


@dataclass(frozen=True)
class AugmentationSpec:
    output_width: int
    output_height: int
    output_channel: int
    random_crop_min_scale: float
    random_crop_max_scale: float
    random_crop_min_ar: float
    random_crop_max_ar: float
    zoom_out_min_scale: float
    zoom_out_max_scale: float
    brightness: int
    contrast: float
    saturation: float
    hue: int
    random_flip: float
    image_mean: dict[str, float]  # keys r, g, b (or l), defaults applied

    # 000: equal min and max scale 1.0 disables RandomCrop / ZoomOut; all-zero jitter
    # deltas disable colour jitter.
    @property
    def random_crop_enabled(self) -> bool:
        return not (self.random_crop_min_scale == self.random_crop_max_scale == 1.0)

    @property
    def zoom_out_enabled(self) -> bool:
        return not (self.zoom_out_min_scale == self.zoom_out_max_scale == 1.0)

    @property
    def color_jitter_enabled(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue))


@dataclass(frozen=True)
class DataSource:
    """One dataset: KITTI label + image directories, or a TFRecord file pattern.

    Paths are resolved (relative ones against the spec's directory); a TFRecord source
    may also name an image directory, which this implementation does not need.
    """

    label_directory_path: str | None = None
    image_directory_path: str | None = None
    tfrecords_path: str | None = None

    @property
    def kind(self) -> str:
        return "tfrecords" if self.tfrecords_path else "kitti"

    def to_proto(self) -> pb.DataSource:
        return pb.DataSource(
            label_directory_path=self.label_directory_path or "",
            image_directory_path=self.image_directory_path or "",
            tfrecords_path=self.tfrecords_path or "",
        )
