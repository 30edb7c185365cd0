"""``tlt classification inference`` output (002, 7.1).

Each image's prediction is a `ClassPrediction` (the score vector and the winning class,
named from the model's own class list). A run writes ``result.csv`` into the output
directory, one line per image ``index,path,class`` (002: "the second column shows the
file path and third shows the predicted class name"; the first is the image's position
in the run). For a single image the score vector, ``Class label`` and ``Class name`` are
logged as 002's sample output shows.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.io_utils import write_text_atomic

log = logging.getLogger(__name__)

RESULT_CSV = "result.csv"


@dataclass(frozen=True)
class ClassPrediction:
    scores: np.ndarray  # [C] softmax scores
    label: int  # argmax (lower index on ties)
    name: str


def predictions_from_scores(scores: np.ndarray, class_names) -> list[ClassPrediction]:
    scores = np.asarray(scores, np.float32)
    labels = np.argmax(scores, axis=1)
    return [
        ClassPrediction(row, int(label), str(class_names[int(label)]))
        for row, label in zip(scores, labels, strict=True)
    ]


def read_result_csv(path: str | Path) -> list[tuple[int, str, str]]:
    """``(index, path, class)`` rows of a ``result.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as stream:
        return [(int(i), p, c) for i, p, c in csv.reader(stream)]


class ResultCsvWriter:
    """Collects predictions; `close` writes ``output_dir/result.csv`` atomically."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.rows: list[tuple[int, str, str]] = []
        self.last: ClassPrediction | None = None

    def add(self, image_path: Path, image_bgr: Any, prediction: ClassPrediction) -> int:
        self.rows.append((len(self.rows), str(image_path), prediction.name))
        self.last = prediction
        return 1

    def close(self) -> dict[str, Any]:
        if len(self.rows) == 1 and self.last is not None:
            with np.printoptions(precision=8, linewidth=100):
                log.info("%s", self.last.scores[None])
            log.info("Class label = %d", self.last.label)
            log.info("Class name = %s", self.last.name)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.rows)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = write_text_atomic(self.output_dir / RESULT_CSV, buffer.getvalue())
        log.info("%d predictions written to %s", len(self.rows), path)
        return {"result_csv": str(path), "num_images": len(self.rows)}
