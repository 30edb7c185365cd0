"""Atomic writes: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tlt_core.errors import DataError, SpecError, StorageError, TltError, UsageError, located

# Outputs of the current commit group (see commit_together): (temporary, target) pairs.
_group = threading.local()


def _pending() -> list[tuple[Path, Path]] | None:
    return getattr(_group, "pending", None)


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _commit(tmp: Path, target: Path) -> None:
    if tmp.is_dir():
        _replace_dir(tmp, target)
    else:
        os.replace(tmp, target)


def _discard(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists():
        tmp.unlink()


@contextlib.contextmanager
def commit_together() -> Iterator[None]:
    """All outputs written with :func:`atomic_path` / :func:`atomic_dir` inside the block
    (in this thread) are renamed into place together when it ends without an exception,
    and all discarded otherwise: a stage that fails half-way (a bad calibration set after
    the model was exported) leaves none of its outputs. Nested blocks join the outer one.
    While the block runs, :func:`staged` gives the temporary path of a target written in it.
    """
    if _pending() is not None:
        yield
        return
    pending: list[tuple[Path, Path]] = []
    _group.pending = pending
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            _discard(tmp)
        raise
    else:
        try:
            for tmp, target in pending:
                _commit(tmp, target)
        finally:
            for tmp, _ in pending:
                _discard(tmp)  # only left over when a rename failed
    finally:
        _group.pending = None


def staged(target: str | Path) -> Path:
    """Where ``target``'s content is now: its temporary path while a commit group holds it."""
    target = Path(target)
    for tmp, final in reversed(_pending() or []):
        if final == target:
            return tmp
    return target


def _finish(tmp: Path, target: Path) -> bool:
    """Rename ``tmp`` onto ``target`` now, or hand it to the commit group; True if handed."""
    pending = _pending()
    if pending is None:
        _commit(tmp, target)
        return False
    pending.append((tmp, target))
    return True


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left as it was. Inside
    :func:`commit_together` the rename waits for the end of the group.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    handed = False
    try:
        yield tmp
        handed = _finish(tmp, target)
    finally:
        if not handed and tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; it replaces ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    handed = False
    try:
        yield tmp
        handed = _finish(tmp, target)
    finally:
        if not handed and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


# -- bounded reads of user files ---------------------------------------------------------------


def _user_error(error_type: type[TltError], message: str, path: str | Path) -> TltError:
    if issubclass(error_type, DataError | SpecError):
        return error_type(message, path)
    return error_type(located(message, path))


def check_regular_file(
    path: str | Path, *, what: str = "file", error_type: type[TltError] = DataError
) -> os.stat_result:
    """``os.stat(path)`` (symlinks followed) of a regular file, or ``error_type`` naming it.

    Devices, FIFOs and sockets are refused before they are opened: ``/dev/zero`` never ends
    and opening a FIFO blocks until someone writes to it.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _user_error(error_type, f"{what} not found", path) from None
    except OSError as error:
        raise _user_error(error_type, f"cannot read {what}: {error.strerror}", path) from None
    if stat.S_ISDIR(info.st_mode):
        raise _user_error(error_type, f"is a directory, expected a {what}", path)
    if not stat.S_ISREG(info.st_mode):
        raise _user_error(error_type, f"not a regular file, expected a {what}", path)
    return info


def read_bytes_limited(
    path: str | Path,
    limit: int,
    *,
    what: str = "file",
    error_type: type[TltError] = DataError,
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, else ``error_type``.

    Reads at most ``limit + 1`` bytes whatever the file claims, so a file that grows while it
    is read still costs bounded memory.
    """
    info = check_regular_file(path, what=what, error_type=error_type)
    try:
        with open(path, "rb") as stream:
            # Sized by the file, not the limit (read(n) allocates n bytes up front); a file
            # that grows while it is read is read on in chunks, still only to limit + 1.
            data = stream.read(min(info.st_size, limit) + 1)
            while len(data) <= limit:
                more = stream.read(min(1 << 20, limit + 1 - len(data)))
                if not more:
                    break
                data += more
    except OSError as error:
        raise _user_error(error_type, f"cannot read {what}: {error.strerror}", path) from None
    if len(data) > limit:
        raise _user_error(
            error_type, f"{what} larger than the {format_size(limit)} this tlt accepts", path
        )
    return data


def format_size(n_bytes: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= size:
            return f"{n_bytes / size:g} {unit}"
    return f"{n_bytes} bytes"


# -- output paths, checked before the work starts ----------------------------------------------

OUTPUT_KINDS = ("file", "dir", "any")


def check_output_path(path: str | Path, kind: str = "any", *, what: str = "output") -> Path:
    """Raise :class:`UsageError` naming ``path`` unless an output can be written there.

    ``kind="file"``: not an existing directory; ``"dir"``: not an existing file. The nearest
    existing ancestor must be a writable directory (missing folders are created later). Run
    before a stage starts, so an hour of training never ends in an unwritable results path.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}")
    path = Path(path)
    if kind == "file" and (path.is_dir() or str(path).endswith(os.sep)):
        raise UsageError(located(f"is a directory, expected a file for the {what}", path))
    if kind == "dir" and path.exists() and not path.is_dir():
        raise UsageError(located(f"is a file, expected a directory for the {what}", path))
    # Outputs are written to a temporary sibling and renamed: the parent must be writable.
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(located(f"{ancestor} is not a directory", path, field=what))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(located(f"{ancestor} is not writable", path, field=what))
    return path


def user_path_error(error: OSError) -> TltError:
    """A one-line error naming the path for an OS error on a user's path.

    Wrong kind of path or no permission: the user's to fix (:class:`UsageError`); anything
    else (disk full, I/O error, read-only file system): :class:`StorageError`.
    """
    name = error.filename if error.filename is not None else "<unknown path>"
    if error.filename2 is not None:
        name = f"{name} -> {error.filename2}"
    reason = error.strerror or str(error)
    usage = (
        IsADirectoryError,
        NotADirectoryError,
        FileExistsError,
        FileNotFoundError,
        PermissionError,
    )
    error_type = UsageError if isinstance(error, usage) else StorageError
    return error_type(located(reason, name))
