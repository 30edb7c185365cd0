"""Rewriting a spec message (any network's): dotted-path overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tlt_core.errors import SpecError
from tlt_core.spec.listexpr import format_list


def _is_repeated(descriptor: FieldDescriptor) -> bool:
    flag = getattr(descriptor, "is_repeated", None)  # protobuf >= 6; `label` is deprecated
    if flag is None:
        return descriptor.label == FieldDescriptor.LABEL_REPEATED
    return flag() if callable(flag) else bool(flag)


def set_by_path(message: Message, dotted: str, value: Any, source: str) -> None:
    *parents, name = dotted.split(".")
    target = message
    walked = []
    for part in parents:
        walked.append(part)
        descriptor = target.DESCRIPTOR.fields_by_name.get(part)
        if descriptor is None or descriptor.message_type is None or _is_repeated(descriptor):
            raise SpecError("not a message field of the spec", source, None, ".".join(walked))
        target = getattr(target, part)
    _set_field(target, name, value, source, dotted)


def _set_field(message: Message, name: str, value: Any, source: str, dotted: str) -> None:
    descriptor = message.DESCRIPTOR.fields_by_name.get(name)
    if descriptor is None:
        raise SpecError("unknown field", source, None, dotted)
    try:
        if value is None:
            message.ClearField(name)
        elif descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            container = getattr(message, name)
            container.clear()
            container.update(dict(value))
        elif descriptor.message_type is not None:
            items = list(value) if _is_repeated(descriptor) else [value]
            message.ClearField(name)
            for item in items:
                child = (
                    getattr(message, name).add()
                    if _is_repeated(descriptor)
                    else getattr(message, name)
                )
                child.SetInParent()
                if dataclasses.is_dataclass(item) and not isinstance(item, type):
                    item = {k: v for k, v in vars(item).items() if v is not None}
                for key, sub_value in dict(item).items():
                    _set_field(child, key, sub_value, source, f"{dotted}.{key}")
        elif _is_repeated(descriptor):
            container = getattr(message, name)
            del container[:]
            container.extend(value)
        elif descriptor.enum_type is not None and isinstance(value, str):
            setattr(message, name, descriptor.enum_type.values_by_name[value].number)
        elif descriptor.type == FieldDescriptor.TYPE_STRING and isinstance(value, list | tuple):
            # A string field holding a bracketed list (ssd_config.scales, ...).
            setattr(message, name, format_list(value))
        else:
            setattr(message, name, value)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise SpecError(f"cannot set to {value!r}: {error}", source, None, dotted) from None
