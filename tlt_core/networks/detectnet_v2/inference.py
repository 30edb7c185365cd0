"""``tlt detectnet_v2 inference`` (002, 7.2): the cluster-params file and the writer.

The cluster-params JSON (002, "Specification file for inference") replaces the spec's
post-processing for inference: per class (a ``"default"`` entry covers classes not named)
``dbscan_eps``, ``dbscan_min_samples``, ``min_cov_to_cluster`` (the coverage threshold),
``min_obj_height``, and ``confidence_th`` (clusters below it are dropped; 0 when absent).
``target_classes`` must name classes of the model; ``output_map`` renames classes in the
KITTI labels; ``postproc_classes`` limits which classes are written and drawn; ``color``
names the overlay colour per class. ``image_height``/``image_width`` are read but not
needed: every image is resized to the network input and boxes are written in the image's
own pixels. ``dbscan_criterion`` must be ``"IOU"`` (the only one 002 supports).

`DetectNetWriter` writes annotated images into ``images_annotated`` and KITTI labels (score
as the 16th field) into ``labels`` as 002 describes, or into the directories given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.errors import DataError

COLOURS_BGR = {
    "green": (0, 200, 0),
    "magenta": (200, 0, 200),
    "cyan": (200, 200, 0),
    "red": (0, 0, 230),
    "blue": (230, 0, 0),
    "yellow": (0, 220, 220),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "orange": (0, 140, 255),
}
PER_CLASS_KEYS = {
    "dbscan_eps": "dbscan_eps",
    "dbscan_min_samples": "dbscan_min_samples",
    "min_cov_to_cluster": "coverage_threshold",
    "min_obj_height": "minimum_bounding_box_height",
    "confidence_th": "confidence_threshold",
}
KNOWN_KEYS = {
    *PER_CLASS_KEYS,
    "dbscan_criterion",
    "target_classes",
    "output_map",
    "color",
    "postproc_classes",
    "image_height",
    "image_width",
}


@dataclass(frozen=True)
class ClusterParams:
    """A parsed cluster-params file, resolved against the model's classes."""

    settings: tuple  # ClusteringSpec per model class (class_names order)
    output_names: dict[str, str]  # model class -> label written
    written: frozenset[str]  # model classes written and drawn
    colours: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _line_of(text: str, key: str) -> int | None:
    needle = f'"{key}"'
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def load_cluster_params(path: str | Path, class_names, base_settings) -> ClusterParams:
    """Read and check a cluster-params JSON file (DataError ``file:line: key: message``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot read cluster params file: {error.strerror}", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"not JSON: {error.msg}", path, error.lineno) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", path, 1)

    def fail(key: str, message: str):
        raise DataError(message, path, _line_of(text, key), key)

    for key in data:
        if key not in KNOWN_KEYS:
            fail(key, f"unknown key; known: {', '.join(sorted(KNOWN_KEYS))}")
    if str(data.get("dbscan_criterion", "IOU")).upper() != "IOU":
        fail("dbscan_criterion", "only IOU is supported")
    names = list(class_names)
    targets = data.get("target_classes", names)
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        fail("target_classes", "must be a list of class names")
    for target in targets:
        if target.lower() not in names:
            fail("target_classes", f"{target!r} is not a class of the model ({', '.join(names)})")
    settings = []
    for name, base in zip(names, base_settings, strict=True):
        values = {}
        for key, attr in PER_CLASS_KEYS.items():
            table = data.get(key)
            if table is None:
                continue
            if not isinstance(table, dict):
                fail(key, "must be an object of class -> value (and 'default')")
            lowered = {str(k).lower(): v for k, v in table.items()}
            value = lowered.get(name, lowered.get("default"))
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(key, f"{name}: must be a number, got {value!r}")
            values[attr] = float(value)
        if "dbscan_eps" in values and not 0 < values["dbscan_eps"] <= 1:
            fail("dbscan_eps", f"{name}: must be in (0, 1], got {values['dbscan_eps']:g}")
        for attr in ("coverage_threshold", "confidence_threshold", "dbscan_min_samples"):
            if values.get(attr, 0.0) < 0:
                key = next(k for k, a in PER_CLASS_KEYS.items() if a == attr)
                fail(key, f"{name}: must be >= 0")
        settings.append(replace(base, **values))
    output_map = data.get("output_map", {})
    if not isinstance(output_map, dict):
        fail("output_map", "must be an object of class -> label")
    lowered_map = {str(k).lower(): str(v) for k, v in output_map.items()}
    post = data.get("postproc_classes", names)
    if not isinstance(post, list):
        fail("postproc_classes", "must be a list of class names")
    colours = {}
    for cls, colour in (data.get("color") or {}).items():
        if str(colour).lower() not in COLOURS_BGR:
            fail("color", f"{cls}: unknown colour {colour!r}; one of {', '.join(COLOURS_BGR)}")
        colours[str(cls).lower()] = COLOURS_BGR[str(colour).lower()]
    return ClusterParams(
        settings=tuple(settings),
        output_names={n: lowered_map.get(n, n) for n in names},
        written=frozenset(str(p).lower() for p in post) & frozenset(t.lower() for t in targets),
        colours=colours,
    )


class DetectNetWriter:
    """Annotated images into ``output_dir``; KITTI labels into ``label_dir`` when given."""

    def __init__(
        self,
        class_names: list[str],
        output_dir: Path,
        label_dir: Path | None,
        *,
        cluster_params: ClusterParams | None = None,
        line_width: int | None = None,
        draw: bool = True,
    ) -> None:
        self.class_names = class_names
        self.output_dir = Path(output_dir)
        self.label_dir = Path(label_dir) if label_dir else None
        self.params = cluster_params
        self.line_width = line_width
        self.draw = draw
        if draw:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.label_dir is not None:
            self.label_dir.mkdir(parents=True, exist_ok=True)

    def _kept(self, prediction):
        if self.params is None:
            return prediction
        keep = np.array(
            [self.class_names[int(c)] in self.params.written for c in prediction.classes], bool
        )
        return type(prediction)(
            prediction.boxes[keep], prediction.classes[keep], prediction.scores[keep]
        )

    def _label(self, cls: int) -> str:
        name = self.class_names[cls]
        return self.params.output_names.get(name, name) if self.params else name

    def add(self, image_path: Path, image_bgr: np.ndarray, prediction: Any) -> int:
        from tlt_core.data.kitti import KittiObject, write_label_file

        prediction = self._kept(prediction)
        if self.draw:
            self._write_image(self.output_dir / image_path.name, image_bgr, prediction)
        if self.label_dir is not None:
            objects = [
                KittiObject(self._label(int(c)), 0.0, 0, 0.0, *map(float, box), score=float(s))
                for box, c, s in zip(
                    prediction.boxes, prediction.classes, prediction.scores, strict=True
                )
            ]
            write_label_file(self.label_dir / f"{image_path.stem}.txt", objects)
        return len(prediction)

    def _write_image(self, path: Path, image_bgr: np.ndarray, prediction) -> None:
        import cv2

        from tlt_core.io_utils import atomic_path

        out = image_bgr.copy()
        width = self.line_width or max(1, round(max(out.shape[:2]) / 400))
        colours = self.params.colours if self.params else {}
        for box, cls, score in zip(
            prediction.boxes, prediction.classes, prediction.scores, strict=True
        ):
            name = self.class_names[int(cls)]
            colour = colours.get(name, list(COLOURS_BGR.values())[int(cls) % 6])
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, width)
            cv2.putText(
                out,
                f"{self._label(int(cls))} {score:.2f}",
                (x1, max(y1 - 3, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                colour,
                1,
                cv2.LINE_AA,
            )
        ok, encoded = cv2.imencode(path.suffix.lower() or ".png", out)
        if not ok:
            raise DataError("OpenCV could not encode the annotated image", path)
        with atomic_path(path) as tmp:
            tmp.write_bytes(encoded.tobytes())

    def close(self) -> dict[str, Any]:
        return {}
