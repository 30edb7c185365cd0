"""KITTI detection labels: the one place that reads, validates and writes them.

A label line has 15 whitespace-separated fields (16 for predictions, the last being a
score)::

    class truncation occlusion alpha x1 y1 x2 y2 height width length x y z rotation_y [score]

Class names are kept exactly as written (callers compare them case-insensitively).
``DontCare`` objects are kept as objects of that class; callers drop them. An object is
*difficult* when its occlusion is above 0 (TLT 3.0, ``include_difficult_in_training``).

Boxes are pixel corners ``[x1, y1, x2, y2]`` (continuous: width = x2 - x1). A box with
x2 <= x1 or y2 <= y1 is degenerate and rejected.

``strict`` (on every reader): ``True`` (the default) raises :class:`DataError` naming
``file:line: field`` at the first bad line; ``False`` skips bad lines (and degenerate
boxes), logs each one as a warning and counts them (:class:`LabelRead.n_skipped`). The
``tlt dataset-convert --skip_bad_labels`` flag selects ``strict=False``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tlt_core.errors import DataError
from tlt_core.io_utils import atomic_path, read_bytes_limited

log = logging.getLogger(__name__)

DONTCARE = "dontcare"  # lower-case: compare with ``name.lower()``
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Field names used in error messages, in line order (index 0 is the class name).
FIELD_NAMES = (
    "class",
    "truncation",
    "occlusion",
    "alpha",
    "bbox x1",
    "bbox y1",
    "bbox x2",
    "bbox y2",
    "dimensions height",
    "dimensions width",
    "dimensions length",
    "location x",
    "location y",
    "location z",
    "rotation_y",
    "score",
)
NUM_FIELDS = 15
# Bounds on one label file, far above any real frame (KITTI's busiest has under 100 objects,
# a line is about 100 bytes) and low enough that a bad file costs at most a second and a few
# MB, not minutes and gigabytes.
MAX_LABEL_BYTES = 4 << 20
MAX_OBJECTS_PER_FRAME = 10_000


@dataclass(frozen=True)
class KittiObject:
    """One object of a KITTI label file."""

    class_name: str
    truncation: float
    occlusion: int
    alpha: float
    x1: float
    y1: float
    x2: float
    y2: float
    height: float = 0.0
    width: float = 0.0
    length: float = 0.0
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    rotation_y: float = 0.0
    score: float | None = None
    # Where the object was read from (1-based line), for error messages; not part of equality.
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def difficult(self) -> bool:
        return self.occlusion > 0

    @property
    def is_dontcare(self) -> bool:
        return self.class_name.lower() == DONTCARE


@dataclass(frozen=True)
class LabelRead:
    """What :func:`read_labels` found in one file."""

    path: Path
    objects: list[KittiObject]
    n_skipped: int = 0  # bad lines skipped (strict=False only)


def _number(token: str, path, line_no, index: int) -> float:
    try:
        value = float(token)
    except ValueError:
        raise DataError(f"not a number {token!r}", path, line_no, FIELD_NAMES[index]) from None
    if not math.isfinite(value):
        raise DataError(f"not a finite number {token!r}", path, line_no, FIELD_NAMES[index])
    return value


def parse_kitti_line(
    text: str, path: str | Path | None = None, line_no: int | None = None
) -> KittiObject:
    """Parse one label line; raise :class:`DataError` naming ``path:line: field``."""
    tokens = text.split()
    if len(tokens) not in (NUM_FIELDS, NUM_FIELDS + 1):
        raise DataError(
            f"expected {NUM_FIELDS} fields (16 with a score), got {len(tokens)}",
            path,
            line_no,
            "fields",
        )
    name = tokens[0]
    values = [_number(tok, path, line_no, i) for i, tok in enumerate(tokens[1:], start=1)]
    truncation, occlusion_f, alpha, x1, y1, x2, y2 = values[:7]
    dontcare = name.lower() == DONTCARE
    if occlusion_f != int(occlusion_f):
        raise DataError(f"not an integer {tokens[2]!r}", path, line_no, "occlusion")
    occlusion = int(occlusion_f)
    # KITTI writes -1 for truncation/occlusion of DontCare regions; real objects must be in range.
    if not dontcare:
        if not 0.0 <= truncation <= 1.0:
            raise DataError(f"{tokens[1]} not in [0, 1]", path, line_no, "truncation")
        if not 0 <= occlusion <= 3:
            raise DataError(f"{tokens[2]} not in 0..3", path, line_no, "occlusion")
    if x2 <= x1:
        raise DataError(f"degenerate box: x2 {x2:g} <= x1 {x1:g}", path, line_no, "bbox")
    if y2 <= y1:
        raise DataError(f"degenerate box: y2 {y2:g} <= y1 {y1:g}", path, line_no, "bbox")
    score = values[NUM_FIELDS - 1] if len(values) == NUM_FIELDS else None
    return KittiObject(
        name, truncation, occlusion, alpha, x1, y1, x2, y2, *values[7:14], score=score, line=line_no
    )


def read_labels(path: str | Path, *, strict: bool = True) -> LabelRead:
    """Read a label file; see the module docstring for ``strict``. Blank lines are ignored.

    The file must be a regular file of at most :data:`MAX_LABEL_BYTES` and
    :data:`MAX_OBJECTS_PER_FRAME` non-blank lines. A UTF-8 byte-order mark is dropped (editors
    on Windows write one), so it never becomes part of the first class name.
    """
    path = Path(path)
    data = read_bytes_limited(path, MAX_LABEL_BYTES, what="label file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"not UTF-8 text ({error.reason})", path, line) from None
    objects: list[KittiObject] = []
    skipped = 0
    n_lines = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        n_lines += 1
        if n_lines > MAX_OBJECTS_PER_FRAME:
            raise DataError(
                f"more than {MAX_OBJECTS_PER_FRAME} objects in one frame", path, line_no, "fields"
            )
        try:
            objects.append(parse_kitti_line(line, path, line_no))
        except DataError as error:
            if strict:
                raise
            log.warning("skipped bad label line: %s", error)
            skipped += 1
    return LabelRead(path, objects, skipped)


def read_label_file(path: str | Path, *, strict: bool = True) -> list[KittiObject]:
    """The objects of a label file (bad lines skipped and logged when ``strict=False``)."""
    return read_labels(path, strict=strict).objects


def clip_objects(
    objects: Sequence[KittiObject],
    width: float,
    height: float,
    *,
    path: str | Path | None = None,
    strict: bool = True,
) -> tuple[list[KittiObject], int]:
    """Clip boxes to the image ``[0, width] x [0, height]``.

    Returns ``(objects, n_clipped)``. A box that is degenerate after clipping (entirely
    outside the image) raises :class:`DataError` naming ``path:line``, or with
    ``strict=False`` is dropped (logged; not counted in ``n_clipped``).
    """
    kept: list[KittiObject] = []
    n_clipped = 0
    for obj in objects:
        x1, x2 = min(max(obj.x1, 0.0), width), min(max(obj.x2, 0.0), width)
        y1, y2 = min(max(obj.y1, 0.0), height), min(max(obj.y2, 0.0), height)
        if x2 <= x1 or y2 <= y1:
            error = DataError(
                f"box {obj.x1:g} {obj.y1:g} {obj.x2:g} {obj.y2:g} lies outside the "
                f"{width:g}x{height:g} image",
                path,
                obj.line,
                "bbox",
            )
            if strict:
                raise error
            log.warning("skipped object: %s", error)
            continue
        if (x1, y1, x2, y2) != obj.box:
            n_clipped += 1
            obj = replace(obj, x1=x1, y1=y1, x2=x2, y2=y2)
        kept.append(obj)
    return kept, n_clipped


def _format_number(value: float, precision: int | None) -> str:
    if precision is None:
        return repr(float(value))  # shortest text that parses back to the same float
    return f"{value:.{precision}f}"


def format_kitti_line(obj: KittiObject, precision: int | None = None) -> str:
    """One label line (no newline). ``precision=None`` writes floats exactly (round trip);
    ``precision=2`` writes KITTI's usual ``%.2f``."""
    numbers = [
        obj.truncation,
        obj.alpha,
        obj.x1,
        obj.y1,
        obj.x2,
        obj.y2,
        obj.height,
        obj.width,
        obj.length,
        obj.x,
        obj.y,
        obj.z,
        obj.rotation_y,
    ]
    if obj.score is not None:
        numbers.append(obj.score)
    text = [_format_number(v, precision) for v in numbers]
    return " ".join([obj.class_name, text[0], str(int(obj.occlusion)), *text[1:]])


def write_label_file(
    path: str | Path, objects: Iterable[KittiObject], precision: int | None = None
) -> Path:
    """Write ``objects`` to ``path`` atomically, one line each."""
    text = "".join(format_kitti_line(obj, precision) + "\n" for obj in objects)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@dataclass(frozen=True)
class Frame:
    """An image and its label file, paired by file stem (the frame id)."""

    frame_id: str
    image_path: Path
    label_path: Path


def _normalise_extension(ext: str) -> str:
    ext = ext.lower()
    return ext if ext.startswith(".") else "." + ext


def list_frames(
    image_dir: str | Path, label_dir: str | Path, image_extension: str | None = None
) -> list[Frame]:
    """Pair the images of ``image_dir`` with ``label_dir/<stem>.txt``, sorted by frame id.

    ``image_extension`` (e.g. ``".png"``) selects one kind of image; by default .png, .jpg
    and .jpeg are all taken (matched case-insensitively). Images without a label file,
    two images with the same stem, or no image at all raise :class:`DataError`. Label files
    without an image are ignored (logged).
    """
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    for directory, what in ((image_dir, "image directory"), (label_dir, "label directory")):
        if not directory.is_dir():
            raise DataError(f"{what} not found", directory)
    extensions = (_normalise_extension(image_extension),) if image_extension else IMAGE_EXTENSIONS
    images: dict[str, Path] = {}
    with os.scandir(image_dir) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() not in extensions or not entry.is_file():
                continue
            if stem in images:
                raise DataError(
                    f"two images for frame {stem!r}: {images[stem].name}, {entry.name}", image_dir
                )
            images[stem] = Path(entry.path)
    if not images:
        raise DataError(f"no {'/'.join(extensions)} images", image_dir)
    labels = {p.stem for p in label_dir.glob("*.txt")}
    missing = sorted(set(images) - labels)
    if missing:
        shown = ", ".join(images[s].name for s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{len(missing)} image(s) without a label file: {shown}{more}", label_dir)
    orphans = len(labels - set(images))
    if orphans:
        log.info("%s: %d label file(s) without an image ignored", label_dir, orphans)
    return [Frame(stem, images[stem], label_dir / f"{stem}.txt") for stem in sorted(images)]
