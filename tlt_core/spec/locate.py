"""Where each field of a text-format spec sits: field paths to line numbers.

``text_format`` forgets positions once it has built the message, so a validation error
found later (``ssd_config.scales: expected 7 values``) could not name its line. A small
tokenizer pass over the same text records, for every field occurrence, its path and line.

Paths are dotted field names; a component may carry an occurrence index or, for a map
entry, its key: ``dataset_config.data_sources[1].image_directory_path``,
``augmentation_config.image_mean['b']``. A component without either means its first
occurrence. `SpecLocator.line` falls back to the nearest ancestor that is present, so a
missing field is reported at the line of its enclosing block.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import NoReturn

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[-+]?(?:(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+[fF]?|[\w.]+))
  | (?P<punct>.)
    """,
    re.VERBOSE,
)
_PATH_COMPONENT = re.compile(r"(\w+)(?:\[(?:(\d+)|'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")\])?")

Key = tuple[tuple[str, int], ...]


@dataclass
class _Token:
    kind: str
    text: str
    line: int  # 1-based
    column: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens = []
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), line, match.start() - line_start + 1))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
    return tokens


def _unquote(token: str) -> str:
    """The value of a quoted token, for the simple escapes keys use."""
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@dataclass
class Occurrence:
    """One field as written: its indexed path, where its name starts, and a map key."""

    key: Key
    line: int
    column: int
    map_key: str | None = None
    children_keys: dict[str, int] = field(default_factory=dict)


class SpecLocator:
    """Field positions of one spec text (tolerant: stops quietly at a syntax error)."""

    def __init__(self, text: str) -> None:
        self.occurrences: list[Occurrence] = []
        self._by_key: dict[Key, Occurrence] = {}
        self._counts: dict[tuple[Key, str], int] = {}
        self._map_index: dict[tuple[Key, str, str], int] = {}
        self._map_duplicates: list[tuple[Key, str, str, int, int]] = []
        self._tokens = _tokens(text)
        self._pos = 0
        self._open: list[Occurrence] = []
        # Blocks still open when the text ended (outermost first): for "missing '}'".
        self.unclosed_at_end: list[Occurrence] = []
        with contextlib.suppress(_Stop):
            self._parse_fields(parent=(), closing=None)

    # -- the tolerant walk ------------------------------------------------------------
    def _peek(self) -> _Token | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            self._at_end()
        self._pos += 1
        return token

    def _record(self, parent: Key, name: str, token: _Token) -> Occurrence:
        index = self._counts.get((parent, name), 0)
        self._counts[(parent, name)] = index + 1
        occurrence = Occurrence((*parent, (name, index)), token.line, token.column)
        self.occurrences.append(occurrence)
        self._by_key[occurrence.key] = occurrence
        return occurrence

    def _parse_fields(self, parent: Key, closing: str | None) -> str | None:
        """Walk fields until ``closing``; return the scalar text of a ``key`` child."""
        map_key = None
        while True:
            token = self._peek()
            if token is None:
                if closing is None:
                    return map_key
                self._at_end()
            if token.text == closing and token.kind == "punct":
                self._pos += 1
                return map_key
            name_token = self._next()
            if name_token.kind != "word":
                raise _Stop  # extension names and stray punctuation: give up quietly
            value = self._parse_field_value(parent, name_token)
            if name_token.text == "key" and value is not None:
                map_key = value
            separator = self._peek()
            if separator is not None and separator.text in (",", ";"):
                self._pos += 1

    def _parse_field_value(self, parent: Key, name_token: _Token) -> str | None:
        name = name_token.text
        token = self._peek()
        if token is not None and token.text == ":":
            self._pos += 1
            token = self._peek()
        if token is None:
            raise _Stop
        if token.text == "[":  # list syntax: each element is an occurrence
            self._pos += 1
            while True:
                element = self._peek()
                if element is None:
                    raise _Stop
                if element.text == "]":
                    self._pos += 1
                    return None
                if element.text == ",":
                    self._pos += 1
                    continue
                self._parse_single(parent, name, element)
        return self._parse_single(parent, name, name_token)

    def _parse_single(self, parent: Key, name: str, at: _Token) -> str | None:
        occurrence = self._record(parent, name, at)
        token = self._next()
        if token.text in ("{", "<"):
            closing = "}" if token.text == "{" else ">"
            self._open.append(occurrence)
            map_key = self._parse_fields(occurrence.key, closing)
            self._open.pop()
            if map_key is not None:
                occurrence.map_key = map_key
                index_key = (parent, name, map_key)
                if index_key in self._map_index:
                    first = self._by_key[(*parent, (name, self._map_index[index_key]))]
                    self._map_duplicates.append(
                        (parent, name, map_key, self._key_line(first), self._key_line(occurrence))
                    )
                else:
                    self._map_index[index_key] = occurrence.key[-1][1]
            return None
        if token.kind == "string":
            text = _unquote(token.text)
            while (following := self._peek()) is not None and following.kind == "string":
                self._pos += 1  # adjacent strings concatenate
                text += _unquote(following.text)
            return text
        if token.kind == "word":
            return token.text
        raise _Stop

    def _at_end(self) -> NoReturn:
        self.unclosed_at_end = list(self._open)
        raise _Stop

    def _key_line(self, entry: Occurrence) -> int:
        """The line of a map entry's ``key`` (where a reader looks for it)."""
        key = self._by_key.get((*entry.key, ("key", 0)))
        return key.line if key is not None else entry.line

    # -- queries ----------------------------------------------------------------------
    def resolve(self, path: str) -> Key | None:
        """The indexed key of ``path`` (None if a map key named in it is absent)."""
        key: Key = ()
        for component in path.split("."):
            match = _PATH_COMPONENT.fullmatch(component)
            if match is None:
                return None
            name, index, single, double = match.groups()
            map_key = single if single is not None else double
            if map_key is not None:
                found = self._map_index.get((key, name, map_key))
                if found is None:
                    return None
                key += ((name, found),)
            else:
                key += ((name, int(index) if index else 0),)
        return key

    def position(self, path: str) -> tuple[int, int] | None:
        """(line, column) of ``path``, or of its nearest present ancestor; None if none."""
        key = self.resolve(path)
        if key is not None and path.endswith("]") and not path.endswith("]]"):
            entry = self._by_key.get(key)
            if entry is not None and entry.map_key is not None:
                line = self._key_line(entry)
                return line, 1 if line != entry.line else entry.column
        if key is None:
            # A map key that is absent: fall back to the enclosing message.
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            return self.position(parent) if parent else None
        while key:
            occurrence = self._by_key.get(key)
            if occurrence is not None:
                return occurrence.line, occurrence.column
            key = key[:-1]
        return None

    def line(self, path: str) -> int | None:
        found = self.position(path)
        return found[0] if found else None

    def lines(self, path: str) -> list[int]:
        """Lines of every occurrence of the last component of ``path``."""
        key = self.resolve(path)
        if key is None:
            return []
        parent, (name, _) = key[:-1], key[-1]
        count = self._counts.get((parent, name), 0)
        return [self._by_key[(*parent, (name, i))].line for i in range(count)]

    def field_at(self, line: int, column: int) -> str | None:
        """Dotted path (names only) of the last field whose name starts at or before."""
        best = None
        for occurrence in self.occurrences:
            if (occurrence.line, occurrence.column) <= (line, column):
                best = occurrence
            else:
                break
        return ".".join(name for name, _ in best.key) if best else None

    def map_duplicates(self) -> list[tuple[str, str, int, int]]:
        """(dotted path of the map, key, first line, repeated line) for repeated map keys."""
        return [
            (".".join(n for n, _ in (*parent, (name, 0))), map_key, first, again)
            for parent, name, map_key, first, again in self._map_duplicates
        ]


class _Stop(Exception):
    """The walk met text it does not understand; text_format will report it."""
