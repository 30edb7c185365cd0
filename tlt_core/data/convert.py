"""KITTI directory -> sharded TFRecords, split into folds (TLT's ``dataset-convert``).

Output files, as TLT names them::

    <prefix>-fold-000-of-002-shard-00000-of-00010

Partition modes (002 §4.2.3):

- ``random``: exactly 2 folds; ``val_split`` percent of the frames (rounded down), drawn by
  a shuffle seeded with :data:`RANDOM_SEED`, go to fold 0 (the validation fold: 002 forces
  validation fold 0 for a random split), the rest to fold 1.
- ``sequence``: ``num_partitions`` folds; the sequence -> frame ids JSON map
  (``kitti_sequence_to_frames_file``) decides which frames belong together. Whole sequences
  are assigned, largest first, to the fold with the fewest frames so far, so no sequence
  spans two folds and fold sizes are balanced.

Within a fold, frames are cut into ``num_shards`` contiguous shards (a shard may be empty;
its file is still written, so the file count is always ``num_partitions * num_shards``).
The image bytes are stored as read from disk (no re-encode); the size comes from the image
header, and each image is decoded once by the reader threads so a corrupt or truncated image
is an error here (:mod:`tlt_core.data.imagecheck`), not a silent drop in training; boxes are
clipped to the image. Frames are streamed: the files of the
next :data:`HINT_AHEAD` frames are hinted to the kernel (``posix_fadvise(WILLNEED)``) and
two reader threads read, parse and encode the next few frames (at most :data:`READ_AHEAD`)
while the calling thread writes the current one, so disk reads overlap the rest of the
work; records are written in frame order, so the output is the same bytes on every run.
All shards are written to a temporary directory beside the output and moved into place
only after every frame was written, so a failure leaves no output; a successful run also
removes older shards of the same prefix (a previous run with other fold/shard counts).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tlt_core.data.imagecheck import verify_decodes
from tlt_core.data.kitti import Frame, clip_objects, list_frames, read_labels
from tlt_core.data.tfrecord import (
    MAX_IMAGE_FILE_BYTES,
    RecordWriter,
    encode_example,
    image_format_and_size,
)
from tlt_core.errors import DataError, UsageError
from tlt_core.io_utils import read_bytes_limited

log = logging.getLogger(__name__)

RANDOM_SEED = 42  # TLT's fixed seed for the random partition
# Streaming: the kernel is asked to start reading the files of the next HINT_AHEAD frames
# (page cache only, no process memory), READ_WORKERS threads read, parse and encode up to
# READ_AHEAD frames ahead of the writer (file reads release the GIL). Memory stays a few
# frames at any dataset size.
HINT_AHEAD = 16
READ_WORKERS = 2
READ_AHEAD = 4
PARTITION_MODES = ("random", "sequence")


@dataclass(frozen=True)
class ConvertOptions:
    """What a conversion needs, resolved from a dataset-convert spec (paths absolute)."""

    image_dir: Path
    label_dir: Path
    partition_mode: str = "random"
    num_partitions: int = 2
    num_shards: int = 10
    val_split: float = 20.0  # percent, random mode
    image_extension: str | None = None  # e.g. ".png"; None: .png, .jpg and .jpeg
    sequence_map_file: Path | None = None  # sequence mode


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion wrote."""

    output_prefix: Path
    shards: list[Path]  # fold-major, shard-minor order
    fold_frame_counts: list[int]
    fold_class_counts: list[dict[str, int]]  # per fold: class name as written -> objects
    class_counts: dict[str, int]  # all folds
    validation_fold: int | None
    n_frames: int
    n_objects: int
    n_skipped: int = 0  # bad label lines / boxes outside the image skipped (strict=False)
    n_clipped: int = 0  # boxes clipped to the image
    fold_frame_ids: list[list[str]] = field(default_factory=list, repr=False)

    def fold_pattern(self, fold: int) -> str:
        """Glob pattern of one fold's shards."""
        return f"{self.output_prefix}-fold-{fold:03d}-of-{len(self.fold_frame_counts):03d}-shard-*"

    @property
    def pattern(self) -> str:
        """Glob pattern of every shard written."""
        return f"{self.output_prefix}-fold-*-shard-*"


def shard_path(prefix: str | Path, fold: int, num_folds: int, shard: int, num_shards: int) -> Path:
    return Path(
        f"{prefix}-fold-{fold:03d}-of-{num_folds:03d}-shard-{shard:05d}-of-{num_shards:05d}"
    )


def convert_options(spec) -> ConvertOptions:
    """The conversion settings of a loaded dataset-convert spec (``tlt_core.spec.ConvertSpec``)."""
    return ConvertOptions(
        image_dir=spec.image_dir,
        label_dir=spec.label_dir,
        partition_mode=spec.partition_mode,
        num_partitions=spec.num_partitions,
        num_shards=spec.num_shards,
        val_split=spec.val_split if spec.val_split is not None else 0.0,
        image_extension=spec.image_extension,
        sequence_map_file=spec.sequence_to_frames_file,
    )


_FOLD_OF = re.compile(r"-fold-(\d{3})-of-(\d{3})-shard-")


def fold_patterns(output_prefix: str | Path, validation_fold: int) -> tuple[list[str], list[str]]:
    """Glob patterns of the folds a conversion wrote at ``output_prefix``: (training folds,
    [the validation fold]). DataError when none were written or the fold is not one."""
    prefix = Path(output_prefix)
    folds = {
        int(match.group(2))
        for path in prefix.parent.glob(f"{prefix.name}-fold-*")
        if (match := _FOLD_OF.search(path.name[len(prefix.name) :]))
    }
    if len(folds) != 1:
        found = "no TFRecord folds" if not folds else "shards of different fold counts"
        raise DataError(f"{found} at this prefix", f"{prefix}-fold-*")
    total = folds.pop()
    if not 0 <= validation_fold < total:
        raise DataError(
            f"validation fold {validation_fold} not in 0..{total - 1}", f"{prefix}-fold-*"
        )

    def pattern(fold: int) -> str:
        return f"{prefix}-fold-{fold:03d}-of-{total:03d}-shard-*"

    return [pattern(f) for f in range(total) if f != validation_fold], [pattern(validation_fold)]


def _check_options(options: ConvertOptions, validation_fold: int | None) -> None:
    if options.partition_mode not in PARTITION_MODES:
        raise UsageError(
            f"partition_mode must be one of {', '.join(PARTITION_MODES)}, "
            f"not {options.partition_mode!r}"
        )
    if options.num_shards < 1:
        raise UsageError(f"num_shards must be at least 1, not {options.num_shards}")
    if options.partition_mode == "random":
        if options.num_partitions != 2:
            raise UsageError(
                f"random partition mode makes 2 folds, num_partitions is {options.num_partitions}"
            )
        if not 0.0 <= options.val_split <= 100.0:
            raise UsageError(f"val_split must be a percentage, not {options.val_split}")
        if validation_fold not in (None, 0):
            raise UsageError(
                f"validation fold {validation_fold}: a random split validates on fold 0"
            )
    else:
        if options.num_partitions < 1:
            raise UsageError(f"num_partitions must be at least 1, not {options.num_partitions}")
        if options.sequence_map_file is None:
            raise UsageError("sequence partition mode needs kitti_sequence_to_frames_file")
    if validation_fold is not None and not 0 <= validation_fold < options.num_partitions:
        raise UsageError(
            f"validation fold {validation_fold} not in 0..{options.num_partitions - 1}"
        )


def partition_random(frame_ids: Sequence[str], val_split: float) -> list[list[str]]:
    """[validation fold, training fold]: ``val_split`` percent of the frames, seeded shuffle."""
    shuffled = sorted(frame_ids)
    random.Random(RANDOM_SEED).shuffle(shuffled)
    n_val = int(len(shuffled) * val_split / 100.0)
    return [shuffled[:n_val], shuffled[n_val:]]


def load_sequence_map(path: Path) -> dict[str, list[str]]:
    """The sequence -> frame ids JSON map (002 §4.2.2), checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("sequence map file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        line = getattr(error, "lineno", None)
        raise DataError(f"not valid JSON: {error}", path, line) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object {sequence: [frame ids]}", path)
    sequences: dict[str, list[str]] = {}
    for name, frames in data.items():
        if not isinstance(frames, list) or not all(isinstance(f, str | int) for f in frames):
            raise DataError("expected a list of frame ids", path, None, name)
        sequences[name] = [str(f) for f in frames]
    return sequences


def partition_sequences(
    frame_ids: Sequence[str], sequences: dict[str, list[str]], num_partitions: int, path=None
) -> list[list[str]]:
    """Whole sequences to folds, largest first to the fold with the fewest frames."""
    available = set(frame_ids)
    owner: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for name, frames in sequences.items():
        kept = []
        for frame in frames:
            if frame in owner and owner[frame] != name:
                raise DataError(
                    f"frame {frame!r} is in sequences {owner[frame]!r} and {name!r}", path
                )
            owner[frame] = name
            if frame in available:
                kept.append(frame)
        if kept:
            members[name] = kept
    unlisted = sorted(available - set(owner))
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (
            f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""
        )
        raise DataError(f"{len(unlisted)} frame(s) in no sequence: {shown}", path)
    absent = len(set(owner) - available)
    if absent:
        log.warning("%s: %d frame id(s) of the map have no image; ignored", path, absent)
    if len(members) < num_partitions:
        raise DataError(
            f"{len(members)} sequence(s) with frames cannot fill {num_partitions} folds", path
        )
    folds: list[list[str]] = [[] for _ in range(num_partitions)]
    for name in sorted(members, key=lambda n: (-len(members[n]), n)):
        smallest = min(range(num_partitions), key=lambda i: (len(folds[i]), i))
        folds[smallest].extend(members[name])
    return folds


def _shards(frames: Sequence[str], num_shards: int) -> Iterator[Sequence[str]]:
    """Contiguous, near-equal chunks (the first ``len % num_shards`` one frame longer)."""
    base, extra = divmod(len(frames), num_shards)
    start = 0
    for i in range(num_shards):
        end = start + base + (1 if i < extra else 0)
        yield frames[start:end]
        start = end


@dataclass
class _Tally:
    classes: Counter = field(default_factory=Counter)
    skipped: int = 0
    clipped: int = 0


@dataclass(frozen=True)
class _FrameRecord:
    """One frame, read and encoded: the record's parts (see ``encode_example``) and counts."""

    parts: tuple[bytes, ...]
    class_names: list[str]
    skipped: int
    clipped: int


def _frame_record(frame: Frame, strict: bool) -> _FrameRecord:
    image_bytes = read_bytes_limited(frame.image_path, MAX_IMAGE_FILE_BYTES, what="image file")
    fmt, width, height = image_format_and_size(image_bytes, frame.image_path)
    # A full decode here, in the read-ahead workers: the training input would otherwise drop
    # a broken image later without naming it.
    verify_decodes(image_bytes, fmt, frame.image_path)
    read = read_labels(frame.label_path, strict=strict)
    objects, n_clipped = clip_objects(
        read.objects, width, height, path=frame.label_path, strict=strict
    )
    return _FrameRecord(
        parts=encode_example(frame.frame_id, image_bytes, fmt, width, height, objects),
        class_names=[o.class_name for o in objects],
        skipped=read.n_skipped + len(read.objects) - len(objects),
        clipped=n_clipped,
    )


_In = TypeVar("_In")
_Out = TypeVar("_Out")


def _map_read_ahead(
    function: Callable[[_In], _Out], items: Iterable[_In], workers: int, read_ahead: int
) -> Iterator[_Out]:
    """``map(function, items)`` in order, with up to ``read_ahead`` calls running early on
    ``workers`` threads. An error is raised when its item's turn comes; the calls not yet
    started are then cancelled (at most ``workers`` finish in the background)."""
    pending: deque[Future[_Out]] = deque()
    items = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convert-read")
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= read_ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def will_need(path: Path) -> None:
    """Ask the kernel to start reading ``path`` into the page cache (no wait, no memory)."""
    if not hasattr(os, "posix_fadvise"):  # not on macOS / Windows: reads just wait
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # reported when the frame is read
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def _hint_ahead(frames: Iterable[Frame], distance: int) -> Iterator[Frame]:
    """``frames``, unchanged; each one's files are hinted ``distance`` frames before it is
    yielded, so on a cold page cache several reads are in flight at once."""
    window: deque[Frame] = deque()
    for frame in frames:
        will_need(frame.image_path)
        will_need(frame.label_path)
        window.append(frame)
        if len(window) > distance:
            yield window.popleft()
    yield from window


def _log_counts(title: str, counts: Counter | dict) -> None:
    lines = "".join(f"\n{name}: {n}" for name, n in sorted(counts.items()))
    log.info("%s wrote the following numbers of objects:%s", title, lines or "\n(none)")


_SHARD_NAME = re.compile(r"-fold-\d{3}-of-\d{3}-shard-\d{5}-of-\d{5}$")


def _stale_shards(prefix: Path) -> list[Path]:
    return [
        p
        for p in prefix.parent.glob(f"{prefix.name}-fold-*")
        if _SHARD_NAME.fullmatch(p.name[len(prefix.name) :])
    ]


def convert_kitti(
    options: ConvertOptions,
    output_prefix: str | Path,
    *,
    validation_fold: int | None = None,
    strict: bool = True,
    verbose: bool = False,
) -> ConvertResult:
    """Convert the KITTI directories of ``options`` to TFRecord shards at ``output_prefix``.

    ``validation_fold`` (checked, and logged) says which fold a training spec should
    validate on; it does not change what is written. ``strict=False`` skips bad label lines
    and boxes outside the image (counted in ``n_skipped``) instead of failing.
    """
    _check_options(options, validation_fold)
    frames = {
        f.frame_id: f
        for f in list_frames(options.image_dir, options.label_dir, options.image_extension)
    }
    if options.partition_mode == "random":
        folds = partition_random(list(frames), options.val_split)
    else:
        sequences = load_sequence_map(options.sequence_map_file)
        folds = partition_sequences(
            list(frames), sequences, options.num_partitions, options.sequence_map_file
        )
    n_folds, n_shards = len(folds), options.num_shards
    output_prefix = Path(output_prefix)
    if not output_prefix.name:
        raise UsageError(f"output prefix {output_prefix} names a directory, not a file prefix")
    output_prefix.parent.mkdir(parents=True, exist_ok=True)
    log.info(
        "Instantiating a kitti converter: %d frames, %d fold(s) x %d shard(s), mode %s",
        len(frames),
        n_folds,
        n_shards,
        options.partition_mode,
    )

    tmp_dir = Path(
        tempfile.mkdtemp(prefix=f".{output_prefix.name}.", suffix=".tmp", dir=output_prefix.parent)
    )
    fold_tallies: list[_Tally] = []
    written: list[tuple[Path, Path]] = []  # (temporary, final)
    # Frames in the order they are written: fold by fold, shard by shard.
    in_order = (frames[frame_id] for fold_frames in folds for frame_id in fold_frames)
    records = _map_read_ahead(
        lambda frame: _frame_record(frame, strict),
        _hint_ahead(in_order, HINT_AHEAD),
        READ_WORKERS,
        READ_AHEAD,
    )
    try:
        for fold, fold_frames in enumerate(folds):
            tally = _Tally()
            for shard, shard_frames in enumerate(_shards(fold_frames, n_shards)):
                final = shard_path(output_prefix, fold, n_folds, shard, n_shards)
                tmp = tmp_dir / final.name
                log.info("Writing partition %d, shard %d", fold, shard)
                with RecordWriter(tmp) as writer:
                    for frame_id in shard_frames:
                        if verbose:
                            log.debug("fold %d shard %d: %s", fold, shard, frame_id)
                        record = next(records)
                        writer.write(record.parts)
                        tally.classes.update(record.class_names)
                        tally.skipped += record.skipped
                        tally.clipped += record.clipped
                written.append((tmp, final))
            _log_counts(f"Fold {fold} ({len(fold_frames)} frames)", tally.classes)
            fold_tallies.append(tally)
        # Everything was written: replace any older shards of this prefix, then move in.
        for stale in _stale_shards(output_prefix):
            stale.unlink()
        for tmp, final in written:
            os.replace(tmp, final)
    finally:
        records.close()  # stops the readers (on an error: the frames read ahead are dropped)
        shutil.rmtree(tmp_dir, ignore_errors=True)

    total: Counter[str] = Counter()
    for tally in fold_tallies:
        total.update(tally.classes)
    _log_counts("In total, the converter", total)
    if validation_fold is not None:
        log.info(
            "Validation fold %d: %s-fold-%03d-of-%03d-shard-*; training: the other folds",
            validation_fold,
            output_prefix,
            validation_fold,
            n_folds,
        )
    skipped = sum(t.skipped for t in fold_tallies)
    clipped = sum(t.clipped for t in fold_tallies)
    if skipped:
        log.warning("skipped %d bad label line(s) or object(s)", skipped)
    if clipped:
        log.info("clipped %d box(es) to their image", clipped)
    return ConvertResult(
        output_prefix=output_prefix,
        shards=[final for _, final in written],
        fold_frame_counts=[len(f) for f in folds],
        fold_class_counts=[dict(sorted(t.classes.items())) for t in fold_tallies],
        class_counts=dict(sorted(total.items())),
        validation_fold=validation_fold,
        n_frames=len(frames),
        n_objects=sum(total.values()),
        n_skipped=skipped,
        n_clipped=clipped,
        fold_frame_ids=[list(f) for f in folds],
    )
