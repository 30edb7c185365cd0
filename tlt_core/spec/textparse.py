"""Text-format parsing with located, one-line errors.

`parse_message` runs ``text_format.Parse`` (strict: unknown fields and repeated singular
fields are errors) and turns its ``ParseError`` into a `SpecError`
``spec.txt:LINE: field.path: message``; an unknown field names its close matches.
"""

from __future__ import annotations

import difflib
import math
import re
import struct
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message

from tlt_core.errors import SpecError
from tlt_core.spec.locate import SpecLocator

_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.?$')
_REPEATED = re.compile(r'Message type "[\w.]+" should not have multiple "(\w+)" fields')
_POSITION = re.compile(r"^(\d+):(\d+) : ")


MAX_SPEC_BYTES = 1 << 20  # a spec is a few KB; a larger "spec" is the wrong file


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file, or a `SpecError` saying why it cannot be read.

    A regular file of at most :data:`MAX_SPEC_BYTES`; a UTF-8 byte-order mark is dropped.
    """
    from tlt_core.io_utils import read_bytes_limited

    data = read_bytes_limited(path, MAX_SPEC_BYTES, what="spec file", error_type=SpecError)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(f"not UTF-8 text (byte {error.start})", path) from None


def parse_message(text: str, message: Message, path: str | Path) -> SpecLocator:
    """Parse ``text`` into ``message`` (in place); return the field locator of ``text``."""
    locator = SpecLocator(text)
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise _located_parse_error(error, text, message, locator, path) from None
    for map_path, key, first, again in locator.map_duplicates():
        raise SpecError(f"key {key!r} given twice (first at line {first})", path, again, map_path)
    return locator


def _located_parse_error(
    error: text_format.ParseError,
    text: str,
    message: Message,
    locator: SpecLocator,
    path: str | Path,
) -> SpecError:
    detail = str(error)
    line, column = error.GetLine(), error.GetColumn()
    position = _POSITION.match(detail)
    if position:
        detail = detail[position.end() :]
    if line is not None:
        # text_format echoes the offending line in quotes before its message.
        source_lines = text.split("\n")
        if 1 <= line <= len(source_lines):
            echo = f"'{source_lines[line - 1]}': "
            if detail.startswith(echo):
                detail = detail[len(echo) :]
    field = locator.field_at(line, column or 1) if line is not None else None

    if locator.unclosed_at_end and detail.startswith(('Expected "}"', 'Expected ">"')):
        block = locator.unclosed_at_end[-1]
        name = ".".join(n for n, _ in block.key)
        return SpecError(
            "block not closed: a '}' is missing before the end of the text",
            path,
            block.line,
            name,
        )
    unknown = _UNKNOWN_FIELD.search(detail)
    if unknown:
        type_name, name = unknown.groups()
        known = _field_names(message, type_name)
        matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        if len(matches) == 1:
            hint = f"; did you mean {matches[0]}?"
        elif matches:
            hint = f"; did you mean one of {', '.join(matches)}?"
        elif field and _belongs_to_ancestor(message, field):
            hint = f"; {name} belongs to an enclosing block: is a '}}' missing before it?"
        else:
            hint = ""
        return SpecError(f"unknown field{hint}", path, line, field or name)
    enum = _UNKNOWN_ENUM.search(detail)
    if enum:
        type_name, value = enum.groups()
        values = _enum_values(message, type_name)
        expected = f"; expected {' or '.join(values)}" if values else ""
        return SpecError(f"unknown value {value}{expected}", path, line, field)
    repeated = _REPEATED.search(detail)
    if repeated:
        earlier = locator.lines(field) if field else []
        first = f" (first at line {earlier[0]})" if earlier and earlier[0] != line else ""
        return SpecError(f"given more than once{first}", path, line, field)
    return SpecError(detail.rstrip("."), path, line, field)


def _belongs_to_ancestor(message: Message, field_path: str) -> bool:
    """Whether the last name of ``field_path`` is a field of a message enclosing it."""
    *parents, name = field_path.split(".")
    descriptor = message.DESCRIPTOR
    for parent in parents:
        if name in descriptor.fields_by_name:
            return True
        child = descriptor.fields_by_name.get(parent)
        if child is None or child.message_type is None:
            return False
        descriptor = child.message_type
    return False


def _field_names(message: Message, type_name: str) -> list[str]:
    try:
        descriptor = message.DESCRIPTOR.file.pool.FindMessageTypeByName(type_name)
    except KeyError:
        return []
    return [f.name for f in descriptor.fields]


def _enum_values(message: Message, type_name: str) -> list[str]:
    try:
        descriptor = message.DESCRIPTOR.file.pool.FindEnumTypeByName(type_name)
    except KeyError:
        return []
    return [v.name for v in descriptor.values]


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (103.9, not 103.90000153).

    Float fields are stored as float32; resolved values are given as the decimal the user
    most likely wrote.
    """
    if not math.isfinite(value):
        return value
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.unpack("f", struct.pack("f", candidate))[0] == value:
                return candidate
        except OverflowError:
            break
    return value
