"""Validation of TrainJob / TrainingRuntime / TFJob objects against the schemas in
tests/crd_schemas/ (see its README for where they come from)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
FILES = {
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): (
        "trainjob.trainer.kubeflow.org_v1alpha1.trainer-api-2.3.0.json"
    ),
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): (
        "trainingruntime.trainer.kubeflow.org_v1alpha1.trainer-api-2.3.0.json"
    ),
    ("kubeflow.org/v1", "TFJob"): "tfjob.kubeflow.org_v1.kubeflow-training-1.9.4.json",
}


@cache
def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / FILES[(api_version, kind)]).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of ``obj``, as 'path: message' lines (empty: valid)."""
    check = validator(obj["apiVersion"], obj["kind"])
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in sorted(check.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]


def assert_valid(obj: dict[str, Any]) -> None:
    found = errors(obj)
    assert not found, f"{obj['kind']} {obj['metadata'].get('name')}:\n" + "\n".join(found)
