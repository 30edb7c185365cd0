"""Reports of an :class:`~tlt_core.evaluate.ap.APResult`: TLT's AP table, JSON, PR curves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tlt_core.evaluate.ap import APResult
from tlt_core.io_utils import atomic_path, write_text_atomic

RULE = "*" * 31


def format_ap_table(result: APResult) -> str:
    """The table ``tlt ssd evaluate`` prints: one ``AP`` line per class, then ``mAP``.

    Values rounded to 3 decimals with Python's ``round`` (so 0.5 prints as ``0.5``), in
    TLT's ``{:<14}{:<6}{}`` layout; the name column widens to fit the longest name. A class
    without ground truth (when the result skips them) says so, with its false positives.
    """
    width = max(14, max((len(n) for n in result.class_names), default=0) + 2)
    skipped = set(result.classes_without_ground_truth)
    lines = [RULE]
    for name in result.class_names:
        if name in skipped:
            value = f"no ground truth ({result.num_false_positives[name]} false positives)"
        else:
            value = str(round(result.per_class_ap[name], 3))
        lines.append(f"{name:<{width}}{'AP':<6}{value}")
    lines.append(f"{'':<{width}}{'mAP':<6}{round(result.mAP, 3)}")
    lines.append(RULE)
    return "\n".join(lines)


def write_json(result: APResult, path: str | Path) -> Path:
    """Write :meth:`APResult.to_dict` as indented JSON, atomically."""
    return write_text_atomic(path, json.dumps(result.to_dict(), indent=2, sort_keys=False) + "\n")


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def plot_pr_curves(result: APResult, output_dir: str | Path) -> list[Path]:
    """One ``pr_curve_<class>.png`` per class (matplotlib Agg, written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    used: set[str] = set()
    for name in result.class_names:
        stem = _file_stem(name)
        while stem in used:  # two names that sanitise alike
            stem += "_"
        used.add(stem)
        figure = Figure(figsize=(5, 4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        recall, precision = result.recall[name], result.precision[name]
        if recall.size:
            axes.plot(recall, precision, drawstyle="steps-post", linewidth=1.5)
        else:
            axes.text(0.5, 0.5, "no detections", ha="center", va="center")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0.0, 1.05)
        axes.set_xlabel("Recall")
        axes.set_ylabel("Precision")
        axes.grid(True, alpha=0.3)
        axes.set_title(
            f"{name}: AP {result.per_class_ap[name]:.3f} ({result.mode}, "
            f"IoU {result.iou_threshold:g}, {result.num_ground_truth[name]} gt)"
        )
        figure.tight_layout()
        target = output_dir / f"pr_curve_{stem}.png"
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format="png")
        written.append(target)
    return written
