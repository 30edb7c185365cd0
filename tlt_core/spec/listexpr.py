"""List-valued spec strings, e.g. ``"[[1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0, 2.0]]"``.

TLT evaluates these strings as Python; here a small recursive-descent parser accepts only
what the documentation shows: nested lists (``[...]``, or ``(...)`` for a pair), numbers
with an optional sign and exponent, and one ``a/b`` fraction per number. Anything else is a
`SpecError` naming the column, never an exception of another type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Union

from tlt_core.errors import SpecError

NestedList = list[Union[float, "NestedList"]]

MAX_DEPTH = 16
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CLOSING = {"[": "]", "(": ")"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> SpecError:
        if self.pos >= len(self.text):
            found = "end of text"
        else:
            found = repr(self.text[self.pos : self.pos + 12])
        return SpecError(f"bad list at column {self.pos + 1}: expected {expected}, found {found}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse_document(self) -> NestedList:
        if self.peek() not in _CLOSING:
            raise self.fail("'['")
        result = self.parse_list(depth=1)
        if self.peek():
            raise self.fail("end of text")
        return result

    def parse_list(self, depth: int) -> NestedList:
        if depth > MAX_DEPTH:
            raise self.fail(f"at most {MAX_DEPTH} levels of nesting")
        closing = _CLOSING[self.text[self.pos]]
        self.pos += 1
        items: NestedList = []
        while True:
            char = self.peek()
            if char == closing:
                self.pos += 1
                return items
            if items:  # after an item: a comma, then an item or (trailing comma) the end
                if char != ",":
                    raise self.fail(f"',' or '{closing}'")
                self.pos += 1
                if self.peek() == closing:
                    continue
            items.append(self.parse_value(depth))

    def parse_value(self, depth: int) -> float | NestedList:
        if self.peek() in _CLOSING:
            return self.parse_list(depth + 1)
        numerator = self.parse_number()
        if self.peek() != "/":
            return numerator
        self.pos += 1
        start = self.pos
        denominator = self.parse_number()
        if denominator == 0.0:
            self.pos = start
            raise self.fail("a non-zero denominator")
        value = numerator / denominator
        if not math.isfinite(value):
            self.pos = start
            raise self.fail("a fraction with a finite value")
        return value

    def parse_number(self) -> float:
        self.skip_space()
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("a number or '['")
        value = float(match.group())
        if not math.isfinite(value):
            raise self.fail("a number of finite size")
        self.pos = match.end()
        return value


def parse_list(text: str) -> NestedList:
    """Parse a bracketed, possibly nested list of numbers; raise `SpecError` if malformed."""
    return _Parser(text).parse_document()


def format_list(values: Sequence) -> str:
    """Write nested numbers back as a list string that `parse_list` reads to equal values."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"expected a sequence of numbers, got {type(values).__name__}")
    parts = []
    for item in values:
        if isinstance(item, Sequence) and not isinstance(item, str):
            parts.append(format_list(item))
        else:
            number = float(item)
            if not math.isfinite(number):
                raise ValueError(f"not a finite number: {item!r}")
            parts.append(repr(number))
    return "[" + ", ".join(parts) + "]"
