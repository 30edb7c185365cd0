"""Argument helpers shared by command modules."""

from __future__ import annotations

import logging
from pathlib import Path


def add_log_file(path: str | None) -> None:
    """Also write the log to ``path`` (TLT's ``--log_file``)."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
