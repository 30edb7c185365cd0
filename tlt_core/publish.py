"""Published model versions: ``<publish_uri>/<version>/...`` with ``manifest.json`` last.

A version is complete only when its manifest exists: the manifest lists every file of the
version with its size and sha256, the model version, the git commit of the specs and the
metrics. The prefix may be local (a folder) or ``s3://``. Engine builds stage their files
under ``engines/<target>/`` of the version before the publish task writes the manifest.

Layout::

    <version>/model.onnx                    exported network with post-processing
    <version>/calibration.cache             TensorRT INT8 calibration cache
    <version>/deepstream/labels.txt         DeepStream labels
    <version>/deepstream/nvinfer_config.txt DeepStream nvinfer config
    <version>/engines/<target>/<precision>.engine (+ .json build info)
    <version>/experiment_spec.txt           the spec the model was trained with
    <version>/metrics.json                  mAP and AP per class
    <version>/manifest.json                 written last
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tlt_core import storage
from tlt_core.errors import StorageError
from tlt_core.io_utils import atomic_dir, atomic_path, write_text_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "tlt-model-version/1"
_IGNORED = {MANIFEST, storage.MARKER_NAME}


def _join(base: str, relative: str) -> str:
    return f"{base.rstrip('/')}/{relative}"


@dataclass(frozen=True)
class VersionLocation:
    """Where one model version lives."""

    publish_uri: str
    version: str

    @property
    def uri(self) -> str:
        return _join(str(self.publish_uri), self.version)

    @property
    def remote(self) -> bool:
        return storage.is_remote(self.publish_uri)

    def put(self, local: str | Path, relative: str) -> None:
        """Copy a file or a folder into the version (atomically per file/folder)."""
        local = Path(local)
        if not local.exists():
            raise StorageError(f"{local}: nothing to publish as {relative}")
        target = _join(self.uri, relative)
        if self.remote:
            if local.is_dir():
                storage.upload_dir(local, target)
            else:
                storage.upload_file(local, target)
            return
        if local.is_dir():
            with atomic_dir(target) as tmp:
                shutil.copytree(local, tmp, dirs_exist_ok=True)
        else:
            with atomic_path(target) as tmp:
                shutil.copyfile(local, tmp)

    def files(self) -> dict[str, dict]:
        """Every file of the version but the manifest: relative path -> size and sha256."""
        listing: dict[str, dict] = {}
        if self.remote:
            prefix = self.uri.rstrip("/") + "/"
            for info in storage.list_objects(prefix):
                relative = info.uri[len(prefix) :]
                if Path(relative).name in _IGNORED:
                    continue
                sha = info.sha256 or self._remote_sha256(info.uri)
                listing[relative] = {"size": info.size, "sha256": sha}
            return listing
        root = Path(self.uri)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name in _IGNORED or path.name.startswith("."):
                continue
            listing[path.relative_to(root).as_posix()] = {
                "size": path.stat().st_size,
                "sha256": storage.sha256_file(path),
            }
        return listing

    @staticmethod
    def _remote_sha256(uri: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            local = storage.download(uri, Path(tmp) / "object")
            return storage.sha256_file(local)

    def write_manifest(self, info: dict) -> dict:
        """List and hash the version's files, then write the manifest (last)."""
        manifest = {
            "format": MANIFEST_FORMAT,
            "model_version": self.version,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **info,
            "artifacts": self.files(),
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        with tempfile.TemporaryDirectory() as tmp:
            local = write_text_atomic(Path(tmp) / MANIFEST, text)
            self.put(local, MANIFEST)
        return manifest

    def read_manifest(self) -> dict:
        target = _join(self.uri, MANIFEST)
        try:
            if self.remote:
                with tempfile.TemporaryDirectory() as tmp:
                    return json.loads(storage.download(target, Path(tmp) / MANIFEST).read_text())
            return json.loads(Path(target).read_text())
        except FileNotFoundError:
            raise StorageError(
                f"{target}: no manifest: version {self.version} is missing or incomplete"
            ) from None

    def fetch(self, relative: str, dest: str | Path) -> Path:
        """Download (or copy) one file or folder of the version, checking manifest hashes."""
        manifest = self.read_manifest()
        dest = Path(dest)
        source = _join(self.uri, relative)
        if self.remote:
            storage.download(source, dest)
        elif Path(source).is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        expected = manifest["artifacts"]
        checked = [dest] if dest.is_file() else [p for p in dest.rglob("*") if p.is_file()]
        for path in checked:
            name = relative if dest.is_file() else f"{relative}/{path.relative_to(dest).as_posix()}"
            if path.name in _IGNORED:
                continue
            entry = expected.get(name)
            if entry is None or storage.sha256_file(path) != entry["sha256"]:
                raise StorageError(f"{_join(self.uri, name)}: content does not match the manifest")
        return dest
