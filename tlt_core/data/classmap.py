"""``classmap.json``: a classifier's class names by index (TLT's ``{"class name": index}``),
written next to every classification model and read by ``tlt-infer classification -cm``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tlt_core.errors import DataError
from tlt_core.io_utils import write_text_atomic

CLASSMAP_FILE = "classmap.json"


def classmap_text(class_names: Sequence[str]) -> str:
    """``{"class name": index}``: TLT's ``classmap.json``."""
    return json.dumps({name: i for i, name in enumerate(class_names)}, indent=1) + "\n"


def write_classmap(path: str | Path, class_names: Sequence[str]) -> Path:
    """`classmap_text` written atomically."""
    return write_text_atomic(path, classmap_text(class_names))


def read_classmap(path: str | Path) -> tuple[str, ...]:
    """Class names in index order from a ``classmap.json``; `DataError` when malformed."""
    path = Path(path)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("class map not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"not a JSON class map ({error})", path) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in mapping.items()
    ):
        raise DataError('expected {"class name": index, ...}', path)
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise DataError(f"indices must be 0..{len(mapping) - 1}, each once", path)
    return tuple(sorted(mapping, key=mapping.__getitem__))
