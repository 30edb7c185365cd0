"""The committed *_pb2.py files match their .proto sources, and import on old runtimes.

The generated modules are committed (made by protoc 25.1, from grpcio-tools 1.62.3) so
the package needs no protoc. These tests stop the two from drifting apart silently:
every message, enum, field name, number, type and label written in the .proto must be
in the compiled descriptor, and nothing else. Regenerate after editing a .proto with
``pip install --target /tmp/gt grpcio-tools==1.62.3`` and
``PYTHONPATH=/tmp/gt python -m grpc_tools.protoc -I . --python_out=. --pyi_out=.
tlt_core/networks/ssd/ssd_experiment.proto tlt_core/spec/dataset_convert.proto``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor

from tlt_core.networks.ssd import ssd_experiment_pb2
from tlt_core.spec import dataset_convert_pb2

ROOT = Path(__file__).resolve().parents[1] / "tlt_core"
SPEC_DIR = ROOT / "spec"
SSD_DIR = ROOT / "networks" / "ssd"
MODULES = {"ssd_experiment.proto": ssd_experiment_pb2, "dataset_convert.proto": dataset_convert_pb2}
DIRS = {"ssd_experiment.proto": SSD_DIR, "dataset_convert.proto": SPEC_DIR}

_SCALARS = {
    "double": FieldDescriptor.TYPE_DOUBLE,
    "float": FieldDescriptor.TYPE_FLOAT,
    "int32": FieldDescriptor.TYPE_INT32,
    "int64": FieldDescriptor.TYPE_INT64,
    "uint32": FieldDescriptor.TYPE_UINT32,
    "uint64": FieldDescriptor.TYPE_UINT64,
    "bool": FieldDescriptor.TYPE_BOOL,
    "string": FieldDescriptor.TYPE_STRING,
    "bytes": FieldDescriptor.TYPE_BYTES,
}
_FIELD = re.compile(r"^(optional |repeated )?(map<\s*\w+\s*,\s*\w+\s*>|[\w.]+) (\w+) = (\d+);$")
_ENUM_VALUE = re.compile(r"^(\w+) = (\d+);$")


def _proto_declarations(text: str) -> dict[str, dict[str, tuple]]:
    """{qualified type name: {member name: declaration}} read from .proto text."""
    text = re.sub(r"//[^\n]*", "", text)
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    declared: dict[str, dict[str, tuple]] = {}
    stack: list[tuple[str, str]] = []  # (kind, qualified name)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("syntax", "package")):
            continue
        opened = re.match(r"^(message|enum|oneof) (\w+) \{$", line)
        if opened:
            kind, name = opened.groups()
            if kind == "oneof":
                stack.append(("oneof", stack[-1][1]))
                continue
            parent = next((q for k, q in reversed(stack) if k != "oneof"), package)
            qualified = f"{parent}.{name}"
            declared[qualified] = {}
            stack.append((kind, qualified))
            continue
        if line == "}":
            stack.pop()
            continue
        kind, owner = stack[-1]
        if kind == "enum":
            name, number = _ENUM_VALUE.match(line).groups()
            declared[owner][name] = ("value", int(number))
        else:
            match = _FIELD.match(line)
            assert match, f"unparsed .proto line: {line!r}"
            label, type_name, name, number = match.groups()
            declared[owner][name] = ((label or "").strip(), type_name, int(number))
    return declared


def _descriptor_declarations(module) -> dict[str, dict[str, tuple]]:
    declared: dict[str, dict[str, tuple]] = {}

    def visit_enum(enum) -> None:
        declared[enum.full_name] = {v.name: ("value", v.number) for v in enum.values}

    def visit(message) -> None:
        if message.GetOptions().map_entry:
            return
        members = {}
        for field in message.fields:
            repeated = _is_repeated(field)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                key, value = field.message_type.fields
                members[field.name] = (
                    "",
                    f"map<{_type_name(key)},{_type_name(value)}>",
                    field.number,
                )
                continue
            if repeated:
                label = "repeated"
            elif (
                field.has_presence
                and field.containing_oneof is not None
                and (field.containing_oneof.name.startswith("_"))
            ):
                label = "optional"  # proto3 `optional`: a synthetic oneof named _field
            else:
                label = ""
            members[field.name] = (label, _type_name(field), field.number)
        declared[message.full_name] = members
        for nested in message.nested_types:
            visit(nested)
        for enum in message.enum_types:
            visit_enum(enum)

    for message in module.DESCRIPTOR.message_types_by_name.values():
        visit(message)
    for enum in module.DESCRIPTOR.enum_types_by_name.values():
        visit_enum(enum)
    return declared


def _type_name(field) -> str:
    if field.message_type is not None:
        return field.message_type.name
    if field.enum_type is not None:
        return field.enum_type.name
    return next(name for name, number in _SCALARS.items() if number == field.type)


def _normalise(declared: dict[str, dict[str, tuple]]) -> dict[str, dict[str, tuple]]:
    """Type references in .proto text: last name component; map types without spaces."""
    out = {}
    for owner, members in declared.items():
        out[owner] = {}
        for name, decl in members.items():
            if decl[0] != "value":
                label, type_name, number = decl
                if type_name.startswith("map<"):
                    type_name = re.sub(r"\s+", "", type_name)
                else:
                    type_name = type_name.rsplit(".", 1)[-1]
                decl = (label, type_name, number)
            out[owner][name] = decl
    return out


def _is_repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6 deprecates `label`
    if flag is None:
        return field.label == FieldDescriptor.LABEL_REPEATED
    return flag() if callable(flag) else bool(flag)


@pytest.mark.parametrize("proto_name", sorted(MODULES))
def test_generated_module_matches_proto_source(proto_name):
    from_proto = _normalise(_proto_declarations((DIRS[proto_name] / proto_name).read_text()))
    assert _descriptor_declarations(MODULES[proto_name]) == from_proto


@pytest.mark.parametrize("proto_name", sorted(MODULES))
def test_generated_module_keeps_old_runtime_support(proto_name):
    """Gencode from protoc >= 26 calls _runtime_version and needs a runtime >= itself;
    the committed files must stay importable on protobuf 3.20 .. 6.x."""
    source = (DIRS[proto_name] / proto_name.replace(".proto", "_pb2.py")).read_text()
    assert "_runtime_version" not in source
    header = re.search(r"# Protobuf Python Version: (\d+)\.", source)
    assert header and int(header.group(1)) <= 4


def test_drift_detector_sees_a_change():
    """The comparison is not vacuous: an edited declaration is reported."""
    text = (SSD_DIR / "ssd_experiment.proto").read_text()
    edited = text.replace("optional uint32 top_k = 3;", "optional uint32 top_k = 30;")
    assert edited != text
    assert _normalise(_proto_declarations(edited)) != _descriptor_declarations(ssd_experiment_pb2)
