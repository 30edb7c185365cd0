"""``RESULTS_DIR/status.json``: the machine-readable training progress, one record per epoch.

The whole file is rewritten atomically after each epoch (and when training ends), so a
reader (a KFP component, a dashboard) never sees half a file::

    {"state": "running" | "done" | "interrupted", "num_epochs": 80, "started": ...,
     "updated": ..., "last_checkpoint": "weights/ssd_resnet18_epoch_010.tlt",
     "epochs": [{"epoch": 1, "loss": 3.2, "lr": 0.001, "mAP": null, "time_s": 41.5,
                 "steps": 13, "skipped_images": 0}, ...],
     "interrupted": null | {"epoch": 2, "step": 5, "loss": ..., "checkpoint": ...}}

``epochs`` holds finished epochs only (epoch numbers are 1-based). A run stopped by SIGTERM
in the middle of epoch E records where it stopped in ``interrupted`` ("interrupted at epoch
E step S"); a resume keeps the finished epochs and clears ``interrupted`` once it finishes
that epoch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlt_core.io_utils import write_text_atomic

STATUS_FILE = "status.json"


@dataclass
class StatusWriter:
    path: Path
    num_epochs: int
    epochs: list[dict[str, Any]] = field(default_factory=list)
    state: str = "running"
    last_checkpoint: str | None = None
    started: float = field(default_factory=time.time)
    interrupted: dict[str, Any] | None = None

    @classmethod
    def resume(cls, path: Path, num_epochs: int, initial_epoch: int) -> StatusWriter:
        """Keep the records of epochs before ``initial_epoch`` from an earlier run."""
        writer = cls(path=path, num_epochs=num_epochs)
        if path.exists() and initial_epoch > 0:
            try:
                old = json.loads(path.read_text())
                writer.epochs = [e for e in old.get("epochs", []) if e["epoch"] <= initial_epoch]
                writer.started = float(old.get("started", writer.started))
                # Still true until the resumed run finishes that epoch.
                writer.interrupted = old.get("interrupted")
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable old status is replaced, not fatal
        return writer

    def add_epoch(self, record: dict[str, Any]) -> None:
        self.epochs = [e for e in self.epochs if e["epoch"] != record["epoch"]]
        self.epochs.append(record)
        self.epochs.sort(key=lambda e: e["epoch"])
        if self.interrupted is not None and self.interrupted.get("epoch", 0) <= record["epoch"]:
            self.interrupted = None
        self.write()

    def interrupt(self, record: dict[str, Any]) -> None:
        """Where a SIGTERM stopped an unfinished epoch (``epoch`` 1-based, ``step``)."""
        self.interrupted = dict(record)
        self.write()

    def finish(self, state: str) -> None:
        self.state = state
        self.write()

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "num_epochs": self.num_epochs,
            "started": self.started,
            "updated": time.time(),
            "last_checkpoint": self.last_checkpoint,
            "epochs": self.epochs,
            "interrupted": self.interrupted,
        }

    def write(self) -> None:
        write_text_atomic(self.path, json.dumps(self.as_dict(), indent=1) + "\n")
