"""The sealed model container: ``.tlt`` (a Keras model + metadata) and ``.etlt`` (ONNX).

Layout of a sealed file::

    header   = MAGIC (8) | version (1) | kind length (1) | kind (ascii) |
               scrypt log2 N (1) | r (1) | p (1) | salt (16) | nonce (12)
    body     = AES-256-GCM(key = scrypt(user key, salt), nonce, plaintext, aad = header)

The whole header is authenticated, so a changed KDF parameter, kind or version fails like a
wrong key. The plaintext of a ``.tlt`` is a zip holding ``model.keras`` (Keras' native
format, loaded with ``safe_mode=True``: no code is ever deserialised), ``metadata.json`` and
optionally ``training_state.npz`` (optimizer variables, for an exact resume).
"""

from __future__ import annotations

import io
import json
import os
import platform
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tlt_core.errors import ModelFileError
from tlt_core.io_utils import atomic_path, read_bytes_limited

MAGIC = b"TLTSEAL\x00"
CONTAINER_VERSION = 1
FORMAT_VERSION = 1  # of the .tlt plaintext (zip layout + metadata keys)
KIND_TLT = "tlt"
KIND_ETLT = "etlt"
SCRYPT_LOG2_N = 15  # 32 MiB, ~0.1 s: slows key guessing, cheap next to a training epoch
SCRYPT_R = 8
SCRYPT_P = 1
# The only key-derivation parameters a sealed file may ask for: the header is read before it
# is authenticated, so a tampered r or p (cost grows linearly in each, memory in r) would
# otherwise buy minutes of CPU or gigabytes of memory before the tag check fails. log2 N may
# be lowered (older or test files) but never raised above what this project writes.
ALLOWED_KDF = frozenset((log2_n, SCRYPT_R, SCRYPT_P) for log2_n in range(10, SCRYPT_LOG2_N + 1))
SALT_BYTES = 16
MAX_MODEL_FILE_BYTES = 4 << 30
NONCE_BYTES = 12

_MODEL_ENTRY = "model.keras"
_METADATA_ENTRY = "metadata.json"
_STATE_ENTRY = "training_state.npz"


def _derive(key: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(key.encode("utf-8"))


def _check_key(key: str | None, where: str) -> str:
    if not key:
        raise ModelFileError(f"{where}: an encryption key (-k) is required")
    return key


def seal_bytes(plaintext: bytes, key: str, *, kind: str = KIND_TLT) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key``; returns the sealed bytes."""
    key = _check_key(key, kind)
    kind_bytes = kind.encode("ascii")
    salt = os.urandom(SALT_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    header = (
        MAGIC
        + struct.pack("BB", CONTAINER_VERSION, len(kind_bytes))
        + kind_bytes
        + struct.pack("BBB", SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        + salt
        + nonce
    )
    cipher = AESGCM(_derive(key, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P))
    return header + cipher.encrypt(nonce, plaintext, header)


def open_bytes(sealed: bytes, key: str, *, kind: str = KIND_TLT, source: str = "<bytes>") -> bytes:
    """Decrypt ``sealed``; any mismatch raises ``ModelFileError("<source>: ...")``."""
    key = _check_key(key, source)
    if not sealed.startswith(MAGIC):
        raise ModelFileError(f"{source}: not a sealed {kind} model file")
    try:
        pos = len(MAGIC)
        version, kind_len = struct.unpack_from("BB", sealed, pos)
        pos += 2
        file_kind = sealed[pos : pos + kind_len].decode("ascii")
        pos += kind_len
        log2_n, r, p = struct.unpack_from("BBB", sealed, pos)
        pos += 3
        salt = sealed[pos : pos + SALT_BYTES]
        pos += SALT_BYTES
        nonce = sealed[pos : pos + NONCE_BYTES]
        pos += NONCE_BYTES
    except (struct.error, UnicodeDecodeError) as error:
        raise ModelFileError(f"{source}: wrong key or corrupted file") from error
    if version != CONTAINER_VERSION:
        raise ModelFileError(f"{source}: unsupported container version {version}")
    if file_kind != kind:
        raise ModelFileError(f"{source}: a .{file_kind} file, expected a .{kind} file")
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
        raise ModelFileError(f"{source}: wrong key or corrupted file")
    if (log2_n, r, p) not in ALLOWED_KDF:
        raise ModelFileError(
            f"{source}: key-derivation parameters log2 N={log2_n}, r={r}, p={p} are not ones "
            "this tlt writes (corrupted or tampered file)"
        )
    header = sealed[:pos]
    try:
        cipher = AESGCM(_derive(key, salt, log2_n, r, p))
        return cipher.decrypt(nonce, sealed[pos:], header)
    except (InvalidTag, ValueError) as error:
        raise ModelFileError(f"{source}: wrong key or corrupted file") from error


def framework_versions() -> dict[str, str]:
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__}
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:  # another Keras backend
        pass
    return versions


def _model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="tlt_save_") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def save_model(
    path: str | Path,
    model,
    key: str,
    metadata: dict[str, Any],
    *,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Seal ``model`` + ``metadata`` (+ optional optimizer state) into ``path`` atomically."""
    import numpy as np

    meta = dict(metadata)
    meta.setdefault("pruned", False)
    meta["format_version"] = FORMAT_VERSION
    meta["framework_versions"] = framework_versions()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(_MODEL_ENTRY, _model_bytes(model))
        archive.writestr(_METADATA_ENTRY, json.dumps(meta, indent=1, sort_keys=True))
        if training_state is not None:
            state = io.BytesIO()
            np.savez(state, **{k: np.asarray(v) for k, v in training_state.items()})
            archive.writestr(_STATE_ENTRY, state.getvalue())
    sealed = seal_bytes(buffer.getvalue(), key, kind=KIND_TLT)
    with atomic_path(path) as tmp:
        tmp.write_bytes(sealed)
    return Path(path)


def read_model_file(path: str | Path) -> bytes:
    """The bytes of a model file (.tlt, .etlt, .onnx): ModelFileError (exit 4) naming the path
    when it is missing, not a regular file or larger than :data:`MAX_MODEL_FILE_BYTES`."""
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    return read_bytes_limited(
        path, MAX_MODEL_FILE_BYTES, what="model file", error_type=ModelFileError
    )


def _open_archive(path: str | Path, key: str) -> zipfile.ZipFile:
    plaintext = open_bytes(read_model_file(path), key, kind=KIND_TLT, source=str(path))
    try:
        return zipfile.ZipFile(io.BytesIO(plaintext))
    except zipfile.BadZipFile as error:
        raise ModelFileError(f"{path}: wrong key or corrupted file") from error


def load_metadata(path: str | Path, key: str) -> dict[str, Any]:
    """Only the metadata of a ``.tlt`` (no Keras import)."""
    with _open_archive(path, key) as archive:
        return _metadata(archive, path)


def _metadata(archive: zipfile.ZipFile, path: str | Path) -> dict[str, Any]:
    try:
        meta = json.loads(archive.read(_METADATA_ENTRY))
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: model file has no valid metadata") from error
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta['format_version']} is newer than this tlt "
            f"({FORMAT_VERSION})"
        )
    return meta


def load_model(
    path: str | Path, key: str, *, prepare: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Open a ``.tlt``: returns ``(keras.Model, metadata)``.

    ``prepare(metadata)`` runs before the Keras model is rebuilt: the caller registers the
    Keras classes of the network the metadata names (``tlt_core.networks.load_model`` does;
    custom layers are registered serializables, no code is loaded from the file).
    """
    model, meta, _ = load_model_with_state(path, key, prepare=prepare)
    return model, meta


def load_model_with_state(
    path: str | Path, key: str, *, prepare: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """Like ``load_model``, plus the training state saved with a checkpoint (or None)."""
    import keras
    import numpy as np

    with _open_archive(path, key) as archive:
        meta = _metadata(archive, path)
        if prepare is not None:
            prepare(meta)
        try:
            model_bytes = archive.read(_MODEL_ENTRY)
        except KeyError as error:
            raise ModelFileError(f"{path}: model file holds no model") from error
        state = None
        if _STATE_ENTRY in archive.namelist():
            with np.load(io.BytesIO(archive.read(_STATE_ENTRY))) as npz:
                state = {name: npz[name] for name in npz.files}
    with tempfile.TemporaryDirectory(prefix="tlt_load_") as tmp:
        model_path = Path(tmp) / "model.keras"
        model_path.write_bytes(model_bytes)
        try:
            model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a bad archive
            raise ModelFileError(f"{path}: cannot rebuild the model: {error}") from error
    return model, meta, state
