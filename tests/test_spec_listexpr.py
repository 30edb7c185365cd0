"""The list-string parser of spec values: exact on good input, SpecError on anything else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_core.errors import SpecError
from tlt_core.spec.listexpr import MAX_DEPTH, format_list, parse_list


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[0.07, 0.15, 1.05]", [0.07, 0.15, 1.05]),
        ("[[1.0, 2.0, 0.5, 3.0, 1.0/3.0], [1.0]]", [[1.0, 2.0, 0.5, 3.0, 1.0 / 3.0], [1.0]]),
        ("[ -1 , +2.5e-3 ,.5, 5., 1E2 ]", [-1.0, 0.0025, 0.5, 5.0, 100.0]),
        ("[-1/-4, 3/+2]", [0.25, 1.5]),
        ("[(8, 16), 32]", [[8.0, 16.0], 32.0]),
        ("[]", []),
        ("[1, 2,]", [1.0, 2.0]),
        ("\n[ [ ] ]\t", [[]]),
    ],
)
def test_parses_documented_forms(text, expected):
    assert parse_list(text) == expected


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("", 1),
        ("0.5", 1),
        ("[0.1, 0.1; 0.2]", 10),
        ("[1, 2", 6),
        ("[1, 2]]", 7),
        ("[1/0]", 4),
        ("[1e999]", 2),
        ("[1/1e-320]", 4),
        ("[__import__('os')]", 2),
        ("[1, 2)", 6),
        ("[1//2]", 4),
        ("[1/2/3]", 5),
        ("[nan]", 2),
        ("[,]", 2),
    ],
)
def test_rejects_with_column(text, column):
    with pytest.raises(SpecError, match=rf"column {column}:"):
        parse_list(text)


def test_nesting_limit():
    parse_list("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(SpecError, match="levels of nesting"):
        parse_list("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(SpecError):  # deep garbage must not reach Python's recursion limit
        parse_list("[" * 100_000)


finite = st.floats(allow_nan=False, allow_infinity=False)
nested = st.recursive(
    st.lists(finite, max_size=5), lambda inner: st.lists(inner, max_size=4), max_leaves=30
)


@settings(max_examples=300, deadline=None)
@given(nested)
def test_round_trip(values):
    assert parse_list(format_list(values)) == values


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6).filter(bool)),
        min_size=1,
        max_size=6,
    )
)
def test_fractions(pairs):
    text = "[" + ", ".join(f"{a}/{b}" for a, b in pairs) + "]"
    assert parse_list(text) == [a / b for a, b in pairs]


def _only_spec_errors(text: str) -> None:
    try:
        result = parse_list(text)
    except SpecError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(result, list)
    stack = [result]
    while stack:
        for item in stack.pop():
            if isinstance(item, list):
                stack.append(item)
            else:
                assert isinstance(item, float) and math.isfinite(item)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_garbage_text_raises_only_spec_error(text):
    _only_spec_errors(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="[](),/+-.eE0123456789 x", max_size=40))
def test_near_miss_text_raises_only_spec_error(text):
    _only_spec_errors(text)


def test_format_list_refuses_non_numbers():
    with pytest.raises(ValueError):
        format_list([float("nan")])
    with pytest.raises(TypeError):
        format_list("[1]")
