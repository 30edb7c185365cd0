"""Located checks shared by every spec parser: `Checker` and `resolve_path`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from google.protobuf.message import Message

from tlt_core.errors import SpecError, located
from tlt_core.spec.listexpr import NestedList, parse_list
from tlt_core.spec.locate import SpecLocator
from tlt_core.spec.textparse import shortest_float32


class Checker:
    """Raises located SpecErrors for one spec."""

    def __init__(self, path: str, locator: SpecLocator | None) -> None:
        self.path = path
        self.locator = locator
        self.notices: list[str] = []  # located remarks that do not stop the load

    def fail(self, field_path: str, message: str) -> NoReturn:
        line = self.locator.line(field_path) if self.locator is not None else None
        raise SpecError(message, self.path, line, field_path)

    def note(self, field_path: str, message: str) -> None:
        """Record a located remark (``spec.txt:LINE: field: message``) that the spec's
        loader logs once; the load goes on."""
        line = self.locator.line(field_path) if self.locator is not None else None
        self.notices.append(located(message, self.path, line, field_path))

    def log_notices(self, logger) -> None:
        for notice in self.notices:
            logger.warning("%s", notice)

    def line_of(self, field_path: str) -> int:
        """Line of a field for ordering (0 when unknown)."""
        line = self.locator.line(field_path) if self.locator is not None else None
        return line or 0

    def section(self, proto: Message, name: str, *, required: bool) -> Message:
        if required and not proto.HasField(name):
            self.fail(name, "required section is missing")
        return getattr(proto, name)

    def float_field(
        self, message: Message, name: str, field_path: str, default: float | None
    ) -> float:
        """An optional float field, defaulted; required when ``default`` is None."""
        if message.HasField(name):
            value = shortest_float32(getattr(message, name))
            if not math.isfinite(value):
                self.fail(field_path, f"must be a finite number, got {value}")
            return value
        if default is None:
            self.fail(field_path, "required field is missing")
        return default

    def int_field(
        self,
        message: Message,
        name: str,
        field_path: str,
        default: int | None,
        *,
        positive: bool = True,
    ) -> int:
        if message.HasField(name):
            value = int(getattr(message, name))
            if positive and value <= 0:
                self.fail(field_path, f"must be positive, got {value}")
            return value
        if default is None:
            self.fail(field_path, "required field is missing")
        return default

    def in_range(
        self,
        field_path: str,
        value: float,
        low: float,
        high: float,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):  # also catches NaN
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            self.fail(field_path, f"must be in {interval}, got {value:g}")

    def soft_start_annealing(
        self, training_config: Message, at: str, network: str
    ) -> tuple[float, float, float, float]:
        """``(min_learning_rate, max_learning_rate, soft_start, annealing)`` of the required
        ``learning_rate.soft_start_annealing_schedule`` of a KITTI detector's training_config
        (at ``at``), checked; ``network`` names who supports only that schedule."""
        lr_at = f"{at}.learning_rate.soft_start_annealing_schedule"
        if not training_config.learning_rate.HasField("soft_start_annealing_schedule"):
            self.fail(lr_at, f"required: the only learning-rate schedule {network} supports")
        schedule = training_config.learning_rate.soft_start_annealing_schedule
        low = shortest_float32(schedule.min_learning_rate)
        high = shortest_float32(schedule.max_learning_rate)
        soft_start = shortest_float32(schedule.soft_start)
        annealing = shortest_float32(schedule.annealing)
        if not (low > 0 and math.isfinite(low)):
            self.fail(f"{lr_at}.min_learning_rate", f"must be positive, got {low:g}")
        if not (high >= low and math.isfinite(high)):
            self.fail(
                f"{lr_at}.max_learning_rate",
                f"must be at least min_learning_rate ({low:g}), got {high:g}",
            )
        self.in_range(f"{lr_at}.soft_start", soft_start, 0.0, 1.0)
        self.in_range(f"{lr_at}.annealing", annealing, 0.0, 1.0)
        if not soft_start <= annealing:
            self.fail(
                f"{lr_at}.annealing",
                f"must not come before soft_start ({soft_start:g}), got {annealing:g}",
            )
        return low, high, soft_start, annealing

    def freeze_blocks(self, values, at: str, arch: str, valid) -> tuple[int, ...]:
        """The backbone block ids to freeze (the repeated field at ``at``): each one of
        ``arch``'s ``valid`` ids, none twice."""
        blocks = tuple(values)
        for i, block in enumerate(blocks):
            if block not in valid:
                self.fail(
                    f"{at}[{i}]",
                    f"block {block} is not a block of {arch}; valid: {', '.join(map(str, valid))}",
                )
            if block in blocks[:i]:
                self.fail(f"{at}[{i}]", f"block {block} listed twice")
        return blocks

    def regularizer_weight(self, training_config: Message, at: str) -> float:
        weight = shortest_float32(training_config.regularizer.weight)
        if not (weight >= 0 and math.isfinite(weight)):
            self.fail(f"{at}.regularizer.weight", f"must be >= 0, got {weight:g}")
        return weight

    def number_list(self, message: Message, name: str, field_path: str) -> NestedList | None:
        """A list-valued string field, parsed; None when absent or empty."""
        text = getattr(message, name)
        if not text.strip():
            return None
        try:
            return parse_list(text)
        except SpecError as error:
            self.fail(field_path, str(error))


def resolve_path(raw: str | None, base_dir: Path) -> str | None:
    """A spec path made absolute against ``base_dir`` (``~`` expanded, URIs kept)."""
    if not raw:
        return None
    if "://" in raw:
        return raw
    expanded = os.path.expanduser(raw)
    return expanded if os.path.isabs(expanded) else str(base_dir / expanded)


CLASS_MAPPING_FIELD = "dataset_config.target_class_mapping"


def _map_path(key: str) -> str:
    return f"{CLASS_MAPPING_FIELD}['{key}']"


def resolve_class_mapping(
    mapping_proto: Mapping[str, str], check: Checker, *, reserved: tuple[str, ...] = ()
) -> dict[str, str]:
    """``dataset_config.target_class_mapping`` (KITTI class -> target class), lower-cased
    and checked the same way for every detector; ``reserved``: target names a network
    keeps for itself (SSD's ``background``)."""
    if not mapping_proto:
        check.fail(CLASS_MAPPING_FIELD, "must map at least one label class to a target class")
    mapping: dict[str, str] = {}
    # In file order, so a conflict is reported at the later of the two entries.
    for key in sorted(mapping_proto, key=lambda k: (check.line_of(_map_path(k)), k)):
        at = _map_path(key)
        source, target = key.strip().lower(), mapping_proto[key].strip().lower()
        if not source or any(c.isspace() for c in source):
            check.fail(at, "source class must be one word (KITTI labels split on spaces)")
        if source == "dontcare":
            check.fail(at, "DontCare regions are always ignored; remove this entry")
        if not target:
            check.fail(f"{at}.value", "target class must not be empty")
        if target in reserved:
            check.fail(f"{at}.value", f"'{target}' is reserved for model class 0")
        if mapping.get(source, target) != target:
            check.fail(
                at,
                f"class {source!r} (case-insensitive) is mapped to both "
                f"{mapping[source]!r} and {target!r}",
            )
        mapping[source] = target
    return mapping
