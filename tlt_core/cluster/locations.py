"""Files a distributed train job shares between the launcher and the workers: the
experiment spec, the TFRecords, the results folder (checkpoints, status.json).

Locations are ``s3://`` URIs on a cluster (every pod reads them with the S3 Secret) or local
paths (tests, one machine). KFP artifact URIs on MinIO (``minio://bucket/key``) name the
same objects as ``s3://bucket/key`` on the MinIO endpoint the S3 Secret points at.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tlt_core import storage
from tlt_core.errors import PipelineError
from tlt_core.io_utils import atomic_path


def shared_uri(artifact_uri: str) -> str:
    """The location every pod can read for a KFP artifact URI."""
    if artifact_uri.startswith("minio://"):
        return "s3://" + artifact_uri[len("minio://") :]
    if artifact_uri.startswith(("gs://", "https://", "http://")):
        raise PipelineError(
            f"{artifact_uri}: distributed training reads artifacts from S3 or MinIO only"
        )
    return artifact_uri


def join(base: str, *parts: str) -> str:
    if storage.is_remote(base):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base, *parts))


def exists(location: str) -> bool:
    if storage.is_remote(location):
        return bool(storage.list_objects(location))
    return Path(location).exists()


def put_text(location: str, text: str) -> None:
    if storage.is_remote(location):
        with tempfile.TemporaryDirectory(prefix="tlt-put-") as tmp:
            path = Path(tmp) / "file"
            path.write_text(text)
            storage.upload_file(path, location)
        return
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(location)) as tmp:
        tmp.write_text(text)


def fetch(location: str, dest: Path) -> Path:
    """A file or folder at ``location`` copied (or downloaded) to ``dest``."""
    if storage.is_remote(location):
        return storage.download(location, dest)
    source = Path(location)
    if not source.exists():
        raise PipelineError(f"{location}: not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)
    return dest


def read_status(results: str) -> dict[str, Any] | None:
    """``status.json`` of a results folder, or None when there is none yet."""
    location = join(results, "status.json")
    if not exists(location):
        return None
    with tempfile.TemporaryDirectory(prefix="tlt-status-") as tmp:
        path = fetch(location, Path(tmp) / "status.json")
        try:
            return json.loads(path.read_text())
        except ValueError as error:
            raise PipelineError(f"{location}: not JSON: {error}") from None
