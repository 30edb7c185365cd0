"""The report artifacts of a ``kfp.local`` run, copied to ``OUT/reports/``.

``kfp.local`` keeps each task's outputs under ``<pipeline_root>/<run>/<task>/<output>``
(no file extension); the reports are the outputs named in ``REPORT_OUTPUTS``. Each is copied
as ``<task>.<ext>`` (``evaluate-2.html``, ``quality-gate.md``) and listed with its title.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

# Output name of a report artifact -> file extension (HTML or Markdown artifact).
REPORT_OUTPUTS = {
    "report": ".html",
    "gate_report": ".md",
    "prune_report": ".md",
    "engine_report": ".md",
    "summary": ".md",
}
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)
_MARKDOWN_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class LocalReport:
    path: Path
    title: str


def latest_run_dir(pipeline_root: Path, pipeline_name: str) -> Path | None:
    runs = [p for p in pipeline_root.glob(f"{pipeline_name}-*") if p.is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def report_title(text: str) -> str:
    import html

    match = _HTML_TITLE.search(text) or _MARKDOWN_TITLE.search(text)
    if not match:
        return ""
    return html.unescape(match.group(1).strip()).replace("\\", "")


def collect_reports(run_dir: Path, reports_dir: Path) -> list[LocalReport]:
    """Copy the run's report artifacts into ``reports_dir``, replacing an earlier run's."""
    for old in reports_dir.glob("*"):
        if old.is_file() and old.suffix in REPORT_OUTPUTS.values():
            old.unlink()
    found: list[LocalReport] = []
    for task_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        for output, suffix in REPORT_OUTPUTS.items():
            source = task_dir / output
            if not source.is_file():
                continue
            reports_dir.mkdir(parents=True, exist_ok=True)
            target = reports_dir / f"{task_dir.name}{suffix}"
            shutil.copyfile(source, target)
            found.append(LocalReport(target, report_title(source.read_text(errors="replace"))))
    return found
