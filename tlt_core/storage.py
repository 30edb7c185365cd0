"""Local paths or ``s3://bucket/prefix`` URIs for every path argument of the CLI.

The CLI resolves each path argument through a :class:`PathResolver`; stages only ever see
local paths::

    with PathResolver() as paths:
        spec = paths.input(args.experiment_spec)     # s3:// object or prefix -> downloaded
        results = paths.output(args.results_dir)     # local path; uploaded on success only
        train(spec, results, ...)

Any S3 endpoint works (MinIO, SeaweedFS, AWS). Settings come from the environment:
``S3_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL`` / ``MINIO_ENDPOINT`` (``http://host:port``: the
scheme decides TLS; no scheme means https; none at all means AWS), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
``S3_VERIFY_SSL`` (``0``/``false`` turns certificate checks off; a file path is a CA bundle).

Guarantees:

* Never a partial object. One S3 PUT is atomic: an object appears whole or not at all; a
  failed multipart upload is aborted by the client and never completed.
* Content checks. After each upload the object is stat'ed and compared with the local file:
  size, the ``x-amz-meta-sha256`` the upload stored, and the ETag, which for an unencrypted
  object is the MD5 of the content (single part) or the MD5 of the part MD5s plus ``-N``
  (multipart, with the part size used here) and is computed locally the same way. A
  mismatch counts as a failed attempt. Downloads are written to a temporary file, checked
  against size, the stored sha256 (when present) and the single-part ETag, then renamed.
* Retries. Network failures, 5xx answers, throttling and failed content checks are retried
  with bounded exponential backoff (:class:`RetryPolicy`); access errors and missing
  objects are not, and surface as one-line :class:`StorageError` messages.
* Directories. A local directory uploads as one object per file under the prefix, then a
  ``_SUCCESS`` manifest (JSON: relative path -> size and sha256) is written LAST, after the
  previous one was removed first. A reader that finds ``_SUCCESS`` therefore sees a complete
  directory, and :func:`download` of such a prefix fetches exactly the files listed there
  and checks each against its sha256. Objects under the prefix that are not in the manifest
  (left by an earlier upload) are ignored, never deleted: an output prefix may share a
  bucket with anything else. A prefix without a manifest (a dataset uploaded by another
  tool) downloads every object under it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from tlt_core.errors import DataError, ModelFileError, SpecError, StorageError
from tlt_core.io_utils import atomic_dir, atomic_path, check_output_path

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"
MARKER_NAME = "_SUCCESS"
MANIFEST_FORMAT = "tlt-storage-manifest/1"
SHA256_META = "sha256"  # stored as the user metadata header x-amz-meta-sha256
PART_SIZE = 16 * 1024 * 1024  # multipart part size; files up to this size are one PUT
CHUNK = 1024 * 1024
DEFAULT_WORKERS = 4
ENDPOINT_VARS = ("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "MINIO_ENDPOINT")
AWS_ENDPOINT = "s3.amazonaws.com"

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
_TRANSIENT_S3_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "OperationAborted",
        "XMinioServerNotInitialized",
    }
)
_ACCESS_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "AllAccessDisabled"})
_SECRET_CODES = frozenset({"SignatureDoesNotMatch"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})

T = TypeVar("T")


# ----------------------------------------------------------------------------------------
# URIs and settings


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """True for ``s3://`` URIs, False for local paths."""
    return isinstance(uri, str) and uri.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Uri:
    """``s3://bucket/key``; ``key`` may be empty (the whole bucket) or a prefix."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not is_remote(uri):
            raise StorageError(f"{uri}: not an s3:// URI")
        bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
        if not _BUCKET_RE.match(bucket):
            raise StorageError(f"{uri}: invalid bucket name {bucket!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    @property
    def bucket_uri(self) -> str:
        return f"{S3_SCHEME}{self.bucket}"

    @property
    def prefix(self) -> str:
        """The key as a directory prefix: ``""`` for the bucket, else ending in ``/``."""
        stripped = self.key.strip("/")
        return f"{stripped}/" if stripped else ""

    @property
    def name(self) -> str:
        """The last path component (the bucket name for a bare bucket)."""
        parts = [part for part in self.key.split("/") if part]
        return parts[-1] if parts else self.bucket

    def child(self, relative: str) -> S3Uri:
        return S3Uri(self.bucket, self.prefix + relative)


@dataclass(frozen=True)
class S3Settings:
    """Where the object store is and how to sign requests; see :meth:`from_env`."""

    endpoint: str  # host[:port], as minio wants it
    secure: bool
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    verify_ssl: bool = True
    ca_bundle: str | None = None

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if env is None else env
        source, raw = next(((name, env[name]) for name in ENDPOINT_VARS if env.get(name)), ("", ""))
        if raw:
            parsed = urlsplit(raw if "://" in raw else f"https://{raw}")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise StorageError(f"{source}={raw}: expected http://host:port or https://host")
            if parsed.path not in ("", "/") or parsed.query:
                raise StorageError(f"{source}={raw}: an endpoint has no path; give host:port")
            try:
                parsed.port  # noqa: B018 - urlsplit checks the port only when asked
            except ValueError as error:
                raise StorageError(f"{source}={raw}: {error}; expected host:port") from None
            if not parsed.hostname:
                raise StorageError(f"{source}={raw}: no host name; expected host:port")
            endpoint, secure = parsed.netloc, parsed.scheme == "https"
        else:
            endpoint, secure = AWS_ENDPOINT, True
        access_key = env.get("AWS_ACCESS_KEY_ID") or None
        secret_key = env.get("AWS_SECRET_ACCESS_KEY") or None
        if bool(access_key) != bool(secret_key):
            missing = "AWS_SECRET_ACCESS_KEY" if access_key else "AWS_ACCESS_KEY_ID"
            present = "AWS_ACCESS_KEY_ID" if access_key else "AWS_SECRET_ACCESS_KEY"
            raise StorageError(f"{missing}: not set, but {present} is")
        verify_raw = env.get("S3_VERIFY_SSL", "").strip()
        ca_bundle = None
        verify = verify_raw.lower() not in _FALSE_WORDS
        if verify_raw and verify and verify_raw.lower() not in ("1", "true", "yes", "on"):
            if not Path(verify_raw).is_file():
                raise StorageError(f"S3_VERIFY_SSL={verify_raw}: not a boolean nor a CA file")
            ca_bundle = verify_raw
        return cls(
            endpoint=endpoint,
            secure=secure,
            access_key=access_key,
            secret_key=secret_key,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            verify_ssl=verify,
            ca_bundle=ca_bundle,
        )


def make_client(settings: S3Settings | None = None) -> Minio:
    """A minio client for ``settings`` (default: from the environment).

    urllib3's own retries are off: :func:`_with_retries` is the one retry layer, so every
    failed attempt is logged and counted once.
    """
    import certifi
    import urllib3
    from minio import Minio

    settings = settings or S3Settings.from_env()
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=300),
        maxsize=4 * DEFAULT_WORKERS,  # upload_dir workers x minio part threads
        cert_reqs="CERT_REQUIRED" if settings.verify_ssl else "CERT_NONE",
        ca_certs=settings.ca_bundle or os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=False,
    )
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        session_token=settings.session_token,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


def _endpoint_url(client: Minio) -> str:
    base = getattr(client, "_base_url", None)
    if base is None:  # a wrapped client (tests); ask the wrapped one
        inner = getattr(client, "wrapped", None)
        return _endpoint_url(inner) if inner is not None else "the S3 endpoint"
    return f"{'https' if base.is_https else 'http'}://{base.host}"


# ----------------------------------------------------------------------------------------
# Retries and error messages


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``base_delay * 2**n`` capped at ``max_delay``, jittered."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, failed_attempts: int) -> float:
        bound = min(self.max_delay, self.base_delay * 2 ** (failed_attempts - 1))
        return bound * random.uniform(0.5, 1.0)


DEFAULT_RETRY = RetryPolicy()


class ContentMismatch(Exception):
    """What was stored differs from what was sent (or what was read from what was stored)."""


def _is_transient(exc: BaseException) -> bool:
    import urllib3
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, ContentMismatch | urllib3.exceptions.HTTPError | ConnectionError):
        return True
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        status = getattr(exc, "_code", 0) or 0
        return status >= 500 or status == 429
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_S3_CODES
    return False


def _network_reason(exc: BaseException) -> str:
    """A short reason for a network failure: ``connection refused``, ``timed out``..."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return "timed out"
        match = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", str(current))
        if match:
            return match.group(1).strip().lower()
        if isinstance(current, ConnectionError) and str(current):
            return str(current).strip().lower()  # e.g. RemoteDisconnected's text
        nested = [arg for arg in current.args if isinstance(arg, BaseException)]
        current = (
            getattr(current, "reason", None)
            or (nested[0] if nested else None)
            or current.__cause__
            or current.__context__
        )
    return type(exc).__name__


def _describe(exc: BaseException, uri: S3Uri, endpoint: str) -> str:
    """A one-line message for ``exc`` about ``uri``."""
    import urllib3
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, S3Error):
        if exc.code in _MISSING_KEY_CODES:
            return f"{uri}: no such object"
        if exc.code == "NoSuchBucket":
            return f"{uri.bucket_uri}: no such bucket"
        if exc.code in _ACCESS_CODES:
            return f"{uri.bucket_uri}: access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        if exc.code in _SECRET_CODES:
            return f"{uri.bucket_uri}: access denied (check AWS_SECRET_ACCESS_KEY)"
        return f"{uri}: {exc.code}: {exc.message}"
    lost = urllib3.exceptions.ProtocolError | urllib3.exceptions.ReadTimeoutError
    if isinstance(exc, lost) or isinstance(getattr(exc, "reason", None), lost):
        return f"{uri}: connection to {endpoint} lost ({_network_reason(exc)})"
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return f"{uri}: endpoint {endpoint} unreachable ({_network_reason(exc)})"
    if isinstance(exc, ServerError):
        return f"{uri}: server error (HTTP {exc.status_code}) from {endpoint}"
    if isinstance(exc, InvalidResponseError):
        return f"{uri}: unexpected HTTP {getattr(exc, '_code', '?')} answer from {endpoint}"
    if isinstance(exc, ContentMismatch):
        return f"{uri}: content check failed: {exc}"
    return f"{uri}: {type(exc).__name__}: {exc}"


def _with_retries(
    action: Callable[[], T], uri: S3Uri, client: Minio, policy: RetryPolicy, what: str
) -> T:
    """Run ``action``; retry transient failures; turn every failure into a StorageError."""
    import urllib3
    from minio.error import MinioException

    # ValueError: minio's verdict on an invalid object name; not a bug of ours.
    failures = (MinioException, ContentMismatch, OSError, urllib3.exceptions.HTTPError, ValueError)
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except StorageError:
            raise
        except failures as exc:
            message = _describe(exc, uri, _endpoint_url(client))
            if not _is_transient(exc):
                raise StorageError(message) from exc
            if attempt == policy.attempts:
                raise StorageError(
                    f"{message}; {what} gave up after {policy.attempts} attempts"
                ) from exc
            delay = policy.delay(attempt)
            log.warning(
                "%s (attempt %d/%d); retrying in %.1fs", message, attempt, policy.attempts, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


# ----------------------------------------------------------------------------------------
# Hashes


@dataclass(frozen=True)
class FileDigest:
    """What an uploaded copy of a file must match."""

    size: int
    sha256: str
    etag: str  # the ETag S3 computes for an unencrypted upload with ``part_size``


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | Path, part_size: int = PART_SIZE) -> FileDigest:
    """Size, sha256 and the expected S3 ETag of ``path`` in one read."""
    sha = hashlib.sha256()
    part_md5s: list[bytes] = []
    size = 0
    with open(path, "rb") as handle:
        while True:
            part = handle.read(part_size)
            if not part and part_md5s:
                break
            sha.update(part)
            part_md5s.append(hashlib.md5(part, usedforsecurity=False).digest())
            size += len(part)
            if len(part) < part_size:
                break
    return FileDigest(size, sha.hexdigest(), _etag_from_parts(part_md5s))


def _etag_from_parts(part_md5s: list[bytes]) -> str:
    if len(part_md5s) == 1:
        return part_md5s[0].hex()
    joined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(part_md5s)}"


def _is_encrypted(metadata: Mapping[str, str]) -> bool:
    """Server-side encrypted objects (SSE-KMS, MinIO SSE) have ETags that are not MD5s."""
    return any(key.lower().startswith("x-amz-server-side-encryption") for key in metadata)


# ----------------------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object."""

    uri: str
    key: str
    size: int
    etag: str
    sha256: str | None = None


def _check_stored(client: Minio, target: S3Uri, expected: FileDigest) -> ObjectInfo:
    """Stat ``target`` and compare it with ``expected``; ContentMismatch if it differs."""
    stat = client.stat_object(target.bucket, target.key)
    metadata = stat.metadata or {}
    stored_sha = metadata.get(f"x-amz-meta-{SHA256_META}")
    etag = (stat.etag or "").strip('"')
    problems = []
    if stat.size != expected.size:
        problems.append(f"size {stat.size} != {expected.size}")
    if stored_sha != expected.sha256:
        problems.append(f"sha256 metadata {stored_sha} != {expected.sha256}")
    if not _is_encrypted(metadata) and etag != expected.etag:
        problems.append(f"ETag {etag} != {expected.etag}")
    if problems:
        raise ContentMismatch("; ".join(problems))
    return ObjectInfo(str(target), target.key, int(stat.size or 0), etag, stored_sha)


def _put_file(
    client: Minio, path: Path, target: S3Uri, digest: FileDigest, part_size: int
) -> ObjectInfo:
    with open(path, "rb") as handle:
        client.put_object(
            target.bucket,
            target.key,
            handle,
            digest.size,
            metadata={SHA256_META: digest.sha256},
            part_size=part_size,
        )
    return _check_stored(client, target, digest)


def upload_file(
    local: str | Path,
    uri: str,
    *,
    client: Minio | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    part_size: int = PART_SIZE,
) -> ObjectInfo:
    """Upload one file to ``uri`` (a key ending in ``/`` gets the file's name appended).

    Retried on transient failures, verified after every attempt (see the module doc).
    """
    path = Path(local)
    if not path.is_file():
        raise StorageError(f"{path}: no such file to upload")
    target = S3Uri.parse(uri)
    if not target.key or target.key.endswith("/"):
        target = S3Uri(target.bucket, target.key + path.name)
    client = client or make_client()
    digest = file_digest(path, part_size)
    try:
        info = _with_retries(
            lambda: _put_file(client, path, target, digest, part_size),
            target,
            client,
            retry,
            "upload",
        )
    except StorageError as error:
        if not isinstance(error.__cause__, ContentMismatch):
            raise
        # The last attempt stored something other than the file: better no object at all.
        with contextlib.suppress(Exception):
            client.remove_object(target.bucket, target.key)
        raise StorageError(f"{error}; the mismatching object was removed") from error.__cause__
    log.info("uploaded %s -> %s (%d bytes)", path, target, digest.size)
    return info


def _put_bytes(client: Minio, data: bytes, target: S3Uri) -> ObjectInfo:
    digest = FileDigest(
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    client.put_object(
        target.bucket,
        target.key,
        io.BytesIO(data),
        len(data),
        content_type="application/json",
        metadata={SHA256_META: digest.sha256},
    )
    return _check_stored(client, target, digest)


def upload_dir(
    local_dir: str | Path,
    uri: str,
    *,
    client: Minio | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    part_size: int = PART_SIZE,
    workers: int = DEFAULT_WORKERS,
) -> list[ObjectInfo]:
    """Upload every file under ``local_dir`` below the prefix ``uri``, ``_SUCCESS`` last.

    Returns the uploaded objects (the manifest last).
    """
    from minio.error import S3Error

    root = Path(local_dir)
    if not root.is_dir():
        raise StorageError(f"{root}: no such directory to upload")
    base = S3Uri.parse(uri)
    files = sorted(path for path in root.rglob("*") if path.is_file())
    relatives = [path.relative_to(root).as_posix() for path in files]
    if MARKER_NAME in relatives:
        raise StorageError(f"{root / MARKER_NAME}: name reserved for the upload manifest")
    client = client or make_client()
    marker = base.child(MARKER_NAME)

    def remove_marker() -> None:
        try:
            client.remove_object(marker.bucket, marker.key)
        except S3Error as exc:  # absent already is fine
            if exc.code not in _MISSING_KEY_CODES:
                raise

    # The old manifest goes first: from here on, readers see the prefix as incomplete.
    _with_retries(remove_marker, marker, client, retry, "removing the old manifest")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                upload_file,
                path,
                str(base.child(rel)),
                client=client,
                retry=retry,
                part_size=part_size,
            )
            for path, rel in zip(files, relatives, strict=True)
        ]
        uploaded = [future.result() for future in futures]
    manifest = {
        "format": MANIFEST_FORMAT,
        "files": {
            rel: {"size": info.size, "sha256": info.sha256}
            for rel, info in zip(relatives, uploaded, strict=True)
        },
    }
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    uploaded.append(
        _with_retries(
            lambda: _put_bytes(client, data, marker), marker, client, retry, "writing the manifest"
        )
    )
    log.info("uploaded %s -> %s (%d files)", root, base, len(files))
    return uploaded


def list_objects(
    uri: str, *, client: Minio | None = None, retry: RetryPolicy = DEFAULT_RETRY
) -> list[ObjectInfo]:
    """Every object whose key starts with the key of ``uri`` (a plain string prefix)."""
    base = S3Uri.parse(uri)
    client = client or make_client()

    def listing() -> list[ObjectInfo]:
        return [
            ObjectInfo(
                f"{S3_SCHEME}{base.bucket}/{obj.object_name}",
                obj.object_name,
                int(obj.size or 0),
                (obj.etag or "").strip('"'),
            )
            for obj in client.list_objects(base.bucket, prefix=base.key, recursive=True)
            if not obj.is_dir and obj.object_name
        ]

    return _with_retries(listing, base, client, retry, "listing")


def _get_object(
    client: Minio,
    source: S3Uri,
    dest: Path,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Stream ``source`` into a temporary file beside ``dest``, check it, rename it."""
    stat = client.stat_object(source.bucket, source.key)
    metadata = stat.metadata or {}
    size = int(stat.size or 0)
    want_sha = expected_sha256 or metadata.get(f"x-amz-meta-{SHA256_META}")
    etag = (stat.etag or "").strip('"')
    sha, md5, received = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with atomic_path(dest) as tmp:
        response = client.get_object(source.bucket, source.key)
        try:
            with open(tmp, "wb") as out:
                for block in response.stream(CHUNK):
                    out.write(block)
                    sha.update(block)
                    md5.update(block)
                    received += len(block)
        finally:
            response.close()
            response.release_conn()
        problems = []
        if received != size:
            problems.append(f"got {received} bytes, object has {size}")
        if expected_size is not None and size != expected_size:
            problems.append(f"object has {size} bytes, manifest says {expected_size}")
        if want_sha and sha.hexdigest() != want_sha:
            problems.append(f"sha256 {sha.hexdigest()} != {want_sha}")
        single_part_md5 = re.fullmatch(r"[0-9a-f]{32}", etag) is not None
        if single_part_md5 and not _is_encrypted(metadata) and md5.hexdigest() != etag:
            problems.append(f"MD5 {md5.hexdigest()} != ETag {etag}")
        if problems:
            raise ContentMismatch("; ".join(problems))
    return dest


def _safe_relative(root: Path, relative: str, origin: str) -> Path:
    """``root/relative``, refusing keys that would escape ``root`` (``..``, absolute)."""
    raw_parts = relative.split("/")
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(part in ("..", ".") for part in raw_parts):
        raise StorageError(f"{origin}: unsafe object name {relative!r}")
    return root.joinpath(*parts)


def _read_manifest(client: Minio, marker: S3Uri) -> dict[str, Any] | None:
    from minio.error import S3Error

    try:
        response = client.get_object(marker.bucket, marker.key)
    except S3Error as exc:
        if exc.code in _MISSING_KEY_CODES:
            return None
        raise
    try:
        raw = response.read()
    finally:
        response.close()
        response.release_conn()
    try:
        manifest = json.loads(raw or b"{}")
    except ValueError as exc:
        raise StorageError(f"{marker}: not a JSON manifest ({exc})") from exc
    if not raw:  # an empty _SUCCESS (Hadoop/Spark style): complete, but no file list
        return {"files": None}
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise StorageError(f"{marker}: manifest has no 'files' table")
    return manifest


def download(
    uri: str,
    dest: str | Path,
    *,
    client: Minio | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    workers: int = DEFAULT_WORKERS,
    require_marker: bool = False,
) -> Path:
    """Download an object to the file ``dest``, or a prefix to the directory ``dest``.

    ``uri`` names an object if one exists with exactly that key; otherwise it is a
    directory prefix (``key/``). ``dest`` appears whole or not at all. With
    ``require_marker`` a prefix without ``_SUCCESS`` is an error (an incomplete upload).
    """
    from minio.error import S3Error

    source = S3Uri.parse(uri)
    dest = Path(dest)
    client = client or make_client()

    def probe() -> bool:  # True: an object; False: maybe a prefix
        if not source.key or source.key.endswith("/"):
            return False
        try:
            client.stat_object(source.bucket, source.key)
        except S3Error as exc:
            if exc.code in _MISSING_KEY_CODES:
                return False
            raise
        return True

    if _with_retries(probe, source, client, retry, "stat"):
        return _with_retries(
            lambda: _get_object(client, source, dest), source, client, retry, "download"
        )

    prefix = S3Uri(source.bucket, source.prefix)
    marker = prefix.child(MARKER_NAME)
    manifest = _with_retries(
        lambda: _read_manifest(client, marker), marker, client, retry, "reading the manifest"
    )
    if manifest is None and require_marker:
        raise StorageError(f"{prefix}: no {MARKER_NAME} manifest (incomplete upload?)")
    wanted: list[tuple[str, int | None, str | None]]
    if manifest is not None and manifest["files"] is not None:
        wanted = [
            (rel, entry.get("size"), entry.get("sha256"))
            for rel, entry in sorted(manifest["files"].items())
        ]
    else:
        listed = list_objects(str(prefix), client=client, retry=retry)
        wanted = [
            (info.key[len(prefix.key) :], info.size, None)
            for info in listed
            if info.key[len(prefix.key) :] not in ("", MARKER_NAME) and not info.key.endswith("/")
        ]
        if not wanted and manifest is None:
            raise StorageError(f"{source}: no such object")
    with atomic_dir(dest) as tmp_root:
        targets = [
            (prefix.child(rel), _safe_relative(tmp_root, rel, str(prefix)), size, sha)
            for rel, size, sha in wanted
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [
                pool.submit(
                    _with_retries,
                    lambda src=src, path=path, size=size, sha=sha: _get_object(
                        client, src, path, expected_size=size, expected_sha256=sha
                    ),
                    src,
                    client,
                    retry,
                    "download",
                )
                for src, path, size, sha in targets
            ]
            for future in futures:
                future.result()
    log.info("downloaded %s -> %s (%d files)", prefix, dest, len(wanted))
    return dest


# ----------------------------------------------------------------------------------------
# The resolver the CLI uses


class PathResolver:
    """Turns path arguments (local or ``s3://``) into local paths for one command.

    ``input(uri)`` downloads remote inputs into a private temporary directory; ``output(uri)``
    hands out a local path and uploads whatever was written there (a file or a directory)
    when the ``with`` block exits without an exception. On an exception nothing is uploaded.
    If an upload fails, the temporary directory is kept and the error names it, so the
    results of a long run are not lost.
    """

    def __init__(
        self,
        *,
        client: Minio | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        workdir: str | Path | None = None,
    ) -> None:
        self._client = client
        self._retry = retry
        self._workdir = workdir
        self._tmp: Path | None = None
        self._inputs: dict[str, Path] = {}
        self._outputs: list[tuple[str, Path]] = []
        self._count = 0

    def __enter__(self) -> PathResolver:
        self._tmp = Path(tempfile.mkdtemp(prefix="tlt-paths-", dir=self._workdir))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        keep = False
        try:
            if exc_type is None:
                try:
                    self.upload_outputs()
                except StorageError as error:
                    keep = True
                    raise StorageError(f"{error}; local copy kept in {self._tmp}") from error
            elif self._outputs:
                log.info("not uploading %d output(s): the command failed", len(self._outputs))
        finally:
            if self._tmp is not None and not keep:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    @property
    def client(self) -> Minio:
        if self._client is None:
            self._client = make_client()
        return self._client

    def _slot(self, kind: str, name: str) -> Path:
        if self._tmp is None:
            raise RuntimeError("PathResolver used outside its `with` block")
        self._count += 1
        slot = self._tmp / f"{kind}{self._count}"
        slot.mkdir()
        return slot / name

    def input(self, uri: str | os.PathLike[str]) -> Path:
        """A local path holding ``uri``: local paths as they are (they must exist)."""
        if not is_remote(uri):
            path = Path(uri)
            if not path.exists():
                raise DataError("no such file or directory", path)
            return path
        return self._download(uri)

    def spec(self, uri: str | os.PathLike[str]) -> Path:
        """:meth:`input` for a spec file: a missing one is a SpecError (exit 2, as for every
        other spec problem)."""
        if not is_remote(uri) and not Path(uri).exists():
            raise SpecError("no such spec file", uri)
        return self.input(uri)

    def model(self, uri: str | os.PathLike[str]) -> Path:
        """:meth:`input` for a model file: a missing one is a ModelFileError (exit 4)."""
        if not is_remote(uri) and not Path(uri).exists():
            raise ModelFileError(f"{uri}: no such model file")
        return self.input(uri)

    def _download(self, uri: str | os.PathLike[str]) -> Path:
        uri = str(uri)
        if uri not in self._inputs:
            source = S3Uri.parse(uri)
            local = self._slot("in", source.name)
            self._inputs[uri] = download(uri, local, client=self.client, retry=self._retry)
        return self._inputs[uri]

    def output(self, uri: str | os.PathLike[str], kind: str = "any") -> Path:
        """A local path to write ``uri`` to (nothing exists there yet for remote URIs).

        A local path is checked now, before the command's work starts
        (:func:`tlt_core.io_utils.check_output_path`: ``kind`` "file", "dir" or "any").
        """
        if not is_remote(uri):
            return check_output_path(uri, kind)
        uri = str(uri)
        local = self._slot("out", S3Uri.parse(uri).name)
        self._outputs.append((uri, local))
        return local

    def upload_outputs(self) -> list[ObjectInfo]:
        """Upload every output written so far (``__exit__`` calls this on success)."""
        uploaded: list[ObjectInfo] = []
        for uri, local in self._outputs:
            if local.is_dir():
                uploaded += upload_dir(local, uri, client=self.client, retry=self._retry)
            elif local.is_file():
                # The URI names the object itself, even when written with a trailing "/".
                target = S3Uri.parse(uri)
                key = target.key.rstrip("/") or local.name
                uploaded.append(
                    upload_file(
                        local, str(S3Uri(target.bucket, key)), client=self.client, retry=self._retry
                    )
                )
            else:
                log.warning("%s: nothing was written, nothing uploaded", uri)
        self._outputs = []
        return uploaded
