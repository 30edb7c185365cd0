"""The classification experiment spec (002, 11.1): `load_spec`, `parse_spec`, `ClassificationSpec`.

Parsing is the shared strict text-format parser (`tlt_core.spec.textparse`): an unknown
field names its close matches, every problem is a `SpecError` ``spec.txt:LINE: field:
message`` located by `tlt_core.spec.locate`. Validation and defaults are here, once:

- ``model_config``: ``arch`` and ``n_layers`` / ``freeze_blocks`` as the shared backbone
  table allows (`tlt_core.spec.archs.ARCHITECTURES`); ``input_image_size`` "3,H,W" with
  H, W >= 32. The shared backbones are built with batch norm, without conv biases and
  with projection shortcuts, so ``use_batch_norm: false``, ``use_bias: true`` and
  ``all_projections: false`` are refused rather than silently ignored.
- ``train_config``: ``train_dataset_path``, ``batch_size_per_gpu``, ``n_epochs`` and
  ``lr_config`` are required. Defaults: optimizer ``sgd`` (momentum 0.9), ``n_workers``
  8, ``preprocess_mode`` ``caffe`` (TLT's), random crop and centre crop on, colour
  augmentation off, no label smoothing or mixup, no regulariser, a checkpoint and a
  validation every epoch.
- ``lr_config``: the flat v0.3 form (``scheduler: "step"`` + its fields) or one nested
  block (``step {}``, ``soft_anneal {}``, ``cosine {}``), never both.
- ``eval_config``: ``top_k`` 5, ``batch_size`` = ``batch_size_per_gpu``, centre crop on.

Relative paths are relative to the spec file's directory.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tlt_core.errors import DataError, SpecError
from tlt_core.io_utils import write_text_atomic
from tlt_core.networks.classification import classification_experiment_pb2 as pb
from tlt_core.spec.archs import ARCHITECTURES
from tlt_core.spec.check import Checker, resolve_path
from tlt_core.spec.locate import SpecLocator
from tlt_core.spec.overrides import set_by_path
from tlt_core.spec.textparse import parse_message, read_spec_text, shortest_float32

OPTIMIZERS = ("sgd", "adam", "rmsprop")
PREPROCESS_MODES = ("caffe", "torch", "tf")
SCHEDULERS = ("step", "soft_anneal", "cosine")
REG_TYPES = ("L1", "L2", "None")
REG_SCOPES = ("Conv2D", "Dense")
MIN_IMAGE_SIDE = 32
DEFAULT_MOMENTUM = 0.9


@dataclass(frozen=True)
class LrSchedule:
    """The resolved learning-rate schedule (fields of the other kinds are left default)."""

    kind: str  # "step", "soft_anneal" or "cosine"
    learning_rate: float
    step_size: int = 0  # step: epochs between decays
    gamma: float = 0.1  # step: decay factor
    soft_start: float = 0.0  # soft_anneal, cosine: warm-up fraction of training
    annealing_points: tuple[float, ...] = ()  # soft_anneal: fractions of training
    annealing_divider: float = 10.0  # soft_anneal: divisor at each point
    min_lr_ratio: float = 0.0  # cosine: final lr / learning_rate


@dataclass(frozen=True)
class ClassificationSpec:
    """A validated classification spec; ``proto`` is read-only (use `with_paths`)."""

    path: str
    text: str = field(repr=False)
    proto: pb.Experiment = field(repr=False)
    base_dir: Path
    # model_config
    arch: str
    n_layers: int | None
    input_shape: tuple[int, int, int]  # (H, W, C)
    freeze_blocks: tuple[int, ...]
    freeze_bn: bool
    dropout: float
    # train_config
    train_dataset_path: str
    val_dataset_path: str | None
    pretrained_model_path: str | None
    optimizer: str
    momentum: float
    nesterov: bool
    batch_size_per_gpu: int
    n_epochs: int
    n_workers: int
    reg_type: str  # "L1", "L2" or "None"
    reg_scope: tuple[str, ...]
    weight_decay: float
    lr: LrSchedule
    train_random_seed: int
    random_crop: bool
    center_crop: bool
    color_augmentation: bool
    label_smoothing: float
    mixup_alpha: float
    preprocess_mode: str
    checkpoint_interval: int
    validation_period: int
    # eval_config
    eval_dataset_path: str | None
    eval_model_path: str | None
    top_k: int
    eval_batch_size: int
    eval_center_crop: bool
    # Set when the classes are known without the data (a model's, `with_class_names`).
    known_class_names: tuple[str, ...] | None = None

    @property
    def random_seed(self) -> int:
        return self.train_random_seed

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes in model order: the model's where known, else the sorted class
        directory names of the first dataset directory that exists (train, val, eval)."""
        if self.known_class_names is not None:
            return self.known_class_names
        from tlt_core.networks.classification.data import class_directory_names

        for path in (self.train_dataset_path, self.val_dataset_path, self.eval_dataset_path):
            if path and Path(path).is_dir():
                return class_directory_names(path)
        raise DataError(
            "no dataset directory of the spec exists, so its classes are unknown",
            self.train_dataset_path,
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def with_class_names(self, names) -> ClassificationSpec:
        """This spec with the classes fixed (a model's), whatever the data holds."""
        return dataclasses.replace(self, known_class_names=tuple(names))

    @property
    def arch_name(self) -> str:
        """``resnet18``, ``googlenet``: the name checkpoints carry."""
        return f"{self.arch}{self.n_layers if self.n_layers is not None else ''}"

    def to_text(self, *, absolute_paths: bool = False) -> str:
        proto = self.proto
        if absolute_paths:
            proto = copy.deepcopy(proto)
            _absolutize(proto, self.base_dir)
        return text_format.MessageToString(proto)

    def save(self, path: str | Path, *, absolute_paths: bool = True) -> Path:
        return write_text_atomic(path, self.to_text(absolute_paths=absolute_paths))

    def with_paths(
        self,
        *,
        train: str | Path | None = None,
        val: str | Path | None = None,
        evaluation: str | Path | None = None,
        n_epochs: int | None = None,
    ) -> ClassificationSpec:
        """A new spec reading other directories (``None`` keeps a value as it is)."""
        overrides: dict[str, Any] = {}
        for dotted, value in (
            ("train_config.train_dataset_path", train),
            ("train_config.val_dataset_path", val),
            ("eval_config.eval_dataset_path", evaluation),
        ):
            if value is not None:
                overrides[dotted] = str(value)
        if n_epochs is not None:
            overrides["train_config.n_epochs"] = int(n_epochs)
        return self.with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ClassificationSpec:
        """A new spec with fields set by dotted path (``{"train_config.n_epochs": 2}``;
        None clears a field), validated like a file; relative paths stay anchored."""
        proto = copy.deepcopy(self.proto)
        _absolutize(proto, self.base_dir)
        label = self.path if self.path.endswith(" (rewritten)") else f"{self.path} (rewritten)"
        for dotted, value in overrides.items():
            set_by_path(proto, dotted, value, label)
        text = text_format.MessageToString(proto)
        rebuilt = build_spec(proto, path=label, text=text, locator=None, base_dir=self.base_dir)
        return dataclasses.replace(rebuilt, known_class_names=self.known_class_names)

    def replace_data_sources(self, train: Any = None, val: Any = None) -> ClassificationSpec:
        """Read other dataset directories (a path, or a one-element list of one)."""

        def one(value: Any) -> str | None:
            if value is None:
                return None
            if isinstance(value, (list, tuple)):
                if len(value) != 1:
                    raise SpecError(
                        f"a classification dataset is one directory, got {len(value)}",
                        self.path,
                        None,
                        "train_config",
                    )
                value = value[0]
            return str(value)

        return self.with_paths(train=one(train), val=one(val))


def _absolutize(proto: pb.Experiment, base_dir: Path) -> None:
    tc, ec = proto.train_config, proto.eval_config
    for message, name in (
        (tc, "train_dataset_path"),
        (tc, "val_dataset_path"),
        (tc, "pretrained_model_path"),
        (ec, "eval_dataset_path"),
        (ec, "model_path"),
    ):
        if getattr(message, name):
            setattr(message, name, resolve_path(getattr(message, name), base_dir))


def load_spec(path: str | Path) -> ClassificationSpec:
    """Read, parse and validate a classification spec file."""
    text = read_spec_text(path)
    return parse_spec(text, path=str(path), base_dir=Path(path).absolute().parent)


def parse_spec(
    text: str, path: str = "<string>", base_dir: str | Path | None = None
) -> ClassificationSpec:
    proto = pb.Experiment()
    locator = parse_message(text, proto, path)
    return build_spec(
        proto,
        path=path,
        text=text,
        locator=locator,
        base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
    )


def build_spec(
    proto: pb.Experiment, *, path: str, text: str, locator: SpecLocator | None, base_dir: Path
) -> ClassificationSpec:
    check = Checker(path, locator)
    model = _resolve_model(proto, check)
    train = _resolve_train(proto, check, base_dir)
    evaluation = _resolve_eval(proto, check, base_dir, train["batch_size_per_gpu"])
    return ClassificationSpec(
        path=path, text=text, proto=proto, base_dir=base_dir, **model, **train, **evaluation
    )


# --- sections ---------------------------------------------------------------------------------


def _optional_bool(message, name: str, default: bool) -> bool:
    return bool(getattr(message, name)) if message.HasField(name) else default


def _resolve_model(proto: pb.Experiment, check: Checker) -> dict:
    mc = check.section(proto, "model_config", required=True)
    at = "model_config"
    if not mc.arch:
        check.fail(f"{at}.arch", f"required field is missing; one of {', '.join(ARCHITECTURES)}")
    if mc.arch not in ARCHITECTURES:
        check.fail(f"{at}.arch", f"unknown arch {mc.arch!r}; one of {', '.join(ARCHITECTURES)}")
    info = ARCHITECTURES[mc.arch]
    n_layers = None
    if info.nlayers:
        if not mc.HasField("n_layers"):
            check.fail(
                f"{at}.n_layers",
                f"required for {mc.arch}; one of {', '.join(map(str, info.nlayers))}",
            )
        if mc.n_layers not in info.nlayers:
            check.fail(
                f"{at}.n_layers",
                f"{mc.arch} has no {mc.n_layers}-layer variant; "
                f"one of {', '.join(map(str, info.nlayers))}",
            )
        n_layers = int(mc.n_layers)
    elif mc.HasField("n_layers"):
        check.fail(f"{at}.n_layers", f"{mc.arch} takes no n_layers")
    for i, block in enumerate(mc.freeze_blocks):
        if block not in info.freeze_blocks:
            check.fail(
                f"{at}.freeze_blocks[{i}]",
                f"{mc.arch} has no block {block}; valid ids "
                f"{min(info.freeze_blocks)}..{max(info.freeze_blocks)}",
            )
    input_shape = _input_shape(mc.input_image_size, check, f"{at}.input_image_size")
    for name, supported in (
        ("use_batch_norm", True),
        ("use_bias", False),
        ("all_projections", True),
    ):
        if mc.HasField(name) and bool(getattr(mc, name)) != supported:
            check.fail(
                f"{at}.{name}",
                f"the shared backbones are built with {name}: {str(supported).lower()}; "
                f"{str(not supported).lower()} is not supported",
            )
    dropout = check.float_field(mc, "dropout", f"{at}.dropout", 0.0)
    check.in_range(f"{at}.dropout", dropout, 0.0, 1.0, high_open=True)
    return {
        "arch": mc.arch,
        "n_layers": n_layers,
        "input_shape": input_shape,
        "freeze_blocks": tuple(int(b) for b in mc.freeze_blocks),
        "freeze_bn": bool(mc.freeze_bn),
        "dropout": dropout,
    }


def _input_shape(text: str, check: Checker, at: str) -> tuple[int, int, int]:
    if not text.strip():
        check.fail(at, 'required field is missing; "C,H,W", e.g. "3,224,224"')
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        check.fail(at, f'expected "C,H,W" (three integers), got {text!r}')
    channels, height, width = (int(p) for p in parts)
    if channels != 3:
        check.fail(at, f"only 3-channel (RGB) input is supported, got {channels} channels")
    if min(height, width) < MIN_IMAGE_SIDE:
        check.fail(at, f"height and width must be at least {MIN_IMAGE_SIDE}, got {height}x{width}")
    return (height, width, channels)


def _choice(check: Checker, at: str, value: str, choices, default: str | None) -> str:
    if not value:
        if default is None:
            check.fail(at, f"required field is missing; one of {', '.join(choices)}")
        return default
    if value not in choices:
        check.fail(at, f"unknown value {value!r}; one of {', '.join(choices)}")
    return value


def _resolve_train(proto: pb.Experiment, check: Checker, base_dir: Path) -> dict:
    tc = check.section(proto, "train_config", required=True)
    at = "train_config"
    if not tc.train_dataset_path:
        check.fail(f"{at}.train_dataset_path", "required field is missing")
    optimizer = _choice(check, f"{at}.optimizer", tc.optimizer, OPTIMIZERS, "sgd")
    momentum = check.float_field(tc, "momentum", f"{at}.momentum", DEFAULT_MOMENTUM)
    check.in_range(f"{at}.momentum", momentum, 0.0, 1.0, high_open=True)
    if tc.nesterov and optimizer != "sgd":
        check.fail(f"{at}.nesterov", f"applies to sgd only, the optimizer is {optimizer}")
    label_smoothing = check.float_field(tc, "label_smoothing", f"{at}.label_smoothing", 0.0)
    check.in_range(f"{at}.label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    mixup_alpha = check.float_field(tc, "mixup_alpha", f"{at}.mixup_alpha", 0.0)
    if mixup_alpha < 0:
        check.fail(f"{at}.mixup_alpha", f"must be >= 0, got {mixup_alpha:g}")
    reg_type, reg_scope, weight_decay = _resolve_reg(tc, check)
    n_epochs = check.int_field(tc, "n_epochs", f"{at}.n_epochs", None)
    return {
        "train_dataset_path": resolve_path(tc.train_dataset_path, base_dir),
        "val_dataset_path": resolve_path(tc.val_dataset_path, base_dir),
        "pretrained_model_path": resolve_path(tc.pretrained_model_path, base_dir),
        "optimizer": optimizer,
        "momentum": momentum,
        "nesterov": bool(tc.nesterov),
        "batch_size_per_gpu": check.int_field(
            tc, "batch_size_per_gpu", f"{at}.batch_size_per_gpu", None
        ),
        "n_epochs": n_epochs,
        "n_workers": check.int_field(tc, "n_workers", f"{at}.n_workers", 8),
        "reg_type": reg_type,
        "reg_scope": reg_scope,
        "weight_decay": weight_decay,
        "lr": _resolve_lr(tc, check, n_epochs),
        "train_random_seed": int(tc.random_seed),
        "random_crop": _optional_bool(tc, "enable_random_crop", True),
        "center_crop": _optional_bool(tc, "enable_center_crop", True),
        "color_augmentation": _optional_bool(tc, "enable_color_augmentation", False),
        "label_smoothing": label_smoothing,
        "mixup_alpha": mixup_alpha,
        "preprocess_mode": _choice(
            check, f"{at}.preprocess_mode", tc.preprocess_mode, PREPROCESS_MODES, "caffe"
        ),
        "checkpoint_interval": check.int_field(
            tc, "checkpoint_interval", f"{at}.checkpoint_interval", 1
        ),
        "validation_period": check.int_field(tc, "validation_period", f"{at}.validation_period", 1),
    }


def _resolve_reg(tc, check: Checker) -> tuple[str, tuple[str, ...], float]:
    at = "train_config.reg_config"
    if not tc.HasField("reg_config"):
        return "None", (), 0.0
    rc = tc.reg_config
    reg_type = _choice(check, f"{at}.type", rc.type, REG_TYPES, None)
    scope = tuple(s.strip() for s in rc.scope.split(",") if s.strip()) or REG_SCOPES
    for name in scope:
        if name not in REG_SCOPES:
            check.fail(
                f"{at}.scope", f"unknown layer type {name!r}; one of {', '.join(REG_SCOPES)}"
            )
    weight_decay = check.float_field(
        rc, "weight_decay", f"{at}.weight_decay", None if reg_type != "None" else 0.0
    )
    if weight_decay < 0:
        check.fail(f"{at}.weight_decay", f"must be >= 0, got {weight_decay:g}")
    return reg_type, scope, weight_decay


_SCHEDULE_FIELDS = {
    "step": ("learning_rate", "step_size", "gamma"),
    "soft_anneal": ("learning_rate", "soft_start", "annealing_points", "annealing_divider"),
    "cosine": ("learning_rate", "min_lr_ratio", "soft_start"),
}


def _resolve_lr(tc, check: Checker, n_epochs: int) -> LrSchedule:
    at = "train_config.lr_config"
    if not tc.HasField("lr_config"):
        check.fail(at, "required section is missing")
    lc = tc.lr_config
    nested = lc.WhichOneof("schedule")
    flat_set = [f.name for f, _ in lc.ListFields() if f.name not in SCHEDULERS]
    if nested and flat_set:
        check.fail(
            f"{at}.{flat_set[0]}", f"give the schedule flat or as a {nested} {{}} block, not both"
        )
    if nested:
        kind, source, prefix = nested, getattr(lc, nested), f"{at}.{nested}"
    else:
        kind = _choice(check, f"{at}.scheduler", lc.scheduler, SCHEDULERS, None)
        source, prefix = lc, at
        for name in flat_set:
            if name != "scheduler" and name not in _SCHEDULE_FIELDS[kind]:
                check.fail(f"{at}.{name}", f"not a field of the {kind} schedule")
    learning_rate = check.float_field(source, "learning_rate", f"{prefix}.learning_rate", None)
    if learning_rate <= 0:
        check.fail(f"{prefix}.learning_rate", f"must be positive, got {learning_rate:g}")
    if kind == "step":
        step_size = check.int_field(source, "step_size", f"{prefix}.step_size", None)
        gamma = check.float_field(source, "gamma", f"{prefix}.gamma", 0.1)
        check.in_range(f"{prefix}.gamma", gamma, 0.0, 1.0, low_open=True)
        return LrSchedule("step", learning_rate, step_size=step_size, gamma=gamma)
    soft_start = check.float_field(source, "soft_start", f"{prefix}.soft_start", 0.0)
    check.in_range(f"{prefix}.soft_start", soft_start, 0.0, 1.0, high_open=True)
    if kind == "cosine":
        ratio = check.float_field(source, "min_lr_ratio", f"{prefix}.min_lr_ratio", 0.0)
        check.in_range(f"{prefix}.min_lr_ratio", ratio, 0.0, 1.0)
        return LrSchedule("cosine", learning_rate, soft_start=soft_start, min_lr_ratio=ratio)
    points_at = f"{prefix}.annealing_points"
    try:
        points = tuple(
            shortest_float32(float(p)) for p in source.annealing_points.split(",") if p.strip()
        )
    except ValueError:
        check.fail(points_at, f"expected comma-separated numbers, got {source.annealing_points!r}")
    if not points:
        check.fail(points_at, 'required field is missing; e.g. "0.3, 0.6, 0.8"')
    if any(not soft_start < p < 1.0 for p in points) or list(points) != sorted(set(points)):
        check.fail(points_at, f"must increase strictly within ({soft_start:g}, 1), got {points}")
    divider = check.float_field(source, "annealing_divider", f"{prefix}.annealing_divider", 10.0)
    if divider <= 1.0:
        check.fail(f"{prefix}.annealing_divider", f"must be > 1, got {divider:g}")
    return LrSchedule(
        "soft_anneal",
        learning_rate,
        soft_start=soft_start,
        annealing_points=points,
        annealing_divider=divider,
    )


def _resolve_eval(proto: pb.Experiment, check: Checker, base_dir: Path, batch: int) -> dict:
    ec = proto.eval_config
    at = "eval_config"
    top_k = check.int_field(ec, "top_k", f"{at}.top_k", 5)
    return {
        "eval_dataset_path": resolve_path(ec.eval_dataset_path, base_dir),
        "eval_model_path": resolve_path(ec.model_path, base_dir),
        "top_k": top_k,
        "eval_batch_size": check.int_field(ec, "batch_size", f"{at}.batch_size", batch),
        "eval_center_crop": _optional_bool(ec, "enable_center_crop", True),
    }
