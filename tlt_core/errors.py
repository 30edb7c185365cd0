"""The error hierarchy: every error a user can cause is one of these.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; no traceback.
Messages name the file, the line (where there is one) and the field, e.g.
``spec.txt:12: ssd_config.scales: expected 7 values, got 6``.
"""

from __future__ import annotations

from pathlib import Path


class TltError(Exception):
    """Base of all user-facing errors."""

    exit_code = 1


def located(
    message: str, path: str | Path | None = None, line: int | None = None, field: str | None = None
) -> str:
    """Format ``path:line: field: message``, leaving out the parts that are unknown."""
    head = ""
    if path is not None:
        head = str(path)
        if line is not None:
            head += f":{line}"
        head += ": "
    if field:
        head += f"{field}: "
    return head + message


class UsageError(TltError):
    """Bad command-line arguments (a bad dims string, an unknown option value)."""

    exit_code = 2


class _LocatedError(TltError):
    """An error at a place in a file: the message is ``path:line: field: message``."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(located(message, path, line, field))
        self.path, self.line, self.field = path, line, field


class SpecError(_LocatedError):
    """A spec file that does not parse or does not validate."""

    exit_code = 2


class DataError(_LocatedError):
    """Malformed labels, corrupt or missing images, empty datasets."""

    exit_code = 3


class ModelFileError(TltError):
    """A model file that cannot be opened: wrong key, tampered, wrong format."""

    exit_code = 4


class ExportError(TltError):
    """Export, calibration or DeepStream config generation failed."""

    exit_code = 5


class EngineBuildError(TltError):
    """TensorRT is missing, or the engine build failed."""

    exit_code = 6


class StorageError(TltError):
    """An object-store path that cannot be read or written."""

    exit_code = 7


class PipelineError(TltError):
    """Compiling, running, submitting or scheduling a Kubeflow pipeline failed."""

    exit_code = 8
