"""Validation of the 6-field cron expressions KFP recurring runs use.

KFP's scheduled workflows use robfig/cron with a seconds field:
``second minute hour day-of-month month day-of-week``, plus ``@every <duration>`` and the
``@hourly``-style shorthands.
"""

from __future__ import annotations

import re

from tlt_core.errors import UsageError

_FIELDS = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            )
        },
    ),
    (
        "day-of-week",
        0,
        6,
        {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
    ),
)
_SHORTHANDS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def _value(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise UsageError(f"cron {field}: {token!r} is not a number")
    value = int(token)
    if not low <= value <= high:
        raise UsageError(f"cron {field}: {value} is outside {low}-{high}")
    return value


def validate_cron(expression: str) -> str:
    """Return the expression unchanged if KFP accepts it, else raise a one-line UsageError."""
    expression = expression.strip()
    if expression in _SHORTHANDS:
        return expression
    if expression.startswith("@every "):
        if not _DURATION.match(expression.removeprefix("@every ").strip()):
            raise UsageError(f"cron {expression!r}: bad @every duration (e.g. '@every 24h')")
        return expression
    parts = expression.split()
    if len(parts) != 6:
        raise UsageError(
            f"cron {expression!r}: KFP needs 6 fields (second minute hour day-of-month month "
            f"day-of-week), got {len(parts)}"
        )
    for part, (field, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            if item in {"*", "?"}:
                if item == "?" and field not in {"day-of-month", "day-of-week"}:
                    raise UsageError(f"cron {field}: '?' only allowed for days")
                continue
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise UsageError(f"cron {field}: bad step {step!r}")
            if base == "*":
                continue
            start, _, end = base.partition("-")
            first = _value(start, low, high, names, field)
            if end and _value(end, low, high, names, field) < first:
                raise UsageError(f"cron {field}: range {base!r} runs backwards")
    return expression
