"""Spec files: protobuf text-format schemas, parsing, validation, located errors.

- `load_experiment(path)` / `parse_experiment(text)`: the SSD experiment spec
  (``ssd_experiment.proto``) as a validated `Experiment`.
- `load_convert_spec(path)` / `parse_convert_spec(text)`: the dataset-convert spec
  (``dataset_convert.proto``) as a `ConvertSpec`.

Every problem raises `tlt_core.errors.SpecError` with ``path:line: field: message``.
"""

from tlt_core.spec.archs import ARCHITECTURES, ArchInfo
from tlt_core.spec.convert import ConvertSpec, load_convert_spec, parse_convert_spec
from tlt_core.spec.experiment import (
    IMAGENET_MEAN_BGR,
    N_PREDICTOR_LAYERS,
    AnchorSpec,
    AugmentationSpec,
    BackboneSpec,
    DataSource,
    EvalSpec,
    Experiment,
    NmsSpec,
    TrainingSpec,
    experiment_to_text,
    load_experiment,
    parse_experiment,
)
from tlt_core.spec.listexpr import format_list, parse_list

__all__ = [
    "ARCHITECTURES",
    "IMAGENET_MEAN_BGR",
    "N_PREDICTOR_LAYERS",
    "AnchorSpec",
    "ArchInfo",
    "AugmentationSpec",
    "BackboneSpec",
    "ConvertSpec",
    "DataSource",
    "EvalSpec",
    "Experiment",
    "NmsSpec",
    "TrainingSpec",
    "experiment_to_text",
    "format_list",
    "load_convert_spec",
    "load_experiment",
    "parse_convert_spec",
    "parse_experiment",
    "parse_list",
]
