"""The DetectNet_v2 experiment spec (002, 11.2): `load_experiment`, `DetectNetExperiment`.

Parsing and located errors are the shared ones (`tlt_core.spec.textparse`,
`tlt_core.spec.resolve.Checker`): every problem is a `SpecError`
``spec.txt:LINE: field: message``.

Resolution rules:
- Classes: the target classes of ``dataset_config.target_class_mapping``, lower-cased and
  sorted (the project's class order, docs/architecture.md); output channel ``i`` of
  ``output_cov`` is ``class_names[i]``. Every target class needs an entry in
  ``bbox_rasterizer_config``, ``cost_function_config`` and ``postprocessing_config``;
  an entry naming no target class is an error (a typo would otherwise be ignored).
- ``model_config.template`` (or ``arch``) names a shared backbone
  (`tlt_core.spec.archs.ARCHITECTURES`); ``num_layers`` as SSD's ``nlayers``.
- ``objective_set.bbox``: ``scale`` default 35, ``offset`` default 0.5 (DeepStream's
  DetectNet_v2 parser hard-codes these two values).
- Objective weights: ``cov`` and ``bbox`` each need ``initial_weight`` and
  ``weight_target``; missing objectives default to 1 -> 1.
- ``validation_fold``: with TFRecord sources from ``tlt dataset-convert`` and no
  ``validation_data_source``, training reads every fold but this one and validation reads
  this one (`fold_sources`).
- Augmentation (`augment`): horizontal flip, zoom, translation and colour jitter as 002
  describes; vertical flip and rotation are refused when not 0 (not built).
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tlt_core.errors import SpecError
from tlt_core.io_utils import write_text_atomic
from tlt_core.networks.detectnet_v2 import detectnet_v2_pb2 as pb
from tlt_core.spec.archs import ARCHITECTURES
from tlt_core.spec.check import Checker, resolve_class_mapping, resolve_path
from tlt_core.spec.overrides import set_by_path
from tlt_core.spec.textparse import parse_message, read_spec_text, shortest_float32

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
OBJECTIVES = ("cov", "bbox")
DEFAULT_BBOX_SCALE = 35.0
DEFAULT_BBOX_OFFSET = 0.5
STRIDE = 16
_FOLD = re.compile(r"-fold-(\d+)-of-(\d+)-shard-")


@dataclass(frozen=True)
class BackboneSpec:
    arch: str
    nlayers: int | None  # None for families without it
    freeze_bn: bool
    freeze_blocks: tuple[int, ...]


@dataclass(frozen=True)
class TrainingSpec:
    batch_size_per_gpu: int
    num_epochs: int
    min_learning_rate: float
    max_learning_rate: float
    soft_start: float
    annealing: float
    regularizer: str  # "NO_REG", "L1" or "L2"
    regularizer_weight: float
    checkpoint_interval: int
    pretrain_model_path: str | None
    resume_model_path: str | None
    pruned_model_path: str | None


@dataclass(frozen=True)
class AugmentationSpec:
    """``augmentation_config`` (002), resolved."""

    output_width: int
    output_height: int
    hflip_probability: float
    zoom_min: float
    zoom_max: float
    translate_max_x: float  # output pixels
    translate_max_y: float
    hue_rotation_max: float  # degrees
    saturation_shift_max: float
    contrast_scale_max: float
    contrast_center: float
    color_shift_stddev: float  # fraction of the 0..255 range


@dataclass(frozen=True)
class DataSource:
    """A TFRecord pattern (image directory optional: the records hold the images), or a
    KITTI image + label directory. Paths resolved against the spec's directory."""

    label_directory_path: str | None = None
    image_directory_path: str | None = None
    tfrecords_path: str | None = None


@dataclass(frozen=True)
class RasterClass:
    """``bbox_rasterizer_config.target_class_config`` of one class."""

    cov_center_x: float
    cov_center_y: float
    cov_radius_x: float
    cov_radius_y: float
    bbox_min_radius: float  # grid cells


@dataclass(frozen=True)
class CostClass:
    """``cost_function_config.target_classes`` of one class."""

    class_weight: float
    coverage_foreground_weight: float
    initial_weights: tuple[float, float]  # (cov, bbox)
    target_weights: tuple[float, float]


@dataclass(frozen=True)
class CostSpec:
    classes: tuple[CostClass, ...]  # in class_names order
    enable_autoweighting: bool
    min_objective_weight: float
    max_objective_weight: float


@dataclass(frozen=True)
class ClusteringSpec:
    """``postprocessing_config ... clustering_config`` of one class."""

    coverage_threshold: float
    dbscan_eps: float
    dbscan_min_samples: float  # fraction of the candidates' coverage mass
    minimum_bounding_box_height: float
    confidence_threshold: float = 0.0


@dataclass(frozen=True)
class Bucket:
    """An ``evaluation_bucket_config`` entry: the objects a difficulty level counts."""

    minimum_height: float
    maximum_height: float
    minimum_occlusion: int
    maximum_occlusion: int
    minimum_truncation: float
    maximum_truncation: float


@dataclass(frozen=True)
class DetectNetEvalSpec:
    validation_period_during_training: int
    first_validation_epoch: int
    iou_thresholds: tuple[float, ...]  # per class, class_names order
    buckets: dict[str, Bucket]
    average_precision_mode: str
    batch_size: int


@dataclass(frozen=True)
class DetectNetExperiment:
    """A validated DetectNet_v2 experiment. Attributes the shared input pipeline reads
    (``augmentation``, ``image_mean_bgr``, ``input_shape``, ``class_mapping``,
    ``class_names``, ``data_sources``, ...) have the meaning they have for SSD."""

    path: str
    text: str = field(repr=False)
    proto: pb.Experiment = field(repr=False)
    base_dir: Path
    random_seed: int
    backbone: BackboneSpec
    use_pooling: bool
    use_batch_norm: bool
    dropout_rate: float
    pretrained_model_file: str | None
    bbox_scale: float
    bbox_offset: float
    raster: tuple[RasterClass, ...]  # class_names order
    deadzone_radius: float
    cost: CostSpec
    training: TrainingSpec
    augmentation: AugmentationSpec
    clustering: tuple[ClusteringSpec, ...]  # class_names order
    data_sources: tuple[DataSource, ...]
    validation_data_sources: tuple[DataSource, ...]
    validation_fold: int | None
    class_mapping: dict[str, str]
    class_names: tuple[str, ...]
    eval: DetectNetEvalSpec
    image_mean_bgr: tuple[float, float, float]
    input_shape: tuple[int, int, int]
    min_bbox_size: tuple[float, float]  # (width, height) in output pixels
    include_difficult_in_training: bool = True

    network = "detectnet_v2"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the output grid."""
        return grid_shape(self.input_shape[0], self.input_shape[1])

    def to_text(self, *, absolute_paths: bool = False) -> str:
        """The spec in text format (relative paths made absolute if asked)."""
        proto = self.proto
        if absolute_paths:
            proto = copy.deepcopy(proto)
            _absolutize(proto, self.base_dir)
        return text_format.MessageToString(proto)

    def save(self, path: str | Path, *, absolute_paths: bool = True) -> Path:
        return write_text_atomic(path, self.to_text(absolute_paths=absolute_paths))

    def with_overrides(self, overrides: Mapping[str, Any]) -> DetectNetExperiment:
        """A new experiment with fields set by dotted path (``{"training_config.num_epochs":
        2}``; None clears a field), validated like a file."""
        proto = copy.deepcopy(self.proto)
        source = _rewritten(self.path)
        for dotted, value in overrides.items():
            set_by_path(proto, dotted, value, source)
        return self._rebuilt(proto)

    def replace_data_sources(self, train=None, val=None) -> DetectNetExperiment:
        """A new experiment reading other data (``None`` keeps a side as it is). Each
        source is a `DataSource` or a mapping of its fields; ``val`` holds at most one
        source (002's ``validation_data_source``) and replaces ``validation_fold``."""
        proto = copy.deepcopy(self.proto)
        dc = proto.dataset_config
        if train is not None:
            del dc.data_sources[:]
            for source in train:
                dc.data_sources.append(_source_proto(source, self.path))
        if val is not None:
            val = list(val)
            if len(val) > 1:
                raise SpecError(
                    f"DetectNet_v2 validates on one data source, got {len(val)}",
                    _rewritten(self.path),
                    field="dataset_config.validation_data_source",
                )
            dc.ClearField("validation_fold")
            dc.ClearField("validation_data_source")
            if val:
                dc.validation_data_source.CopyFrom(_source_proto(val[0], self.path))
        return self._rebuilt(proto)

    def _rebuilt(self, proto: pb.Experiment) -> DetectNetExperiment:
        text = text_format.MessageToString(proto)
        built = _build(
            proto, text, _rewritten(self.path), Checker(_rewritten(self.path), None), self.base_dir
        )
        return dataclasses.replace(built, path=self.path)


def grid_shape(height: int, width: int) -> tuple[int, int]:
    """Output grid of a stride-16 network with 'same' padding."""
    return math.ceil(height / STRIDE), math.ceil(width / STRIDE)


# -- entry points ---------------------------------------------------------------------------
def load_experiment(path: str | Path) -> DetectNetExperiment:
    """Read, parse and validate a DetectNet_v2 experiment spec file."""
    text = read_spec_text(path)
    return parse_experiment(text, path=str(path), base_dir=Path(path).absolute().parent)


def parse_experiment(
    text: str, path: str = "<string>", base_dir: str | Path | None = None
) -> DetectNetExperiment:
    proto = pb.Experiment()
    locator = parse_message(text, proto, path)
    check = Checker(path, locator)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _build(proto, text, path, check, base)


def _build(
    proto: pb.Experiment, text: str, path: str, check: Checker, base: Path
) -> DetectNetExperiment:
    check.section(proto, "dataset_config", required=True)
    class_mapping = _class_mapping(proto, check)
    class_names = tuple(sorted(set(class_mapping.values())))
    backbone, model = _model(proto, check, base)
    augmentation, min_bbox = _augmentation(proto, check)
    training = _training(proto, check, base)
    train_sources, val_sources, fold = _sources(proto, check, base)
    return DetectNetExperiment(
        path=path,
        text=text,
        proto=proto,
        base_dir=base,
        random_seed=proto.random_seed,
        backbone=backbone,
        use_pooling=model["use_pooling"],
        use_batch_norm=model["use_batch_norm"],
        dropout_rate=model["dropout_rate"],
        pretrained_model_file=model["pretrained_model_file"],
        bbox_scale=model["bbox_scale"],
        bbox_offset=model["bbox_offset"],
        raster=_raster(proto, check, class_names),
        deadzone_radius=_deadzone(proto, check),
        cost=_cost(proto, check, class_names),
        training=training,
        augmentation=augmentation,
        clustering=_clustering(proto, check, class_names),
        data_sources=train_sources,
        validation_data_sources=val_sources,
        validation_fold=fold,
        class_mapping=class_mapping,
        class_names=class_names,
        eval=_evaluation(proto, check, class_names, training.batch_size_per_gpu),
        image_mean_bgr=IMAGENET_MEAN_BGR,
        input_shape=(augmentation.output_height, augmentation.output_width, 3),
        min_bbox_size=min_bbox,
    )


# -- sections -------------------------------------------------------------------------------
def _model(proto: pb.Experiment, check: Checker, base: Path) -> tuple[BackboneSpec, dict]:
    mc = check.section(proto, "model_config", required=True)
    at = "model_config"
    if mc.template and mc.arch and mc.template != mc.arch:
        check.fail(f"{at}.arch", f"template is {mc.template!r}: give one of template and arch")
    arch = mc.template or mc.arch
    where = f"{at}.template" if mc.template or not mc.arch else f"{at}.arch"
    if not arch:
        check.fail(where, f"required field is missing; one of {', '.join(ARCHITECTURES)}")
    if arch not in ARCHITECTURES:
        check.fail(where, f"unknown template {arch!r}; one of {', '.join(ARCHITECTURES)}")
    info = ARCHITECTURES[arch]
    nlayers = None
    if info.nlayers:
        if not mc.HasField("num_layers"):
            check.fail(
                f"{at}.num_layers",
                f"required for {arch}: one of {', '.join(map(str, info.nlayers))}",
            )
        nlayers = mc.num_layers
        if nlayers not in info.nlayers:
            check.fail(
                f"{at}.num_layers",
                f"{arch} supports num_layers {', '.join(map(str, info.nlayers))}, got {nlayers}",
            )
    blocks = check.freeze_blocks(mc.freeze_blocks, f"{at}.freeze_blocks", arch, info.freeze_blocks)
    dropout = shortest_float32(mc.dropout_rate)
    check.in_range(f"{at}.dropout_rate", dropout, 0.0, 1.0, high_open=True)
    if mc.HasField("use_batch_norm") and not mc.use_batch_norm:
        check.fail(
            f"{at}.use_batch_norm",
            "the shared backbones always use batch normalisation; set it to True",
        )
    if mc.use_pooling:
        check.fail(
            f"{at}.use_pooling",
            "max-pooling downsampling is not built; use strided convolutions (False), "
            "as 002 recommends for detection",
        )
    precision = mc.training_precision.backend_floatx
    if precision == pb.TrainingPrecision.INVALID:
        check.fail(f"{at}.training_precision.backend_floatx", "INVALID is not a precision")
    bbox = mc.objective_set.bbox
    scale = check.float_field(bbox, "scale", f"{at}.objective_set.bbox.scale", DEFAULT_BBOX_SCALE)
    if not scale > 0:
        check.fail(f"{at}.objective_set.bbox.scale", f"must be positive, got {scale:g}")
    offset = check.float_field(
        bbox, "offset", f"{at}.objective_set.bbox.offset", DEFAULT_BBOX_OFFSET
    )
    check.in_range(f"{at}.objective_set.bbox.offset", offset, 0.0, float(STRIDE))
    return BackboneSpec(arch, nlayers, mc.freeze_bn, blocks), {
        "use_pooling": mc.use_pooling,
        "use_batch_norm": True,
        "dropout_rate": dropout,
        "pretrained_model_file": resolve_path(mc.pretrained_model_file, base),
        "bbox_scale": scale,
        "bbox_offset": offset,
    }


def _per_class_map(check: Checker, entries, at: str, class_names: tuple[str, ...]) -> dict:
    """A per-class map keyed by target class: every class present, no other key."""
    found = {}
    for key in sorted(entries, key=lambda k: (check.line_of(f"{at}['{k}']"), k)):
        name = key.strip().lower()
        if name not in class_names:
            check.fail(
                f"{at}['{key}']",
                f"{key!r} is not a target class; target classes: {', '.join(class_names)}",
            )
        if name in found:
            check.fail(f"{at}['{key}']", f"class {name!r} given twice (case-insensitive)")
        found[name] = (key, entries[key])
    missing = [c for c in class_names if c not in found]
    if missing:
        check.fail(at, f"no entry for target class(es) {', '.join(missing)}")
    return found


def _raster(proto: pb.Experiment, check: Checker, class_names) -> tuple[RasterClass, ...]:
    rc = check.section(proto, "bbox_rasterizer_config", required=True)
    at = "bbox_rasterizer_config.target_class_config"
    found = _per_class_map(check, rc.target_class_config, at, class_names)
    out = []
    for name in class_names:
        key, entry = found[name]
        here = f"{at}['{key}'].value"
        values = {}
        for field_name in ("cov_center_x", "cov_center_y"):
            value = shortest_float32(getattr(entry, field_name))
            check.in_range(f"{here}.{field_name}", value, 0.0, 1.0)
            values[field_name] = value
        for field_name in ("cov_radius_x", "cov_radius_y"):
            value = shortest_float32(getattr(entry, field_name))
            if not (value > 0 and math.isfinite(value)):
                check.fail(f"{here}.{field_name}", f"must be positive, got {value:g}")
            values[field_name] = value
        radius = shortest_float32(entry.bbox_min_radius)
        if not (radius >= 0 and math.isfinite(radius)):
            check.fail(f"{here}.bbox_min_radius", f"must be >= 0, got {radius:g}")
        out.append(RasterClass(bbox_min_radius=radius, **values))
    return tuple(out)


def _deadzone(proto: pb.Experiment, check: Checker) -> float:
    value = shortest_float32(proto.bbox_rasterizer_config.deadzone_radius)
    if not (value >= 0 and math.isfinite(value)):
        check.fail("bbox_rasterizer_config.deadzone_radius", f"must be >= 0, got {value:g}")
    return value


def _cost(proto: pb.Experiment, check: Checker, class_names) -> CostSpec:
    cc = check.section(proto, "cost_function_config", required=True)
    at = "cost_function_config"
    by_name: dict[str, tuple[int, pb.CostTargetClass]] = {}
    for i, target in enumerate(cc.target_classes):
        here = f"{at}.target_classes[{i}]"
        name = target.name.strip().lower()
        if not name:
            check.fail(f"{here}.name", "required field is missing")
        if name not in class_names:
            check.fail(
                f"{here}.name",
                f"{target.name!r} is not a target class; target classes: {', '.join(class_names)}",
            )
        if name in by_name:
            check.fail(f"{here}.name", f"class {name!r} given twice")
        by_name[name] = (i, target)
    missing = [c for c in class_names if c not in by_name]
    if missing:
        check.fail(f"{at}.target_classes", f"no entry for target class(es) {', '.join(missing)}")
    classes = []
    for name in class_names:
        i, target = by_name[name]
        here = f"{at}.target_classes[{i}]"
        weight = shortest_float32(target.class_weight)
        if not (weight > 0 and math.isfinite(weight)):
            check.fail(f"{here}.class_weight", f"must be positive, got {weight:g}")
        foreground = shortest_float32(target.coverage_foreground_weight)
        check.in_range(f"{here}.coverage_foreground_weight", foreground, 0.0, 1.0, low_open=True)
        initial = {o: 1.0 for o in OBJECTIVES}
        final = {o: 1.0 for o in OBJECTIVES}
        seen = set()
        for j, objective in enumerate(target.objectives):
            where = f"{here}.objectives[{j}]"
            if objective.name not in OBJECTIVES:
                check.fail(
                    f"{where}.name",
                    f"unknown objective {objective.name!r}; one of {', '.join(OBJECTIVES)}",
                )
            if objective.name in seen:
                check.fail(f"{where}.name", f"objective {objective.name!r} given twice")
            seen.add(objective.name)
            for field_name, store in (("initial_weight", initial), ("weight_target", final)):
                value = shortest_float32(getattr(objective, field_name))
                if not (value >= 0 and math.isfinite(value)):
                    check.fail(f"{where}.{field_name}", f"must be >= 0, got {value:g}")
                store[objective.name] = value
            if initial[objective.name] == 0 and final[objective.name] == 0:
                check.fail(where, f"objective {objective.name!r} has weight 0 throughout")
        classes.append(
            CostClass(
                class_weight=weight,
                coverage_foreground_weight=foreground,
                initial_weights=(initial["cov"], initial["bbox"]),
                target_weights=(final["cov"], final["bbox"]),
            )
        )
    low = check.float_field(cc, "min_objective_weight", f"{at}.min_objective_weight", 1e-4)
    high = check.float_field(cc, "max_objective_weight", f"{at}.max_objective_weight", 0.9999)
    check.in_range(f"{at}.min_objective_weight", low, 0.0, 1.0)
    check.in_range(f"{at}.max_objective_weight", high, low, 1.0)
    return CostSpec(tuple(classes), cc.enable_autoweighting, low, high)


def _training(proto: pb.Experiment, check: Checker, base: Path) -> TrainingSpec:
    tc = check.section(proto, "training_config", required=True)
    at = "training_config"
    batch = check.int_field(tc, "batch_size_per_gpu", f"{at}.batch_size_per_gpu", None)
    epochs = check.int_field(tc, "num_epochs", f"{at}.num_epochs", None)
    low, high, soft_start, annealing = check.soft_start_annealing(tc, at, "002")
    weight = check.regularizer_weight(tc, at)
    if tc.HasField("optimizer"):
        adam = tc.optimizer.adam
        for name in ("beta1", "beta2"):
            value = shortest_float32(getattr(adam, name))
            check.in_range(f"{at}.optimizer.adam.{name}", value, 0.0, 1.0, high_open=True)
        if not shortest_float32(adam.epsilon) > 0:
            check.fail(f"{at}.optimizer.adam.epsilon", "must be positive")
    if tc.cost_scaling.enabled:
        check.fail(
            f"{at}.cost_scaling.enabled",
            "cost scaling is for FP16 training, which is not built; set it to False",
        )
    paths = {name: getattr(tc, name) or None for name in ("resume_model_path", "pruned_model_path")}
    given = [name for name, value in paths.items() if value]
    if len(given) > 1:
        check.fail(f"{at}.{given[1]}", f"give at most one of {', '.join(paths)}")
    pretrained = proto.model_config.pretrained_model_file or None
    if pretrained and given:
        check.fail(f"{at}.{given[0]}", "model_config.pretrained_model_file is also set")
    return TrainingSpec(
        batch_size_per_gpu=batch,
        num_epochs=epochs,
        min_learning_rate=low,
        max_learning_rate=high,
        soft_start=soft_start,
        annealing=annealing,
        regularizer=pb.RegularizerConfig.RegularizationType.Name(tc.regularizer.type),
        regularizer_weight=weight,
        checkpoint_interval=check.int_field(
            tc, "checkpoint_interval", f"{at}.checkpoint_interval", 1
        ),
        pretrain_model_path=resolve_path(pretrained, base),
        resume_model_path=resolve_path(paths["resume_model_path"], base),
        pruned_model_path=resolve_path(paths["pruned_model_path"], base),
    )


def _augmentation(
    proto: pb.Experiment, check: Checker
) -> tuple[AugmentationSpec, tuple[float, float]]:
    ac = check.section(proto, "augmentation_config", required=True)
    at = "augmentation_config"
    pp = check.section(ac, "preprocessing", required=False)
    pp_at = f"{at}.preprocessing"
    if not ac.HasField("preprocessing"):
        check.fail(pp_at, "required section is missing (output_image_width/height)")
    width = check.int_field(pp, "output_image_width", f"{pp_at}.output_image_width", None)
    height = check.int_field(pp, "output_image_height", f"{pp_at}.output_image_height", None)
    for name, value in (("output_image_width", width), ("output_image_height", height)):
        if value % STRIDE:
            check.fail(f"{pp_at}.{name}", f"must be a multiple of {STRIDE}, got {value}")
    channels = check.int_field(pp, "output_image_channel", f"{pp_at}.output_image_channel", 3)
    if channels != 3:
        check.fail(f"{pp_at}.output_image_channel", f"only 3 (colour) is built, got {channels}")
    for name in ("crop_left", "crop_top", "crop_right", "crop_bottom"):
        if getattr(pp, name):
            check.fail(f"{pp_at}.{name}", "cropping in preprocessing is not built; remove it")
    min_w, min_h = shortest_float32(pp.min_bbox_width), shortest_float32(pp.min_bbox_height)
    for name, value in (("min_bbox_width", min_w), ("min_bbox_height", min_h)):
        if not (value >= 0 and math.isfinite(value)):
            check.fail(f"{pp_at}.{name}", f"must be >= 0, got {value:g}")

    sa = ac.spatial_augmentation
    sa_at = f"{at}.spatial_augmentation"
    hflip = shortest_float32(sa.hflip_probability)
    check.in_range(f"{sa_at}.hflip_probability", hflip, 0.0, 1.0)
    if sa.vflip_probability:
        check.fail(f"{sa_at}.vflip_probability", "vertical flip is not built; set it to 0")
    if sa.rotate_rad_max:
        check.fail(f"{sa_at}.rotate_rad_max", "rotation is not built; set it to 0")
    zoom_min = check.float_field(sa, "zoom_min", f"{sa_at}.zoom_min", 1.0)
    zoom_max = check.float_field(sa, "zoom_max", f"{sa_at}.zoom_max", 1.0)
    if not zoom_min > 0:
        check.fail(f"{sa_at}.zoom_min", f"must be positive, got {zoom_min:g}")
    if not zoom_max >= zoom_min:
        check.fail(f"{sa_at}.zoom_max", f"must be at least zoom_min ({zoom_min:g})")
    for name in ("translate_max_x", "translate_max_y"):
        value = shortest_float32(getattr(sa, name))
        if not (value >= 0 and math.isfinite(value)):
            check.fail(f"{sa_at}.{name}", f"must be >= 0, got {value:g}")

    ca = ac.color_augmentation
    ca_at = f"{at}.color_augmentation"
    hue = shortest_float32(ca.hue_rotation_max)
    check.in_range(f"{ca_at}.hue_rotation_max", hue, 0.0, 180.0)
    saturation = shortest_float32(ca.saturation_shift_max)
    check.in_range(f"{ca_at}.saturation_shift_max", saturation, 0.0, 1.0, high_open=True)
    contrast = shortest_float32(ca.contrast_scale_max)
    check.in_range(f"{ca_at}.contrast_scale_max", contrast, 0.0, 1.0, high_open=True)
    shift = shortest_float32(ca.color_shift_stddev)
    check.in_range(f"{ca_at}.color_shift_stddev", shift, 0.0, 1.0)
    center = check.float_field(ca, "contrast_center", f"{ca_at}.contrast_center", 0.5)
    check.in_range(f"{ca_at}.contrast_center", center, 0.0, 1.0)

    spec = AugmentationSpec(
        output_width=width,
        output_height=height,
        hflip_probability=hflip,
        zoom_min=zoom_min,
        zoom_max=zoom_max,
        translate_max_x=shortest_float32(sa.translate_max_x),
        translate_max_y=shortest_float32(sa.translate_max_y),
        hue_rotation_max=hue,
        saturation_shift_max=saturation,
        contrast_scale_max=contrast,
        contrast_center=center,
        color_shift_stddev=shift,
    )
    return spec, (min_w, min_h)


def _clustering(proto: pb.Experiment, check: Checker, class_names) -> tuple[ClusteringSpec, ...]:
    pc = check.section(proto, "postprocessing_config", required=True)
    at = "postprocessing_config.target_class_config"
    found = _per_class_map(check, pc.target_class_config, at, class_names)
    out = []
    for name in class_names:
        key, entry = found[name]
        here = f"{at}['{key}'].value.clustering_config"
        if not entry.HasField("clustering_config"):
            check.fail(f"{at}['{key}'].value", "clustering_config is missing")
        cc = entry.clustering_config
        threshold = shortest_float32(cc.coverage_threshold)
        check.in_range(f"{here}.coverage_threshold", threshold, 0.0, 1.0, high_open=True)
        eps = shortest_float32(cc.dbscan_eps)
        check.in_range(f"{here}.dbscan_eps", eps, 0.0, 1.0, low_open=True)
        min_samples = shortest_float32(cc.dbscan_min_samples)
        if not (min_samples >= 0 and math.isfinite(min_samples)):
            check.fail(f"{here}.dbscan_min_samples", f"must be >= 0, got {min_samples:g}")
        out.append(
            ClusteringSpec(
                coverage_threshold=threshold,
                dbscan_eps=eps,
                dbscan_min_samples=min_samples,
                minimum_bounding_box_height=float(cc.minimum_bounding_box_height),
            )
        )
    return tuple(out)


def _source(check: Checker, source: pb.DataSource, at: str, base: Path) -> DataSource:
    if source.tfrecords_path:
        if source.label_directory_path:
            check.fail(
                f"{at}.label_directory_path",
                "give tfrecords_path or label_directory_path, not both",
            )
    else:
        if not source.label_directory_path:
            check.fail(at, "needs tfrecords_path, or label_directory_path and image_directory_path")
        if not source.image_directory_path:
            check.fail(f"{at}.image_directory_path", "required with label_directory_path")
    return DataSource(
        label_directory_path=resolve_path(source.label_directory_path, base),
        image_directory_path=resolve_path(source.image_directory_path, base),
        tfrecords_path=resolve_path(source.tfrecords_path, base),
    )


def _sources(proto: pb.Experiment, check: Checker, base: Path):
    dc = proto.dataset_config
    at = "dataset_config"
    train = tuple(
        _source(check, s, f"{at}.data_sources[{i}]", base) for i, s in enumerate(dc.data_sources)
    )
    if not train:
        check.fail(f"{at}.data_sources", "at least one training data source is needed")
    if dc.image_extension and dc.image_extension.lower().lstrip(".") not in ("jpg", "jpeg", "png"):
        check.fail(f"{at}.image_extension", f"jpg, jpeg or png, got {dc.image_extension!r}")
    fold = dc.validation_fold if dc.HasField("validation_fold") else None
    if dc.HasField("validation_data_source"):
        if fold is not None:
            check.fail(
                f"{at}.validation_fold",
                "give validation_fold or validation_data_source, not both (002: remove the "
                "validation_fold field when validating on other TFRecords)",
            )
        val = (_source(check, dc.validation_data_source, f"{at}.validation_data_source", base),)
    elif fold is not None:
        for i, source in enumerate(train):
            if not source.tfrecords_path:
                check.fail(
                    f"{at}.data_sources[{i}]",
                    "validation_fold needs TFRecord sources (from tlt dataset-convert)",
                )
        val = ()
    else:
        val = ()
    return train, val, fold


def _evaluation(proto: pb.Experiment, check: Checker, class_names, batch: int) -> DetectNetEvalSpec:
    ec = proto.evaluation_config
    at = "evaluation_config"
    period = check.int_field(
        ec,
        "validation_period_during_training",
        f"{at}.validation_period_during_training",
        10,
    )
    first = check.int_field(
        ec, "first_validation_epoch", f"{at}.first_validation_epoch", 1, positive=True
    )
    overlaps = ec.minimum_detection_ground_truth_overlap
    over_at = f"{at}.minimum_detection_ground_truth_overlap"
    thresholds = dict.fromkeys(class_names, 0.5)
    for key in sorted(overlaps, key=lambda k: (check.line_of(f"{over_at}['{k}']"), k)):
        name = key.strip().lower()
        if name not in class_names:
            check.fail(
                f"{over_at}['{key}']",
                f"{key!r} is not a target class; target classes: {', '.join(class_names)}",
            )
        value = shortest_float32(overlaps[key])
        check.in_range(f"{over_at}['{key}'].value", value, 0.0, 1.0, low_open=True)
        thresholds[name] = value
    buckets: dict[str, Bucket] = {}
    bucket_at = f"{at}.evaluation_bucket_config"
    for key in sorted(
        ec.evaluation_bucket_config, key=lambda k: (check.line_of(f"{bucket_at}['{k}']"), k)
    ):
        entry = ec.evaluation_bucket_config[key]
        here = f"{bucket_at}['{key}'].value"
        if entry.maximum_height < entry.minimum_height:
            check.fail(f"{here}.maximum_height", "must be at least minimum_height")
        if entry.maximum_occlusion < entry.minimum_occlusion:
            check.fail(f"{here}.maximum_occlusion", "must be at least minimum_occlusion")
        low = shortest_float32(entry.truncation.minimum)
        high = shortest_float32(entry.truncation.maximum)
        check.in_range(f"{here}.truncation.minimum", low, 0.0, 1.0)
        check.in_range(f"{here}.truncation.maximum", high, low, 1.0)
        buckets[key] = Bucket(
            minimum_height=float(entry.minimum_height),
            maximum_height=float(entry.maximum_height),
            minimum_occlusion=int(entry.minimum_occlusion),
            maximum_occlusion=int(entry.maximum_occlusion),
            minimum_truncation=low,
            maximum_truncation=high,
        )
    return DetectNetEvalSpec(
        validation_period_during_training=period,
        first_validation_epoch=first,
        iou_thresholds=tuple(thresholds[c] for c in class_names),
        buckets=buckets,
        average_precision_mode=pb.EvaluationConfig.AP_MODE.Name(ec.average_precision_mode),
        batch_size=check.int_field(ec, "batch_size", f"{at}.batch_size", batch),
    )


def _rewritten(path: str) -> str:
    return path if path.endswith(" (rewritten)") else f"{path} (rewritten)"


def _source_proto(source: Any, path: str) -> pb.DataSource:
    if isinstance(source, Mapping):
        try:
            source = DataSource(**dict(source))
        except TypeError as error:
            raise SpecError(f"not a data source: {source!r} ({error})", _rewritten(path)) from None
    return pb.DataSource(
        tfrecords_path=source.tfrecords_path or "",
        image_directory_path=source.image_directory_path or "",
        label_directory_path=source.label_directory_path or "",
    )


def _absolutize(proto: pb.Experiment, base: Path) -> None:
    dc = proto.dataset_config
    sources = list(dc.data_sources)
    if dc.HasField("validation_data_source"):
        sources.append(dc.validation_data_source)
    for source in sources:
        for name in ("tfrecords_path", "image_directory_path", "label_directory_path"):
            setattr(source, name, resolve_path(getattr(source, name), base) or "")
    mc, tc = proto.model_config, proto.training_config
    mc.pretrained_model_file = resolve_path(mc.pretrained_model_file, base) or ""
    for name in ("resume_model_path", "pruned_model_path"):
        setattr(tc, name, resolve_path(getattr(tc, name), base) or "")


def _class_mapping(proto: pb.Experiment, check: Checker) -> dict[str, str]:
    """``target_class_mapping``: the shared rules (the same field as SSD's)."""
    return resolve_class_mapping(proto.dataset_config.target_class_mapping, check)


# -- validation folds ------------------------------------------------------------------------
def fold_sources(experiment: DetectNetExperiment, *, training: bool) -> tuple[DataSource, ...]:
    """The data sources of training or validation, with ``validation_fold`` applied.

    Without a fold (or with ``validation_data_source``) these are the spec's sources. With
    one, each TFRecord pattern is expanded and split by the ``-fold-NNN-of-MMM-`` part of
    the shard names ``tlt dataset-convert`` writes: training gets every other fold.
    """
    fold = experiment.validation_fold
    if fold is None:
        return experiment.data_sources if training else experiment.validation_data_sources
    kept = []
    for i, source in enumerate(experiment.data_sources):
        files = sorted(glob.glob(source.tfrecords_path))
        folds = {path: _FOLD.search(Path(path).name) for path in files}
        unnamed = [p for p, m in folds.items() if m is None]
        if unnamed:
            raise SpecError(
                f"validation_fold {fold}: {unnamed[0]} is not a shard of tlt dataset-convert "
                "(no -fold-NNN-of-MMM- in its name)",
                experiment.path,
                field=f"dataset_config.data_sources[{i}].tfrecords_path",
            )
        counts = {int(m.group(2)) for m in folds.values()}
        if files and fold >= max(counts):
            raise SpecError(
                f"validation_fold {fold}: the TFRecords have {max(counts)} folds (0-based)",
                experiment.path,
                field="dataset_config.validation_fold",
            )
        for path, match in folds.items():
            if (int(match.group(1)) == fold) != training:
                kept.append(DataSource(tfrecords_path=path))
    return tuple(kept)
