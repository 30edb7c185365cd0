"""Validate a parsed SSD experiment message and resolve its views.

Each ``resolve_*`` function reads one section, applies defaults, checks every rule and
raises a located `SpecError` (through `Checker`) on the first problem.

Resolution rules (where a value is derived rather than read):
- ``scales``: as written (n_layers + 1 values), or from ``min_scale``/``max_scale`` as
  ``n_layers + 1`` evenly spaced values ``min + i * (max - min) / n_layers`` (numpy
  ``linspace``, as keras-ssd and TLT do).
- ``aspect_ratios``: as written (one list per predictor layer), or
  ``aspect_ratios_global`` repeated for each layer.
- ``steps`` / ``offsets``: each element as a (vertical, horizontal) pair; a single number
  stands for both. Absent: None (the anchor generator then spaces anchors evenly over the
  feature map, offset 0.5).
- Absent optional scalars take the defaults documented in 000 (augmentation, eval, nms),
  TAO's defaults where 000 gives none (max_queue_size 16, checkpoint_interval 1);
  ``n_workers`` absent is 0: the input pipeline's parallelism is tuned by tf.data, and ``eval_config.batch_size`` defaults to
  ``batch_size_per_gpu``. ``image_mean`` defaults to the ImageNet mean.
- Relative paths in the spec (data sources, model paths) are relative to the directory
  of the spec file (the working directory for a spec given as text); ``s3://``-style
  URIs are kept as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tlt_core.networks.ssd import ssd_experiment_pb2 as pb
from tlt_core.networks.ssd.views import (
    AnchorSpec,
    AugmentationSpec,
    BackboneSpec,
    DataSource,
    EvalSpec,
    NmsSpec,
    TrainingSpec,
)
from tlt_core.spec.archs import ARCHITECTURES
from tlt_core.spec.check import Checker, resolve_path
from tlt_core.spec.check import resolve_class_mapping as shared_class_mapping
from tlt_core.spec.listexpr import NestedList
from tlt_core.spec.textparse import shortest_float32

N_PREDICTOR_LAYERS = 6
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_GRAY = 117.3786
# TensorRT's NMS sorts FP16 scores on their exponent and top mantissa bits (10 in FP16).
MAX_NMS_SCORE_BITS = 10
# 000, "Input Requirement": W >= 128, H >= 128; augmentation_config: multiples of 32.
MIN_INPUT_SIDE = 128
INPUT_SIDE_MULTIPLE = 32

AUGMENTATION_DEFAULTS: dict[str, float] = {
    "random_crop_min_scale": 0.3,
    "random_crop_max_scale": 1.0,
    "random_crop_min_ar": 0.5,
    "random_crop_max_ar": 2.0,
    "zoom_out_min_scale": 1.0,
    "zoom_out_max_scale": 4.0,
    "brightness": 32,
    "contrast": 0.5,
    "saturation": 0.5,
    "hue": 18,
    "random_flip": 0.5,
}


def _positive_numbers(
    check: Checker, field_path: str, values: Sequence, what: str
) -> tuple[float, ...]:
    result = []
    for i, value in enumerate(values):
        if not isinstance(value, float):
            check.fail(field_path, f"element {i} must be a number, not a list ({what})")
        if not value > 0:
            check.fail(field_path, f"element {i} must be positive, got {value:g} ({what})")
        result.append(value)
    return tuple(result)


def _pairs(
    check: Checker, field_path: str, values: NestedList, *, offsets: bool
) -> tuple[tuple[float, float], ...]:
    if len(values) != N_PREDICTOR_LAYERS:
        check.fail(
            field_path,
            f"expected {N_PREDICTOR_LAYERS} values (one per predictor layer), got {len(values)}",
        )
    result = []
    for i, value in enumerate(values):
        pair = (value, value) if isinstance(value, float) else tuple(value)
        if len(pair) != 2 or not all(isinstance(v, float) for v in pair):
            check.fail(field_path, f"element {i} must be a number or a pair of numbers")
        for v in pair:
            valid = 0.0 <= v < 1.0 if offsets else v > 0.0
            if not valid:
                rule = "in [0, 1)" if offsets else "positive"
                check.fail(field_path, f"element {i} must be {rule}, got {v:g}")
        result.append((pair[0], pair[1]))
    return tuple(result)


def resolve_ssd_config(proto: pb.Experiment, check: Checker) -> tuple[AnchorSpec, BackboneSpec]:
    ssd = check.section(proto, "ssd_config", required=True)
    n = N_PREDICTOR_LAYERS

    # Backbone.
    arch = ssd.arch
    if not arch:
        check.fail(
            "ssd_config.arch", f"required field is missing; one of {', '.join(ARCHITECTURES)}"
        )
    if arch not in ARCHITECTURES:
        check.fail("ssd_config.arch", f"unknown arch {arch!r}; one of {', '.join(ARCHITECTURES)}")
    info = ARCHITECTURES[arch]
    nlayers = None
    if info.nlayers:
        if not ssd.HasField("nlayers"):
            check.fail(
                "ssd_config.nlayers",
                f"required for {arch}: one of {', '.join(map(str, info.nlayers))}",
            )
        nlayers = ssd.nlayers
        if nlayers not in info.nlayers:
            check.fail(
                "ssd_config.nlayers",
                f"{arch} supports nlayers {', '.join(map(str, info.nlayers))}, got {nlayers}",
            )
    elif ssd.HasField("nlayers"):
        check.fail("ssd_config.nlayers", f"{arch} takes no nlayers; remove the field")
    blocks = check.freeze_blocks(
        ssd.freeze_blocks, "ssd_config.freeze_blocks", arch, info.freeze_blocks
    )
    backbone = BackboneSpec(arch, nlayers, ssd.freeze_bn, blocks)

    # Scales: exactly one of scales, or min_scale and max_scale.
    scales_list = check.number_list(ssd, "scales", "ssd_config.scales")
    has_min, has_max = ssd.HasField("min_scale"), ssd.HasField("max_scale")
    if scales_list is not None:
        if has_min or has_max:
            check.fail("ssd_config.scales", "give either scales or min_scale/max_scale, not both")
        if len(scales_list) != n + 1:
            check.fail(
                "ssd_config.scales",
                f"expected {n + 1} values (predictor layers + 1), got {len(scales_list)}",
            )
        scales = _positive_numbers(check, "ssd_config.scales", scales_list, "a scale")
    else:
        if not (has_min or has_max):
            check.fail("ssd_config", "give scales, or min_scale and max_scale")
        if not (has_min and has_max):
            missing = "max_scale" if has_min else "min_scale"
            check.fail(
                f"ssd_config.{missing}", f"required with {'min_scale' if has_min else 'max_scale'}"
            )
        low = check.float_field(ssd, "min_scale", "ssd_config.min_scale", None)
        high = check.float_field(ssd, "max_scale", "ssd_config.max_scale", None)
        if not low > 0:
            check.fail("ssd_config.min_scale", f"must be positive, got {low:g}")
        if not high > low:
            check.fail(
                "ssd_config.max_scale", f"must be greater than min_scale ({low:g}), got {high:g}"
            )
        # Evenly spaced like numpy.linspace(low, high, n + 1), exact at both ends.
        step = (high - low) / n
        scales = (*tuple(low + i * step for i in range(n)), high)

    # Aspect ratios: exactly one of the per-layer lists or the global list.
    per_layer = check.number_list(ssd, "aspect_ratios", "ssd_config.aspect_ratios")
    global_list = check.number_list(ssd, "aspect_ratios_global", "ssd_config.aspect_ratios_global")
    if per_layer is not None and global_list is not None:
        check.fail(
            "ssd_config.aspect_ratios_global",
            "give either aspect_ratios or aspect_ratios_global, not both",
        )
    if per_layer is None and global_list is None:
        check.fail("ssd_config", "give aspect_ratios or aspect_ratios_global")
    if per_layer is not None:
        if len(per_layer) != n:
            check.fail(
                "ssd_config.aspect_ratios",
                f"expected {n} lists (one per predictor layer), got {len(per_layer)}",
            )
        ratios = []
        for i, layer in enumerate(per_layer):
            if not isinstance(layer, list) or not layer:
                check.fail("ssd_config.aspect_ratios", f"element {i} must be a non-empty list")
            ratios.append(_positive_numbers(check, "ssd_config.aspect_ratios", layer, f"layer {i}"))
        aspect_ratios = tuple(ratios)
    elif global_list is not None:
        if not global_list:
            check.fail("ssd_config.aspect_ratios_global", "must not be empty")
        layer = _positive_numbers(
            check, "ssd_config.aspect_ratios_global", global_list, "an aspect ratio"
        )
        aspect_ratios = (layer,) * n

    variances_list = check.number_list(ssd, "variances", "ssd_config.variances")
    if variances_list is None:
        check.fail(
            "ssd_config.variances", 'required field is missing (e.g. "[0.1, 0.1, 0.2, 0.2]")'
        )
    if len(variances_list) != 4:
        check.fail("ssd_config.variances", f"expected 4 values, got {len(variances_list)}")
    variances = _positive_numbers(check, "ssd_config.variances", variances_list, "a variance")

    steps_list = check.number_list(ssd, "steps", "ssd_config.steps")
    offsets_list = check.number_list(ssd, "offsets", "ssd_config.offsets")
    steps = (
        None if steps_list is None else _pairs(check, "ssd_config.steps", steps_list, offsets=False)
    )
    offsets = (
        None
        if offsets_list is None
        else _pairs(check, "ssd_config.offsets", offsets_list, offsets=True)
    )
    anchors = AnchorSpec(
        scales=scales,
        aspect_ratios=aspect_ratios,
        two_boxes_for_ar1=ssd.two_boxes_for_ar1,
        variances=variances,  # type: ignore[arg-type]
        clip_boxes=ssd.clip_boxes,
        steps=steps,
        offsets=offsets,
    )
    return anchors, backbone


def resolve_training(proto: pb.Experiment, check: Checker, base_dir: Path) -> TrainingSpec:
    tc = check.section(proto, "training_config", required=True)
    prefix = "training_config"
    batch = check.int_field(tc, "batch_size_per_gpu", f"{prefix}.batch_size_per_gpu", None)
    epochs = check.int_field(tc, "num_epochs", f"{prefix}.num_epochs", None)

    low, high, soft_start, annealing = check.soft_start_annealing(tc, prefix, "SSD")
    weight = check.regularizer_weight(tc, prefix)
    regularizer = pb.RegularizerConfig.RegularizationType.Name(tc.regularizer.type)

    model_paths = {
        name: getattr(tc, name) or None
        for name in ("pretrain_model_path", "resume_model_path", "pruned_model_path")
    }
    given = [name for name, value in model_paths.items() if value]
    if len(given) > 1:
        check.fail(
            f"{prefix}.{given[1]}",
            f"give at most one of {', '.join(model_paths)}; {given[0]} is also set",
        )
    # Keras-Sequence loader settings of TLT; the tf.data pipeline here has no queue or
    # worker processes (n_workers does have a meaning: the pipeline's parallel calls).
    if tc.HasField("max_queue_size"):
        check.note(f"{prefix}.max_queue_size", NO_EFFECT)
    if tc.use_multiprocessing:
        check.note(f"{prefix}.use_multiprocessing", NO_EFFECT)
    return TrainingSpec(
        batch_size_per_gpu=batch,
        num_epochs=epochs,
        enable_qat=tc.enable_qat,
        min_learning_rate=low,
        max_learning_rate=high,
        soft_start=soft_start,
        annealing=annealing,
        regularizer=regularizer,
        regularizer_weight=weight,
        max_queue_size=check.int_field(tc, "max_queue_size", f"{prefix}.max_queue_size", 16),
        n_workers=check.int_field(tc, "n_workers", f"{prefix}.n_workers", 0),
        use_multiprocessing=tc.use_multiprocessing,
        checkpoint_interval=check.int_field(
            tc, "checkpoint_interval", f"{prefix}.checkpoint_interval", 1
        ),
        **{name: resolve_path(value, base_dir) for name, value in model_paths.items()},
    )


NO_EFFECT = (
    "accepted for compatibility with TLT's spec; it has no effect here (tf.data loads "
    "the data: no Keras queue or worker processes)"
)


def resolve_eval(proto: pb.Experiment, check: Checker, training: TrainingSpec) -> EvalSpec:
    ec = check.section(proto, "eval_config", required=False)
    prefix = "eval_config"
    iou = check.float_field(ec, "matching_iou_threshold", f"{prefix}.matching_iou_threshold", 0.5)
    check.in_range(f"{prefix}.matching_iou_threshold", iou, 0.0, 1.0, low_open=True)
    return EvalSpec(
        validation_period_during_training=check.int_field(
            ec,
            "validation_period_during_training",
            f"{prefix}.validation_period_during_training",
            10,
        ),
        average_precision_mode=pb.EvalConfig.AP_MODE.Name(ec.average_precision_mode),
        batch_size=check.int_field(
            ec, "batch_size", f"{prefix}.batch_size", training.batch_size_per_gpu
        ),
        matching_iou_threshold=iou,
    )


def resolve_nms(proto: pb.Experiment, check: Checker) -> NmsSpec:
    nc = check.section(proto, "nms_config", required=False)
    prefix = "nms_config"
    confidence = check.float_field(
        nc, "confidence_threshold", f"{prefix}.confidence_threshold", 0.01
    )
    check.in_range(f"{prefix}.confidence_threshold", confidence, 0.0, 1.0)
    # 000's table names the field cluster_iou_threshold, its sample
    # clustering_iou_threshold: either spelling, not both.
    iou_name = "clustering_iou_threshold"
    if nc.HasField("cluster_iou_threshold"):
        if nc.HasField("clustering_iou_threshold"):
            check.fail(
                f"{prefix}.cluster_iou_threshold",
                "same field as clustering_iou_threshold, which is also given: keep one",
            )
        iou_name = "cluster_iou_threshold"
    iou = check.float_field(nc, iou_name, f"{prefix}.{iou_name}", 0.6)
    check.in_range(f"{prefix}.{iou_name}", iou, 0.0, 1.0, low_open=True)
    score_bits = int(nc.infer_nms_score_bits)
    if score_bits:  # 0 (absent): ordinary NMS, TLT's default
        # Its meaning here: NMS orders candidates on FP16 scores cut to that many mantissa
        # bits, as TensorRT OSS's NMS plugin does (tlt_core.boxes.nms rule 6), in the
        # shared NMS and the exported graph alike.
        check.in_range(f"{prefix}.infer_nms_score_bits", score_bits, 1, MAX_NMS_SCORE_BITS)
    return NmsSpec(
        confidence_threshold=confidence,
        clustering_iou_threshold=iou,
        top_k=check.int_field(nc, "top_k", f"{prefix}.top_k", 200),
        infer_nms_score_bits=score_bits,
    )


# Bounds on the network input, checked at spec load: past them the model's activations do
# not fit in memory and TensorFlow fails late with a long resource-exhausted dump.
MAX_INPUT_SIDE = 4096
MAX_INPUT_PIXELS = 3840 * 2160


def resolve_augmentation(proto: pb.Experiment, check: Checker) -> AugmentationSpec:
    ac = check.section(proto, "augmentation_config", required=True)
    prefix = "augmentation_config"
    width = check.int_field(ac, "output_width", f"{prefix}.output_width", None)
    height = check.int_field(ac, "output_height", f"{prefix}.output_height", None)
    channels = check.int_field(ac, "output_channel", f"{prefix}.output_channel", 3)
    # 000's augmentation table asks for multiples of 32 and its training section for
    # W, H >= 128, yet its own sample spec is 300x300, which this tlt must accept unchanged,
    # and nothing here fails on other sizes (every predictor map is at least 1x1): neither
    # limit is enforced (MIN_INPUT_SIDE, INPUT_SIDE_MULTIPLE document them).
    for name, side in (("output_width", width), ("output_height", height)):
        if side > MAX_INPUT_SIDE:
            check.fail(f"{prefix}.{name}", f"{side} is above the {MAX_INPUT_SIDE} this tlt trains")
    if width * height > MAX_INPUT_PIXELS:
        check.fail(
            f"{prefix}.output_width",
            f"{width}x{height} input: more than the {MAX_INPUT_PIXELS} pixels (4K UHD) "
            "this tlt trains",
        )
    if channels not in (1, 3):
        check.fail(f"{prefix}.output_channel", f"must be 3 (BGR) or 1 (grayscale), got {channels}")

    values: dict[str, float] = {}
    for name, default in AUGMENTATION_DEFAULTS.items():
        if name in ("brightness", "hue"):
            values[name] = check.int_field(
                ac, name, f"{prefix}.{name}", int(default), positive=False
            )
        else:
            values[name] = check.float_field(ac, name, f"{prefix}.{name}", default)

    def at(name: str) -> str:
        return f"{prefix}.{name}"

    crop_min, crop_max = values["random_crop_min_scale"], values["random_crop_max_scale"]
    check.in_range(at("random_crop_min_scale"), crop_min, 0.0, 1.0, low_open=True)
    check.in_range(at("random_crop_max_scale"), crop_max, crop_min, 1.0)
    ar_min, ar_max = values["random_crop_min_ar"], values["random_crop_max_ar"]
    if not ar_min > 0:
        check.fail(at("random_crop_min_ar"), f"must be positive, got {ar_min:g}")
    if not ar_max >= ar_min:
        check.fail(
            at("random_crop_max_ar"),
            f"must be at least random_crop_min_ar ({ar_min:g}), got {ar_max:g}",
        )
    zoom_min, zoom_max = values["zoom_out_min_scale"], values["zoom_out_max_scale"]
    if not zoom_min >= 1.0:
        check.fail(at("zoom_out_min_scale"), f"must be >= 1, got {zoom_min:g}")
    if not zoom_max >= zoom_min:
        check.fail(
            at("zoom_out_max_scale"),
            f"must be at least zoom_out_min_scale ({zoom_min:g}), got {zoom_max:g}",
        )
    check.in_range(at("brightness"), values["brightness"], 0, 255)
    check.in_range(at("contrast"), values["contrast"], 0.0, 1.0, high_open=True)
    check.in_range(at("saturation"), values["saturation"], 0.0, 1.0, high_open=True)
    check.in_range(at("hue"), values["hue"], 0, 180)
    check.in_range(at("random_flip"), values["random_flip"], 0.0, 1.0, high_open=True)

    expected_keys = ("r", "g", "b") if channels == 3 else ("l",)
    if ac.image_mean:
        for key in sorted(ac.image_mean):
            if key not in expected_keys:
                check.fail(
                    f"{prefix}.image_mean['{key}']",
                    f"unknown key {key!r}; with "
                    f"output_channel {channels} the keys are {', '.join(expected_keys)}",
                )
        missing = [key for key in expected_keys if key not in ac.image_mean]
        if missing:
            check.fail(
                f"{prefix}.image_mean",
                f"missing key(s) {', '.join(missing)}; with "
                f"output_channel {channels} the keys are {', '.join(expected_keys)}",
            )
        image_mean = {}
        for key in expected_keys:
            value = shortest_float32(ac.image_mean[key])
            check.in_range(f"{prefix}.image_mean['{key}']", value, 0.0, 255.0)
            image_mean[key] = value
    elif channels == 3:
        image_mean = dict(zip("bgr", IMAGENET_MEAN_BGR, strict=True))
    else:
        image_mean = {"l": IMAGENET_MEAN_GRAY}
    return AugmentationSpec(
        output_width=width,
        output_height=height,
        output_channel=channels,
        random_crop_min_scale=crop_min,
        random_crop_max_scale=crop_max,
        random_crop_min_ar=ar_min,
        random_crop_max_ar=ar_max,
        zoom_out_min_scale=zoom_min,
        zoom_out_max_scale=zoom_max,
        brightness=int(values["brightness"]),
        contrast=values["contrast"],
        saturation=values["saturation"],
        hue=int(values["hue"]),
        random_flip=values["random_flip"],
        image_mean=image_mean,
    )


def resolve_sources(
    proto: pb.Experiment, check: Checker, base_dir: Path
) -> tuple[tuple[DataSource, ...], tuple[DataSource, ...]]:
    dc = check.section(proto, "dataset_config", required=True)
    resolved = []
    for name in ("data_sources", "validation_data_sources"):
        sources = []
        for i, source in enumerate(getattr(dc, name)):
            at = f"dataset_config.{name}[{i}]"
            if source.tfrecords_path:
                if source.label_directory_path:
                    check.fail(
                        f"{at}.label_directory_path",
                        "give tfrecords_path or label_directory_path, not both",
                    )
            else:
                if not source.label_directory_path:
                    check.fail(
                        at, "needs label_directory_path and image_directory_path, or tfrecords_path"
                    )
                if not source.image_directory_path:
                    check.fail(f"{at}.image_directory_path", "required with label_directory_path")
            sources.append(
                DataSource(
                    label_directory_path=resolve_path(source.label_directory_path, base_dir),
                    image_directory_path=resolve_path(source.image_directory_path, base_dir),
                    tfrecords_path=resolve_path(source.tfrecords_path, base_dir),
                )
            )
        resolved.append(tuple(sources))
    if not resolved[0]:
        check.fail("dataset_config.data_sources", "at least one training data source is needed")
    return resolved[0], resolved[1]


def resolve_class_mapping(proto: pb.Experiment, check: Checker) -> dict[str, str]:
    return shared_class_mapping(
        proto.dataset_config.target_class_mapping, check, reserved=("background",)
    )
