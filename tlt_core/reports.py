"""The reports a person reads in the Kubeflow Pipelines UI (and under ``OUT/reports/`` of a
local run): pure functions, data in, HTML or Markdown text out.

The KFP UI shows an ``HTML`` artifact in a sandboxed frame and renders a ``Markdown``
artifact itself, so the HTML is one self-contained page (inline CSS, images as ``data:``
URIs sized for a browser window, no scripts, nothing fetched) and the Markdown is plain
GitHub-style tables. Every name that comes from a user (class, target, version, frame) is
escaped.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")

_PAGE_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
.curves{display:flex;flex-wrap:wrap;gap:8px}.curves img{width:360px;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px}
.tile{margin:0;border:1px solid #ddd;padding:4px;background:#fafafa}
.tile img{width:100%;height:auto;display:block}
.tile figcaption{font-size:12px;padding-top:4px;overflow-wrap:anywhere}
.worst{border-color:#d9534f}.best{border-color:#5cb85c}
.legend span{display:inline-block;padding:1px 6px;margin-right:8px;color:#fff;font-size:12px}
"""
# Legend colours (CSS) of the box kinds drawn by tlt_core.evaluate.frames.
_LEGEND = (
    ("#00aa00", "true positive: detection of a labelled object"),
    ("#ff8c00", "FP: detection matching no object"),
    ("#dc143c", "miss: labelled object not detected"),
    ("#999999", "thin grey: labelled object that was detected"),
)


def md_text(value: object) -> str:
    """``value`` as literal Markdown text: HTML-escaped, Markdown punctuation escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _table_md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-style Markdown table; cells are already Markdown."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "—"
    if num_bytes < 1024 * 1024:
        return f"{num_bytes / 1024:.1f} KiB"
    return f"{num_bytes / 1024 / 1024:.1f} MiB"


# --- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassRow:
    """One class of an evaluation: its value of the metric (a detector's AP) and, for a
    detector, the counts behind it (None for a network without them)."""

    name: str
    ap: float
    ground_truth: int | None = None
    detections: int | None = None
    true_positives: int | None = None
    false_positives: int | None = None


@dataclass(frozen=True)
class Tile:
    """One drawn validation frame (encoded image) and what it shows."""

    frame_id: str
    kind: str  # "worst" or "best"
    image: bytes
    width: int
    height: int
    true_positives: int
    false_positives: int
    misses: int
    mime: str = "image/jpeg"


def _mode_text(mode: str, iou_threshold: float) -> str:
    """`` (SAMPLE, IoU 0.5)``: the metric's mode and one matching IoU, those it has."""
    if not mode:
        return ""
    iou = f", IoU {iou_threshold:g}" if iou_threshold else ""
    return f" ({html.escape(mode)}{iou})"


def evaluation_html(
    title: str,
    *,
    mean_ap: float,
    mode: str,
    iou_threshold: float,
    num_images: int,
    classes: Sequence[ClassRow],
    pr_curves: Sequence[tuple[str, bytes]],
    tiles: Sequence[Tile],
    threshold: float,
    max_drawn: int = 50,
    metric: str = "mAP",
) -> str:
    """The evaluation page: the network's primary ``metric`` (a detector's mAP), the
    per-class table, PR curves and the grid of drawn frames (those a network has)."""
    esc = html.escape
    counted = any(c.ground_truth is not None for c in classes)
    per_class = "AP" if metric == "mAP" else esc(metric)
    rows = "".join(
        f"<tr><td>{esc(c.name)}</td><td>{c.ap:.4f}</td>"
        + (
            f"<td>{c.ground_truth}</td><td>{c.detections}</td><td>{c.true_positives}</td>"
            f"<td>{c.false_positives}</td>"
            if counted
            else ""
        )
        + "</tr>"
        for c in classes
    )
    header = f"<tr><th>class</th><th>{per_class}</th>" + (
        "<th>objects</th><th>detections</th><th>true positives</th><th>false positives</th>"
        if counted
        else ""
    )
    curves = "".join(
        f'<img src="{data_uri(png)}" alt="PR curve of {esc(name)}" '
        f'title="precision-recall curve: {esc(name)}"/>'
        for name, png in pr_curves
    )
    figures = []
    for tile in tiles:
        label = "worst" if tile.kind == "worst" else "best"
        figures.append(
            f'<figure class="tile {label}" data-frame="{esc(tile.frame_id)}">'
            f'<img src="{data_uri(tile.image, tile.mime)}" width="{tile.width}" height="{tile.height}" '
            f'alt="frame {esc(tile.frame_id)}"/><figcaption><b>{label}</b> '
            f"{esc(tile.frame_id)}: {tile.true_positives} found, "
            f"{tile.false_positives} false positive(s), {tile.misses} missed</figcaption>"
            f"</figure>"
        )
    legend = "".join(
        f'<span style="background:{colour}">{esc(text)}</span>' for colour, text in _LEGEND
    )
    grid = (
        f"<h2>Validation frames: {sum(t.kind == 'worst' for t in tiles)} with the most "
        f"errors, {sum(t.kind == 'best' for t in tiles)} of the best</h2>"
        f'<p class="legend">{legend}</p>'
        f"<p>Detections scoring at least {threshold:g} (at most {max_drawn} drawn per frame); "
        f"matched at IoU {iou_threshold:g} like the AP.</p>"
        f'<div class="grid">{"".join(figures)}</div>'
        if tiles
        else "<p>No validation frames drawn.</p>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{_PAGE_STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f"<p>{esc(metric)} <b>{mean_ap:.4f}</b>"
        + _mode_text(mode, iou_threshold)
        + f" over {num_images} validation images.</p>"
        f"<table>{header}</tr>{rows}</table>"
        + (f'<h2>Precision-recall curves</h2><div class="curves">{curves}</div>' if curves else "")
        + f"{grid}</body></html>"
    )


# --- quality gate ---------------------------------------------------------------------------


def gate_markdown(
    *,
    unpruned_map: float,
    pruned_map: float,
    min_map: float,
    max_map_drop: float,
    verdict: str,
    metric: str = "mAP",
    higher_is_better: bool = True,
) -> str:
    """The gate's verdict: each check, its threshold and whether it passed; the values are
    the network's primary ``metric`` (mAP, top1_accuracy; ``higher_is_better`` as its
    ``MetricSpec`` says: else the threshold is a ceiling and a rise is a loss)."""
    sign = 1.0 if higher_is_better else -1.0
    drop = sign * (unpruned_map - pruned_map)
    passed = verdict == "pass"
    reach = sign * (pruned_map - min_map) >= 0
    keep = drop <= max_map_drop
    lines = [
        f"# Quality gate: {'PASS' if passed else 'FAIL'}",
        "",
        "Both checks passed: the pruned, retrained model goes on to export and engine builds."
        if passed
        else f"Nothing is deployed: {md_text(verdict.removeprefix('fail: '))}.",
        "",
    ]
    lines += _table_md(
        ["check", "value", "threshold", "result"],
        [
            [
                f"{md_text(metric)} of the pruned, retrained model",
                f"{pruned_map:.4f}",
                f"{'at least' if higher_is_better else 'at most'} {min_map:.4f}",
                "pass" if reach else "**fail**",
            ],
            [
                f"{md_text(metric)} lost by pruning",
                (f"{drop:.4f}" if drop >= 0 else f"none, gained {-drop:.4f}")
                + f" ({unpruned_map:.4f} → {pruned_map:.4f})",
                f"at most {max_map_drop:.4f}",
                "pass" if keep else "**fail**",
            ],
        ],
    )
    return "\n".join(lines) + "\n"


# --- pruning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerGroupParams:
    name: str
    before: int
    after: int


@dataclass(frozen=True)
class Latency:
    """Median time of one batch, before and after pruning, and how it was measured."""

    before_ms: float
    after_ms: float
    method: str


def prune_markdown(
    groups: Sequence[LayerGroupParams],
    *,
    threshold: float,
    latency: Latency | None,
    latency_note: str = "",
) -> str:
    """Parameters per layer group before and after pruning; CPU latency when measured."""
    before = sum(g.before for g in groups)
    after = sum(g.after for g in groups)
    ratio = after / before if before else 1.0
    lines = [
        "# Pruning",
        "",
        f"Threshold {threshold:g}: **{after:,}** of {before:,} parameters kept "
        f"(ratio {ratio:.3f}).",
        "",
    ]
    rows = [
        [md_text(g.name), f"{g.before:,}", f"{g.after:,}", _kept(g.before, g.after)] for g in groups
    ]
    rows.append(["**total**", f"{before:,}", f"{after:,}", _kept(before, after)])
    lines += _table_md(["layer group", "parameters before", "after", "kept"], rows)
    lines.append("")
    if latency is not None:
        speedup = latency.before_ms / latency.after_ms if latency.after_ms > 0 else float("nan")
        lines += _table_md(
            ["latency", "before", "after", "speed-up"],
            [
                [
                    md_text(latency.method),
                    f"{latency.before_ms:.1f} ms",
                    f"{latency.after_ms:.1f} ms",
                    f"{speedup:.2f}x",
                ]
            ],
        )
    else:
        lines.append(f"Latency not measured{': ' + md_text(latency_note) if latency_note else ''}.")
    return "\n".join(lines) + "\n"


def _kept(before: int, after: int) -> str:
    return f"{100.0 * after / before:.1f} %" if before else "—"


# --- engine builds --------------------------------------------------------------------------


def engine_builds_markdown(target: str, builds: dict[str, dict]) -> str:
    """One row per precision: built or why not, engine size, latency when measured.

    ``builds``: precision -> the build report entry (``status``, ``reason``,
    ``engine_bytes``, ``latency_ms``, ``latency_note``, ``seconds``)."""
    rows = []
    for precision, entry in builds.items():
        built = entry.get("status") == "built"
        state = "built" if built else f"**not built**: {md_text(entry.get('reason', ''))}"
        latency = entry.get("latency_ms")
        if latency is not None:
            latency_text = f"{float(latency):.2f} ms"
        elif built:
            latency_text = "not measured: " + md_text(entry.get("latency_note", ""))
        else:
            latency_text = "—"
        rows.append(
            [
                md_text(precision),
                state,
                _size(entry.get("engine_bytes")),
                latency_text,
                _duration(entry.get("seconds")),
            ]
        )
    lines = [f"# TensorRT engines for target {md_text(target)}", ""]
    if not rows:
        lines.append("No precision was asked for this target.")
    else:
        lines += _table_md(["precision", "engine", "size", "latency (batch 1)", "build"], rows)
    return "\n".join(lines) + "\n"


# --- the run as a whole ---------------------------------------------------------------------


@dataclass(frozen=True)
class StageTime:
    name: str
    seconds: float | None


def run_summary_markdown(
    *,
    pipeline: str,
    model_version: str,
    version_uri: str,
    value: float | None,
    stages: Sequence[StageTime],
    engines: dict[str, dict[str, dict]],
    metric: str = "mAP",
) -> str:
    """Published version, where it is, its primary ``metric`` (mAP, top1_accuracy), each
    stage's wall time, engines per target.

    ``engines``: target -> precision -> build report entry."""
    map_text = f"{value:.4f}" if value is not None else "not measured"
    lines = [
        f"# {md_text(pipeline)}: version {md_text(model_version)} published",
        "",
        f"- **location**: `{html.escape(version_uri, quote=False).replace('`', '')}`",
        f"- **{md_text(metric)}** of the published model on the validation data: **{map_text}**",
        "",
        "## Stages",
        "",
    ]
    total = sum(s.seconds for s in stages if s.seconds is not None)
    rows = [[md_text(s.name), _duration(s.seconds)] for s in stages]
    rows.append(["**all stages**", _duration(total)])
    lines += _table_md(["stage", "wall time"], rows)
    lines += ["", "## Engines", ""]
    engine_rows = []
    for target, builds in engines.items():
        for precision, entry in builds.items():
            built = entry.get("status") == "built"
            engine_rows.append(
                [
                    md_text(target),
                    md_text(precision),
                    "built" if built else f"not built: {md_text(entry.get('reason', ''))}",
                    _size(entry.get("engine_bytes")),
                ]
            )
    if engine_rows:
        lines += _table_md(["target", "precision", "engine", "size"], engine_rows)
    else:
        lines.append("No engine build reports found.")
    return "\n".join(lines) + "\n"
