"""The SSD experiment spec: `load_experiment`, `parse_experiment`, `Experiment`.

An `Experiment` is the parsed message plus resolved, validated views (anchors, backbone,
training, eval, nms, augmentation, data sources, classes); how values are resolved and
checked is in `tlt_core.networks.ssd.resolve`. Every problem is a `SpecError`
``spec.txt:LINE: field: message``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tlt_core.errors import SpecError
from tlt_core.io_utils import write_text_atomic
from tlt_core.networks.ssd import ssd_experiment_pb2 as pb
from tlt_core.networks.ssd.resolve import (
    IMAGENET_MEAN_BGR,
    N_PREDICTOR_LAYERS,
    Checker,
    resolve_augmentation,
    resolve_class_mapping,
    resolve_eval,
    resolve_nms,
    resolve_sources,
    resolve_ssd_config,
    resolve_training,
)
from tlt_core.networks.ssd.views import (
    AnchorSpec,
    AugmentationSpec,
    BackboneSpec,
    DataSource,
    EvalSpec,
    NmsSpec,
    TrainingSpec,
)
from tlt_core.spec.check import resolve_path
from tlt_core.spec.locate import SpecLocator
from tlt_core.spec.overrides import set_by_path
from tlt_core.spec.textparse import parse_message, read_spec_text

log = logging.getLogger(__name__)

__all__ = [
    "IMAGENET_MEAN_BGR",
    "N_PREDICTOR_LAYERS",
    "AnchorSpec",
    "AugmentationSpec",
    "BackboneSpec",
    "DataSource",
    "EvalSpec",
    "Experiment",
    "NmsSpec",
    "TrainingSpec",
    "build_experiment",
    "experiment_to_text",
    "load_experiment",
    "parse_experiment",
]


@dataclass(frozen=True)
class Experiment:
    """A validated SSD experiment spec. Treat ``proto`` as read-only: derive changed
    specs with `with_overrides` / `replace_data_sources`."""

    path: str
    text: str = field(repr=False)
    proto: pb.Experiment = field(repr=False)
    base_dir: Path
    random_seed: int
    anchors: AnchorSpec
    backbone: BackboneSpec
    training: TrainingSpec
    eval: EvalSpec
    nms: NmsSpec
    augmentation: AugmentationSpec
    data_sources: tuple[DataSource, ...]
    validation_data_sources: tuple[DataSource, ...]
    include_difficult_in_training: bool
    class_mapping: dict[str, str]  # lower-case source class -> lower-case target class
    class_names: tuple[str, ...]  # target classes, unique, sorted; model index = i + 1
    image_mean_bgr: tuple[float, float, float]
    input_shape: tuple[int, int, int]  # (H, W, C)

    @property
    def num_classes(self) -> int:
        """Target classes, without background."""
        return len(self.class_names)

    def to_text(self, *, absolute_paths: bool = False) -> str:
        """The spec in text format; ``absolute_paths`` resolves relative paths first, so
        the text can be written to another directory."""
        proto = self.proto
        if absolute_paths:
            proto = copy.deepcopy(proto)
            absolutize_paths(proto, self.base_dir)
        return experiment_to_text(proto)

    def save(self, path: str | Path, *, absolute_paths: bool = True) -> Path:
        """Write the spec text atomically (paths made absolute unless told otherwise)."""
        return write_text_atomic(path, self.to_text(absolute_paths=absolute_paths))

    def replace_data_sources(
        self,
        train: Iterable[DataSource | Mapping[str, str]] | None = None,
        val: Iterable[DataSource | Mapping[str, str]] | None = None,
    ) -> Experiment:
        """A new Experiment reading other data; ``None`` keeps that list as it is.

        Each source is a `DataSource` or a mapping with its field names.
        """
        proto = copy.deepcopy(self.proto)
        for sources, target in (
            (train, proto.dataset_config.data_sources),
            (val, proto.dataset_config.validation_data_sources),
        ):
            if sources is None:
                continue
            del target[:]
            for source in sources:
                if not isinstance(source, DataSource):
                    try:
                        source = DataSource(**dict(source))
                    except TypeError as error:
                        raise SpecError(
                            f"not a data source: {source!r} ({error})",
                            _override_label(self.path),
                        ) from None
                target.append(source.to_proto())
        return self._rebuilt(proto)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Experiment:
        """A new Experiment with fields set by dotted path, validated like a file.

        ``{"training_config.num_epochs": 2, "ssd_config.scales": [0.1, ...],
        "augmentation_config.image_mean": {"r": 1, "g": 2, "b": 3},
        "nms_config.top_k": None}`` (None clears a field, so its default applies).
        """
        proto = copy.deepcopy(self.proto)
        source = _override_label(self.path)
        for dotted, value in overrides.items():
            set_by_path(proto, dotted, value, source)
        return self._rebuilt(proto)

    def _rebuilt(self, proto: pb.Experiment) -> Experiment:
        # Line numbers of generated text mean nothing to a user: errors name the field only.
        return build_experiment(
            proto,
            path=_override_label(self.path),
            text=experiment_to_text(proto),
            locator=None,
            base_dir=self.base_dir,
            display_path=self.path,
        )


def absolutize_paths(proto: pb.Experiment, base_dir: Path) -> None:
    """Make the spec's data-source and model paths absolute (in place)."""
    dc = proto.dataset_config
    for source in [*dc.data_sources, *dc.validation_data_sources]:
        for name in ("label_directory_path", "image_directory_path", "tfrecords_path"):
            setattr(source, name, resolve_path(getattr(source, name), base_dir) or "")
    tc = proto.training_config
    for name in ("pretrain_model_path", "resume_model_path", "pruned_model_path"):
        if getattr(tc, name):
            setattr(tc, name, resolve_path(getattr(tc, name), base_dir))


def _override_label(path: str) -> str:
    return path if path.endswith(" (rewritten)") else f"{path} (rewritten)"


# -- public entry points ---------------------------------------------------------------------
def load_experiment(path: str | Path) -> Experiment:
    """Read, parse and validate an SSD experiment spec file."""
    text = read_spec_text(path)
    return parse_experiment(text, path=str(path), base_dir=Path(path).absolute().parent)


def parse_experiment(
    text: str, path: str = "<string>", base_dir: str | Path | None = None
) -> Experiment:
    """Parse and validate spec text; ``path`` only labels errors, ``base_dir`` (default:
    the working directory) anchors relative paths."""
    proto = pb.Experiment()
    locator = parse_message(text, proto, path)
    return build_experiment(
        proto,
        path=path,
        text=text,
        locator=locator,
        base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
    )


def experiment_to_text(experiment: Experiment | pb.Experiment) -> str:
    """Text format of an Experiment (or its message) that `parse_experiment` reads back."""
    proto = experiment.proto if isinstance(experiment, Experiment) else experiment
    return text_format.MessageToString(proto)


def build_experiment(
    proto: pb.Experiment,
    *,
    path: str,
    text: str,
    locator: SpecLocator | None,
    base_dir: Path,
    display_path: str | None = None,
) -> Experiment:
    """Validate ``proto`` and resolve its views (errors located with ``locator``)."""
    check = Checker(path, locator)
    anchors, backbone = resolve_ssd_config(proto, check)
    training = resolve_training(proto, check, base_dir)
    evaluation = resolve_eval(proto, check, training)
    nms = resolve_nms(proto, check)
    augmentation = resolve_augmentation(proto, check)
    train_sources, val_sources = resolve_sources(proto, check, base_dir)
    class_mapping = resolve_class_mapping(proto, check)
    if locator is not None:  # a spec read from text; a rewritten one was logged already
        check.log_notices(log)
    mean = augmentation.image_mean
    if augmentation.output_channel == 3:
        image_mean_bgr = (mean["b"], mean["g"], mean["r"])
    else:
        image_mean_bgr = (mean["l"],) * 3
    return Experiment(
        path=display_path or path,
        text=text,
        proto=proto,
        base_dir=base_dir,
        random_seed=proto.random_seed,
        anchors=anchors,
        backbone=backbone,
        training=training,
        eval=evaluation,
        nms=nms,
        augmentation=augmentation,
        data_sources=train_sources,
        validation_data_sources=val_sources,
        include_difficult_in_training=proto.dataset_config.include_difficult_in_training,
        class_mapping=class_mapping,
        class_names=tuple(sorted(set(class_mapping.values()))),
        image_mean_bgr=image_mean_bgr,
        input_shape=(
            augmentation.output_height,
            augmentation.output_width,
            augmentation.output_channel,
        ),
    )
