"""Classification metrics: top-1 / top-k accuracy, per-class precision, recall and F1,
the confusion matrix; their text table, JSON and PNG.

Conventions: the confusion matrix is ``[true class, predicted class]`` counts; a class
with no predictions has precision 0, one with no images recall 0 (and is marked ``n/a``
in the table), F1 is their harmonic mean (0 when both are 0). Top-k counts an image as
right when its class is among the ``k`` highest scores (ties: the lower class index
first, as ``numpy.argsort`` with a stable sort); ``k`` is capped at the class count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.io_utils import atomic_path, write_text_atomic

CONFUSION_PNG = "confusion_matrix.png"


@dataclass(frozen=True)
class ClassificationResult:
    class_names: tuple[str, ...]
    num_images: int
    top1: float
    top_k: float
    k: int
    precision: np.ndarray  # [C]
    recall: np.ndarray  # [C]
    f1: np.ndarray  # [C]
    support: np.ndarray  # [C] images per true class
    confusion: np.ndarray  # [C, C] int64, rows true, columns predicted

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_images": self.num_images,
            "top1_accuracy": self.top1,
            f"top{self.k}_accuracy": self.top_k,
            "top_k": self.k,
            "per_class": {
                name: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, name in enumerate(self.class_names)
            },
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.tolist(),
        }


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """``[N, k]`` class indices by decreasing score (stable: lower index first on ties)."""
    order = np.argsort(-np.asarray(scores, np.float64), axis=1, kind="stable")
    return order[:, :k]


def compute_metrics(
    scores: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...] | list[str], k: int = 5
) -> ClassificationResult:
    """Metrics of ``scores`` [N, C] against true ``labels`` [N] (class indices)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, np.int64)
    n_classes = len(class_names)
    if scores.ndim != 2 or scores.shape[1] != n_classes or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores {scores.shape} do not match {labels.shape[0]} labels of {n_classes} classes"
        )
    k = max(1, min(int(k), n_classes))
    n = labels.shape[0]
    ranked = top_k_indices(scores, k) if n else np.zeros((0, k), np.int64)
    predicted = ranked[:, 0] if n else np.zeros(0, np.int64)
    confusion = np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).astype(np.int64)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros(n_classes), where=predicted_count > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros(n_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(n_classes), where=both > 0)
    top1 = float(true_positive.sum() / n) if n else 0.0
    top_k = float(np.mean(np.any(ranked == labels[:, None], axis=1))) if n else 0.0
    return ClassificationResult(
        class_names=tuple(class_names),
        num_images=int(n),
        top1=top1,
        top_k=top_k,
        k=k,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=confusion,
    )


def format_report(result: ClassificationResult) -> str:
    """The table ``tlt classification evaluate`` prints: accuracy, per-class P/R/F1, and
    the confusion matrix (rows: true class, columns: predicted)."""
    width = max([len(n) for n in result.class_names] + [9])
    lines = [
        f"Found {result.num_images} images belonging to {len(result.class_names)} classes.",
        f"Top-1 accuracy: {result.top1:.4f}",
        f"Top-{result.k} accuracy: {result.top_k:.4f}",
        "",
        f"{'class':<{width}}  precision  recall     f1-score   support",
    ]
    for i, name in enumerate(result.class_names):
        if result.support[i] == 0:
            lines.append(f"{name:<{width}}  {'n/a':<9}  {'n/a':<9}  {'n/a':<9}  0")
            continue
        lines.append(
            f"{name:<{width}}  {result.precision[i]:<9.4f}  {result.recall[i]:<9.4f}  "
            f"{result.f1[i]:<9.4f}  {int(result.support[i])}"
        )
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class):"]
    cell = max(5, len(str(int(result.confusion.max(initial=0)))) + 1)
    header = " " * width + "".join(f"{i:>{cell}}" for i in range(len(result.class_names)))
    lines.append(header)
    for i, name in enumerate(result.class_names):
        row = "".join(f"{int(v):>{cell}}" for v in result.confusion[i])
        lines.append(f"{name:<{width}}{row}")
    lines.append(
        " " * width
        + "  columns: "
        + ", ".join(f"{i}={n}" for i, n in enumerate(result.class_names))
    )
    return "\n".join(lines)


def write_json(result: ClassificationResult, path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(result.to_dict(), indent=2) + "\n")


def plot_confusion_matrix(result: ClassificationResult, path: str | Path) -> Path:
    """The confusion matrix as a PNG heat map with counts (matplotlib Agg, atomic)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(result.class_names)
    side = min(4.0 + 0.45 * n, 24.0)
    figure = Figure(figsize=(side, side * 0.85), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(result.confusion, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(n), result.class_names, rotation=45, ha="right")
    axes.set_yticks(range(n), result.class_names)
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    threshold = result.confusion.max(initial=0) / 2.0
    if n <= 40:
        for i in range(n):
            for j in range(n):
                value = int(result.confusion[i, j])
                axes.text(
                    j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black",
                )  # fmt: skip
    axes.set_title(f"Top-1 accuracy {result.top1:.4f} ({result.num_images} images)")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
