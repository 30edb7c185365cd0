"""A deterministic generator of a small KITTI-format detection dataset (``tlt sample-data``).

Layout written under ``out_dir``::

    training/image_2/000000.png ...   training images (PNG)
    training/label_2/000000.txt ...   their KITTI labels
    val/image_2/<id>.png, val/label_2/<id>.txt   validation split (ids follow the training ids)
    kitti_seq_to_frames.json          training sequences -> frame ids (sequence-wise folds)
    specs/<network>_train.txt         each network's experiment spec reading the KITTI
                                      directories (``experiment_specs``; the stage writes
                                      one per network of ``tlt_core.networks.NETWORKS``)
    specs/convert_random.txt          dataset-convert spec, random 2-fold split of training/
    specs/convert_sequence.txt        dataset-convert spec, 3 sequence-wise folds of training/
    sample_data.json                  manifest: parameters and per-split class counts

Specs hold absolute paths to ``out_dir``; regenerate rather than move the directory.

Classes (KITTI names, so TLT 3.0's sample ``target_class_mapping`` applies): ``car``,
``van``, ``pedestrian``, ``cyclist``, ``person_sitting``. Each is told apart by its *shape*
(car: long low body with a cabin and two wheels; van: tall box with windows; pedestrian: tall
thin figure with a head; cyclist: a figure over two wheels; person_sitting: a seated figure
on a stool); colours are random and say nothing about the class. Backgrounds are textured and
cluttered with distractor shapes; some regions are blurred tiny objects labelled ``DontCare``.
Occlusion (0/1/2) is computed from the pixels later-drawn objects cover; truncation is the
fraction of the object's box outside the image. The same arguments give the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tlt_core.data.kitti import KittiObject, format_kitti_line

CLASSES = ("car", "van", "pedestrian", "cyclist", "person_sitting")
CLASS_WEIGHTS = (0.32, 0.16, 0.24, 0.16, 0.12)
# Box aspect (width / height) range and box height range (fraction of image height).
ASPECT = {
    "car": (1.9, 2.6),
    "van": (1.1, 1.5),
    "pedestrian": (0.3, 0.42),
    "cyclist": (0.85, 1.15),
    "person_sitting": (0.6, 0.8),
}
HEIGHT = {
    "car": (0.14, 0.32),
    "van": (0.2, 0.42),
    "pedestrian": (0.25, 0.5),
    "cyclist": (0.22, 0.42),
    "person_sitting": (0.2, 0.36),
}
# Typical 3-D dimensions (h, w, l) in metres, written into the label for realism.
DIMENSIONS = {
    "car": (1.5, 1.6, 3.9),
    "van": (2.2, 1.9, 5.1),
    "pedestrian": (1.75, 0.6, 0.8),
    "cyclist": (1.7, 0.6, 1.8),
    "person_sitting": (1.25, 0.55, 0.8),
}
OCCLUSION_LEVELS = (0.05, 0.4)  # covered fraction above which occlusion is 1, 2
MAX_COVERED = 0.75  # objects hidden more than this are not kept
MAX_TRUNCATION = 0.5
MIN_VISIBLE_PX = 8
MANIFEST = "sample_data.json"
SEQUENCE_FILE = "kitti_seq_to_frames.json"


@dataclass(frozen=True)
class SampleData:
    """Paths of a generated dataset."""

    root: Path
    train_image_dir: Path
    train_label_dir: Path
    val_image_dir: Path
    val_label_dir: Path
    sequence_file: Path
    convert_spec_random: Path
    convert_spec_sequence: Path
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> counts
    experiment_specs: dict[str, Path] = field(default_factory=dict)  # network -> spec file

    @property
    def experiment_spec(self) -> Path:
        """The first network's experiment spec (the default network's, SSD, for the stage)."""
        if not self.experiment_specs:
            raise FileNotFoundError(f"{self.root}: no specs/<network>_train.txt written")
        return next(iter(self.experiment_specs.values()))


# --- shapes: each draws into a box (x, y, w, h) using relative coordinates -------------------


class _Box:
    """Maps relative coordinates (u, v in [0, 1]) of a box to pixels, optionally mirrored."""

    def __init__(self, x: float, y: float, w: float, h: float, mirror: bool) -> None:
        self.x, self.y, self.w, self.h, self.mirror = x, y, w, h, mirror

    def p(self, u: float, v: float) -> tuple[int, int]:
        if self.mirror:
            u = 1.0 - u
        return (round(self.x + u * self.w), round(self.y + v * self.h))

    def span(self, u1: float, v1: float, u2: float, v2: float) -> tuple[tuple, tuple]:
        (a, b), (c, d) = self.p(u1, v1), self.p(u2, v2)
        return (min(a, c), min(b, d)), (max(a, c) - 1, max(b, d) - 1)


def _rounded_rect(img, box: _Box, u1, v1, u2, v2, radius: int, colour) -> None:
    (x1, y1), (x2, y2) = box.span(u1, v1, u2, v2)
    r = max(0, min(radius, (x2 - x1) // 2, (y2 - y1) // 2))
    cv2.rectangle(img, (x1 + r, y1), (x2 - r, y2), colour, -1)
    cv2.rectangle(img, (x1, y1 + r), (x2, y2 - r), colour, -1)
    for cx, cy in ((x1 + r, y1 + r), (x2 - r, y1 + r), (x1 + r, y2 - r), (x2 - r, y2 - r)):
        cv2.circle(img, (cx, cy), r, colour, -1)


def _wheel(img, centre, radius: int, colours) -> None:
    cv2.circle(img, centre, radius, colours["tyre"], -1)
    cv2.circle(img, centre, max(1, radius // 2), colours["hub"], -1)


def _draw_car(img, box: _Box, c) -> None:
    r = max(2, round(box.h * 0.2))
    # Cabin: a trapezoid on the rear two thirds, windows lighter.
    cabin = np.array([box.p(0.22, 0.45), box.p(0.3, 0.0), box.p(0.68, 0.0), box.p(0.8, 0.45)])
    cv2.fillPoly(img, [cabin], c["body"])
    window = np.array([box.p(0.27, 0.42), box.p(0.33, 0.08), box.p(0.65, 0.08), box.p(0.74, 0.42)])
    cv2.fillPoly(img, [window], c["window"])
    _rounded_rect(img, box, 0.0, 0.38, 1.0, 1.0 - r / box.h * 0.6, round(box.h * 0.12), c["body"])
    for u in (0.2, 0.8):
        _wheel(img, box.p(u, 1.0 - r / box.h), r, c)


def _draw_van(img, box: _Box, c) -> None:
    r = max(2, round(box.h * 0.15))
    _rounded_rect(img, box, 0.0, 0.0, 1.0, 1.0 - r / box.h * 0.7, round(box.h * 0.06), c["body"])
    # Windscreen at the front, a row of side windows.
    cv2.rectangle(img, *box.span(0.82, 0.08, 0.97, 0.45), c["window"], -1)
    for u in (0.06, 0.3, 0.54):
        cv2.rectangle(img, *box.span(u, 0.1, u + 0.18, 0.38), c["window"], -1)
    cv2.line(img, box.p(0.0, 0.62), box.p(1.0, 0.62), c["trim"], max(1, round(box.h * 0.03)))
    for u in (0.18, 0.8):
        _wheel(img, box.p(u, 1.0 - r / box.h), r, c)


def _figure_width(box: _Box) -> int:
    return max(2, round(box.h * 0.07))


def _draw_pedestrian(img, box: _Box, c) -> None:
    t = max(2, round(box.w * 0.22))
    head = max(2, round(box.h * 0.08))
    cv2.circle(img, box.p(0.5, head / box.h), head, c["skin"], -1)
    cv2.line(img, box.p(0.5, 0.2), box.p(0.5, 0.55), c["body"], t)  # torso
    limb = max(1, round(t * 0.6))
    cv2.line(img, box.p(0.5, 0.22), box.p(0.05, 0.5), c["body"], limb)  # arms
    cv2.line(img, box.p(0.5, 0.22), box.p(0.95, 0.48), c["body"], limb)
    cv2.line(img, box.p(0.5, 0.55), box.p(0.2, 0.985), c["legs"], limb)  # legs
    cv2.line(img, box.p(0.5, 0.55), box.p(0.8, 0.985), c["legs"], limb)


def _draw_cyclist(img, box: _Box, c) -> None:
    r = max(3, round(min(box.h * 0.24, box.w * 0.24)))
    ring = max(1, round(r * 0.22))
    rear, front = box.p(r / box.w, 1.0 - r / box.h), box.p(1.0 - r / box.w, 1.0 - r / box.h)
    for centre in (rear, front):
        cv2.circle(img, centre, r - ring // 2, c["tyre"], ring)
    seat, bar, pedal = box.p(0.4, 0.5), box.p(0.72, 0.45), box.p(0.48, 0.78)
    frame_t = max(1, round(box.h * 0.025))
    for a, b in (
        (rear, seat),
        (seat, pedal),
        (pedal, rear),
        (seat, bar),
        (bar, front),
        (pedal, bar),
    ):
        cv2.line(img, a, b, c["frame"], frame_t)
    t = _figure_width(box)
    head = max(2, round(box.h * 0.08))
    cv2.circle(img, box.p(0.6, head / box.h), head, c["skin"], -1)
    cv2.line(img, box.p(0.4, 0.48), box.p(0.56, 0.18), c["body"], t)  # torso, leaning forward
    cv2.line(img, box.p(0.56, 0.2), box.p(0.72, 0.43), c["body"], max(1, t // 2))  # arm
    cv2.line(img, box.p(0.4, 0.48), box.p(0.5, 0.62), c["legs"], max(1, t // 2))  # thigh
    cv2.line(img, box.p(0.5, 0.62), pedal, c["legs"], max(1, t // 2))  # shin


def _draw_person_sitting(img, box: _Box, c) -> None:
    t = max(2, round(box.w * 0.16))
    limb = max(1, round(t * 0.7))
    head = max(2, round(box.h * 0.1))
    cv2.circle(img, box.p(0.3, head / box.h), head, c["skin"], -1)
    cv2.line(img, box.p(0.3, 0.22), box.p(0.28, 0.6), c["body"], t)  # upright torso
    cv2.line(img, box.p(0.3, 0.3), box.p(0.62, 0.5), c["body"], limb)  # arm on the knee
    cv2.line(img, box.p(0.28, 0.6), box.p(0.78, 0.6), c["legs"], limb)  # thigh, horizontal
    cv2.line(img, box.p(0.78, 0.6), box.p(0.82, 0.97), c["legs"], limb)  # shin
    cv2.line(img, box.p(0.82, 0.97), box.p(0.99, 0.97), c["legs"], limb)  # foot
    cv2.rectangle(img, *box.span(0.0, 0.64, 0.55, 0.72), c["trim"], -1)  # stool seat
    cv2.line(img, box.p(0.1, 0.7), box.p(0.06, 1.0), c["trim"], limb)  # stool legs
    cv2.line(img, box.p(0.48, 0.7), box.p(0.52, 1.0), c["trim"], limb)


DRAW: dict[str, Callable] = {
    "car": _draw_car,
    "van": _draw_van,
    "pedestrian": _draw_pedestrian,
    "cyclist": _draw_cyclist,
    "person_sitting": _draw_person_sitting,
}
_PARTS = ("body", "window", "trim", "tyre", "hub", "skin", "legs", "frame")


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(60, 256), rng.integers(70, 256)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0])


def _part_colours(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    colours = {part: _random_colour(rng) for part in _PARTS}
    dark = int(rng.integers(10, 50))
    colours["tyre"] = (dark, dark, dark)
    return colours


# --- background -----------------------------------------------------------------------------


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base = rng.integers(40, 200, size=(2, 2, 3)).astype(np.float32)
    img = cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)
    texture = rng.normal(0.0, 18.0, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    img += cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    # Clutter: lines, outlines, and filled distractor polygons (triangles, stars, blobs).
    for _ in range(int(rng.integers(4, 10))):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p1, p2, _random_colour(rng), int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = float(rng.uniform(8, 45))
        kind = int(rng.integers(0, 4))
        if kind == 0:  # triangle
            angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2])
            radii = np.full(3, size)
        elif kind == 1:  # star
            angles = rng.uniform(0, 2 * np.pi) + np.arange(10) * np.pi / 5
            radii = np.where(np.arange(10) % 2 == 0, size, size * 0.45)
        elif kind == 2:  # irregular blob
            angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
            radii = rng.uniform(0.5, 1.0, 7) * size
        else:  # rectangle outline
            w, h = int(size), int(rng.uniform(8, 45))
            cv2.rectangle(img, (cx, cy), (cx + w, cy + h), _random_colour(rng), 2)
            continue
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(img, [pts.round().astype(np.int32)], _random_colour(rng))
    return img


def _dontcare_region(rng, img: np.ndarray) -> KittiObject | None:
    """A blurred cluster of tiny objects, labelled DontCare (as KITTI marks far crowds)."""
    height, width = img.shape[:2]
    w, h = int(rng.integers(30, 80)), int(rng.integers(18, 40))
    x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
    region = img[y : y + h, x : x + w]
    for _ in range(int(rng.integers(2, 5))):
        name = CLASSES[int(rng.integers(0, len(CLASSES)))]
        bh = float(rng.uniform(8, 16))
        bw = bh * float(rng.uniform(*ASPECT[name]))
        bx, by = float(rng.uniform(0, max(1.0, w - bw))), float(rng.uniform(0, max(1.0, h - bh)))
        DRAW[name](region, _Box(bx, by, bw, bh, bool(rng.integers(0, 2))), _part_colours(rng))
    img[y : y + h, x : x + w] = cv2.GaussianBlur(region, (7, 7), 2.5)
    # KITTI's DontCare convention: -1 truncation/occlusion, -10 angles, -1/-1000 3-D fields.
    return KittiObject(
        "DontCare",
        -1.0,
        -1,
        -10.0,
        float(x),
        float(y),
        float(x + w),
        float(y + h),
        -1.0,
        -1.0,
        -1.0,
        -1000.0,
        -1000.0,
        -1000.0,
        -10.0,
    )


# --- one frame ------------------------------------------------------------------------------


@dataclass
class _Placed:
    name: str
    box: _Box
    colours: dict
    mask: np.ndarray  # the object's own pixels, drawn alone (amodal)
    truncation: float


def _place_objects(rng, width: int, height: int, count: int) -> list[_Placed]:
    placed = []
    for _ in range(count):
        name = CLASSES[int(rng.choice(len(CLASSES), p=CLASS_WEIGHTS))]
        h = float(rng.uniform(*HEIGHT[name])) * height
        w = h * float(rng.uniform(*ASPECT[name]))
        # Allow the box to cross the image border (truncation), limited below.
        x = float(rng.uniform(-0.3 * w, width - 0.7 * w))
        y = float(rng.uniform(max(-0.2 * h, 0.15 * height - h), height - 0.75 * h))
        vis_w = min(x + w, width) - max(x, 0.0)
        vis_h = min(y + h, height) - max(y, 0.0)
        if vis_w < MIN_VISIBLE_PX or vis_h < MIN_VISIBLE_PX:
            continue
        truncation = max(0.0, 1.0 - (vis_w * vis_h) / (w * h))
        if truncation > MAX_TRUNCATION:
            continue
        box = _Box(x, y, w, h, bool(rng.integers(0, 2)))
        colours = _part_colours(rng)
        mask = np.zeros((height, width), np.uint8)
        DRAW[name](mask, box, dict.fromkeys(_PARTS, 255))
        if cv2.countNonZero(mask) < MIN_VISIBLE_PX**2 // 2:
            continue
        placed.append(_Placed(name, box, colours, mask, truncation))
    # Draw far to near: objects lower in the image are nearer and cover the ones behind.
    placed.sort(key=lambda o: o.box.y + o.box.h)
    return placed


def _covered_fractions(placed: list[_Placed]) -> list[float]:
    """Fraction of each object's pixels covered by objects drawn after it."""
    fractions = [0.0] * len(placed)
    if not placed:
        return fractions
    cover = np.zeros_like(placed[0].mask)
    for i in range(len(placed) - 1, -1, -1):
        own = placed[i].mask > 0
        fractions[i] = float(np.count_nonzero(own & (cover > 0))) / max(1, np.count_nonzero(own))
        cover |= placed[i].mask
    return fractions


def _object_label(rng, obj: _Placed, covered: float, width: int) -> KittiObject:
    # The tight box of the object's own pixels (clipped to the image), occluded parts included.
    bx, by, bw, bh = cv2.boundingRect(obj.mask)
    occlusion = sum(covered > level for level in OCCLUSION_LEVELS)
    dims = [d * float(rng.uniform(0.9, 1.1)) for d in DIMENSIONS[obj.name]]
    z = float(np.clip(600.0 * dims[0] / max(1.0, obj.box.h), 3.0, 80.0))
    cx = bx + bw / 2.0
    x3d = (cx - width / 2.0) * z / 600.0
    rotation_y = float(rng.uniform(-np.pi, np.pi))
    alpha = float(
        np.arctan2(np.sin(rotation_y - np.arctan2(x3d, z)), np.cos(rotation_y - np.arctan2(x3d, z)))
    )
    return KittiObject(
        obj.name, round(obj.truncation, 2), int(occlusion), round(alpha, 2),
        float(bx), float(by), float(bx + bw), float(by + bh),
        round(dims[0], 2), round(dims[1], 2), round(dims[2], 2),
        round(x3d, 2), round(dims[0] / 2 + 1.0, 2), round(z, 2), round(rotation_y, 2),
    )  # fmt: skip


def render_frame(
    rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, list[KittiObject]]:
    """One image (BGR uint8) and its labels."""
    img = _background(rng, width, height)
    labels: list[KittiObject] = []
    for _ in range(int(rng.choice(3, p=(0.55, 0.3, 0.15)))):
        dontcare = _dontcare_region(rng, img)
        if dontcare is not None:
            labels.append(dontcare)
    placed = _place_objects(rng, width, height, int(rng.integers(2, 7)))
    covered = _covered_fractions(placed)
    while any(f > MAX_COVERED for f in covered):  # drop objects hidden beyond recognition
        placed = [o for o, f in zip(placed, covered, strict=True) if f <= MAX_COVERED]
        covered = _covered_fractions(placed)
    for obj in placed:
        DRAW[obj.name](img, obj.box, obj.colours)
    labels.extend(_object_label(rng, obj, f, width) for obj, f in zip(placed, covered, strict=True))
    return img, labels


# --- specs ----------------------------------------------------------------------------------


def sample_convert_spec(data_dir: str | Path, partition_mode: str = "random") -> str:
    """A dataset-convert spec for the ``training`` split of ``data_dir``."""
    root = Path(data_dir).resolve()
    training = root / "training"
    if partition_mode == "random":
        partition = '  partition_mode: "random"\n  num_partitions: 2\n  val_split: 20\n'
    elif partition_mode == "sequence":
        partition = (
            f'  kitti_sequence_to_frames_file: "{root / SEQUENCE_FILE}"\n'
            '  partition_mode: "sequence"\n  num_partitions: 3\n'
        )
    else:
        raise ValueError(f"partition_mode must be 'random' or 'sequence', not {partition_mode!r}")
    return (
        "kitti_config {\n"
        f'  root_directory_path: "{training}"\n'
        '  image_dir_name: "image_2"\n'
        '  label_dir_name: "label_2"\n'
        '  image_extension: ".png"\n'
        f"{partition}"
        "  num_shards: 2\n"
        "}\n"
        f'image_directory_path: "{training}"\n'
    )


# --- the dataset ----------------------------------------------------------------------------


def _sequences(rng: np.random.Generator, frame_ids: list[str]) -> dict[str, list[str]]:
    """Consecutive training frames grouped into sequences of 3-12 frames."""
    sequences: dict[str, list[str]] = {}
    start = 0
    while start < len(frame_ids):
        length = int(rng.integers(3, 13))
        sequences[f"sample_drive_{len(sequences):04d}_sync"] = frame_ids[start : start + length]
        start += length
    return sequences


def _frame_size(rng, width: int | None, height: int | None) -> tuple[int, int]:
    w = width if width is not None else int(rng.integers(320, 481))
    h = height if height is not None else round(w * float(rng.uniform(0.6, 0.8)))
    return w, h


def generate_sample_data(
    out_dir: str | Path,
    *,
    num_train: int = 200,
    num_val: int = 50,
    seed: int = 0,
    width: int | None = None,
    height: int | None = None,
    spec_root: str | Path | None = None,
    experiment_specs: Mapping[str, Callable[[Path], str]] | None = None,
) -> SampleData:
    """Write the dataset described in the module docstring into ``out_dir``.

    ``width``/``height`` fix the image size; by default each frame gets its own size (320-480
    pixels wide, aspect 0.6-0.8). Frame ``i`` depends only on ``seed`` and ``i``. Files are
    written directly: callers wanting an all-or-nothing result (the stage) write into a
    temporary directory and rename it, passing the final directory as ``spec_root`` (the
    path the spec files name; default ``out_dir``). ``experiment_specs``: network name ->
    a function of the dataset root giving that network's spec text, written as
    ``specs/<network>_train.txt``.
    """
    root = Path(out_dir)
    final_root = Path(spec_root) if spec_root is not None else root
    splits = {"training": range(num_train), "val": range(num_train, num_train + num_val)}
    counts: dict[str, dict[str, int]] = {}
    params = (cv2.IMWRITE_PNG_COMPRESSION, 1)  # fast; files ~120 KiB
    for split, indices in splits.items():
        image_dir, label_dir = root / split / "image_2", root / split / "label_2"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        counter: Counter[str] = Counter()
        for index in indices:
            rng = np.random.default_rng([seed, index])
            img, labels = render_frame(rng, *_frame_size(rng, width, height))
            frame_id = f"{index:06d}"
            ok, encoded = cv2.imencode(".png", img, params)
            if not ok:
                raise RuntimeError("OpenCV could not encode a PNG")
            (image_dir / f"{frame_id}.png").write_bytes(encoded.tobytes())
            (label_dir / f"{frame_id}.txt").write_text(
                "".join(format_kitti_line(o, precision=2) + "\n" for o in labels)
            )
            counter.update(o.class_name for o in labels)
        counts[split] = dict(sorted(counter.items()))
    train_ids = [f"{i:06d}" for i in splits["training"]]
    sequence_file = root / SEQUENCE_FILE
    sequence_file.write_text(
        json.dumps(_sequences(np.random.default_rng([seed, 1 << 30]), train_ids), indent=1)
    )
    specs = root / "specs"
    specs.mkdir(exist_ok=True)
    for name, make_spec in (experiment_specs or {}).items():
        (specs / f"{name}{EXPERIMENT_SPEC_SUFFIX}").write_text(make_spec(final_root))
    (specs / "convert_random.txt").write_text(sample_convert_spec(final_root, "random"))
    (specs / "convert_sequence.txt").write_text(sample_convert_spec(final_root, "sequence"))
    manifest = {
        "generator": "tlt_core.data.sample",
        "num_train": num_train,
        "num_val": num_val,
        "seed": seed,
        "width": width,
        "height": height,
        "class_counts": counts,
        "experiment_specs": list(experiment_specs or {}),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return sample_paths(root, counts)


EXPERIMENT_SPEC_SUFFIX = "_train.txt"


def _spec_names(root: Path) -> list[str]:
    """The networks whose experiment specs the dataset holds, in the order written (the
    manifest lists them)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    return [str(name) for name in manifest.get("experiment_specs", [])]


def sample_paths(root: str | Path, class_counts: dict | None = None) -> SampleData:
    """The paths of a dataset generated under ``root``."""
    root = Path(root)
    specs = root / "specs"
    return SampleData(
        root=root,
        train_image_dir=root / "training" / "image_2",
        train_label_dir=root / "training" / "label_2",
        val_image_dir=root / "val" / "image_2",
        val_label_dir=root / "val" / "label_2",
        sequence_file=root / SEQUENCE_FILE,
        experiment_specs={
            name: specs / f"{name}{EXPERIMENT_SPEC_SUFFIX}" for name in _spec_names(root)
        },
        convert_spec_random=specs / "convert_random.txt",
        convert_spec_sequence=specs / "convert_sequence.txt",
        class_counts=dict(class_counts or {}),
    )
