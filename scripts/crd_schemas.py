"""Write the JSON schemas tests/crd_schemas/*.json of the TrainJob, TrainingRuntime (Kubeflow
Trainer) and TFJob (Training Operator) resources.

Source: the API model packages the two projects publish on PyPI, generated from the same Go
types (via their OpenAPI spec) as the CRDs' openAPIV3Schema:

- ``kubeflow-trainer-api`` (Trainer): pydantic models ``TrainerV1alpha1TrainJob`` and
  ``TrainerV1alpha1TrainingRuntime``, with the Kubernetes core types they embed
  (``IoK8sApiCoreV1PodSpec``, ...) from the same package;
- ``kubeflow-training`` (Training Operator 1.x): OpenAPI-generated models
  ``KubeflowOrgV1TFJob`` (``openapi_types``, ``attribute_map``; required fields are the
  ones whose setters refuse None), with Kubernetes types taken from the Trainer package.

The CRD YAMLs themselves are not on PyPI. Differences from them: every object gets
``additionalProperties: false`` (what the API server's strict field validation does with an
unknown field; maps keep their value schemas), ``x-kubernetes-*`` extensions and CEL rules
are absent, and quantities (``IntOrString``) accept a string or an integer.

Run in an environment that has pydantic and both packages (not a project dependency):
    python -m venv /tmp/crd && /tmp/crd/bin/pip install kubeflow-trainer-api==2.3.0 \\
        kubeflow-training==1.9.4
    /tmp/crd/bin/python scripts/crd_schemas.py tests/crd_schemas
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

QUANTITY = {"anyOf": [{"type": "string"}, {"type": "number"}]}


def _scalar_unions(schema: dict) -> dict:
    """The generator wraps one-of scalars (IntOrString, Quantity) in models with
    ``actual_instance``/``oneof_schema_N_validator`` fields; on the wire they are scalars."""
    for name, definition in schema.get("$defs", {}).items():
        if name.endswith("ResourceQuantity"):
            schema["$defs"][name] = dict(QUANTITY)
            continue
        properties = definition.get("properties", {})
        if "actual_instance" in properties:
            options = [
                option
                for key, value in properties.items()
                if key.startswith("oneof_schema_")
                for option in value.get("anyOf", [value])
                if option != {"type": "null"}
            ]
            schema["$defs"][name] = {"anyOf": options}
    return schema


def _strict(node: Any) -> Any:
    """Close every object schema that lists properties; drop null alternatives."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and node.get("type", "object") == "object":
            node["type"] = "object"
            node.setdefault("additionalProperties", False)
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            if len(options) == 1:
                merged = {k: v for k, v in node.items() if k != "anyOf"}
                merged.update(options[0])
                node = merged
            else:
                node["anyOf"] = options
        node.pop("title", None)
        node.pop("default", None) if node.get("default", 0) is None else None
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def trainer_schema(model_name: str) -> dict:
    models = importlib.import_module("kubeflow_trainer_api.models")
    model = getattr(models, model_name)
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _strict(_scalar_unions(schema))


# --- Training Operator (old-style OpenAPI generator models) ------------------------------------

_PRIMITIVES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "float": {"type": "number"},
    "object": {},
    "datetime": {"type": "string"},
}


def _k8s_name(models, v1_name: str) -> str:
    """kubernetes-client model name (V1PodTemplateSpec) -> Trainer package pydantic model."""
    for prefix in ("IoK8sApiCoreV1", "IoK8sApimachineryPkgApisMetaV1"):
        if hasattr(models, prefix + v1_name[2:]):
            return prefix + v1_name[2:]
    raise ValueError(f"no model for {v1_name}")


def tfjob_schema() -> dict:
    trainer_models = importlib.import_module("kubeflow_trainer_api.models")
    training_models = importlib.import_module("kubeflow.training.models")
    defs: dict[str, Any] = {}

    def ref_k8s(v1_name: str) -> dict:
        name = _k8s_name(trainer_models, v1_name)
        if name not in defs:
            schema = getattr(trainer_models, name).model_json_schema(
                by_alias=True, mode="validation", ref_template="#/$defs/{model}"
            )
            defs.update(schema.pop("$defs", {}))
            defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}

    def of(type_name: str) -> dict:
        if type_name in _PRIMITIVES:
            return dict(_PRIMITIVES[type_name])
        match = re.fullmatch(r"list\[(.+)\]", type_name)
        if match:
            return {"type": "array", "items": of(match.group(1))}
        match = re.fullmatch(r"dict\(str, (.+)\)", type_name)
        if match:
            return {"type": "object", "additionalProperties": of(match.group(1))}
        if type_name.startswith("KubeflowOrgV1"):
            return model(type_name)
        if type_name.startswith("V1"):
            return ref_k8s(type_name)
        if type_name == "Quantity":
            return dict(QUANTITY)
        raise ValueError(f"unknown type {type_name}")

    def model(name: str) -> dict:
        if name not in defs:
            defs[name] = {}  # recursion guard
            cls = getattr(training_models, name)
            source = inspect.getsource(cls)
            required = [
                cls.attribute_map[attr]
                for attr in re.findall(r"Invalid value for `(\w+)`, must not be `None`", source)
            ]
            defs[name] = {
                "type": "object",
                "properties": {
                    cls.attribute_map[attr]: of(kind) for attr, kind in cls.openapi_types.items()
                },
                **({"required": sorted(set(required))} if required else {}),
            }
        return {"$ref": f"#/$defs/{name}"}

    root = model("KubeflowOrgV1TFJob")
    return _strict(_scalar_unions({**root, "$defs": defs}))


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer = importlib.metadata.version("kubeflow-trainer-api")
    training = importlib.metadata.version("kubeflow-training")
    written = {
        f"trainjob.trainer.kubeflow.org_v1alpha1.trainer-api-{trainer}.json": trainer_schema(
            "TrainerV1alpha1TrainJob"
        ),
        f"trainingruntime.trainer.kubeflow.org_v1alpha1.trainer-api-{trainer}.json": (
            trainer_schema("TrainerV1alpha1TrainingRuntime")
        ),
        f"tfjob.kubeflow.org_v1.kubeflow-training-{training}.json": tfjob_schema(),
    }
    for name, schema in written.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        (out / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/crd_schemas"))
