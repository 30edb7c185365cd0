"""``tlt ssd inference`` output: images with their boxes drawn, and KITTI label files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tlt_core.errors import DataError


def draw_detections(image_bgr: np.ndarray, detections, class_names) -> np.ndarray:
    from tlt_core.boxes.draw import PALETTE, draw_labelled_box

    out = image_bgr.copy()
    for box, cls, score in zip(
        detections.boxes, detections.classes, detections.scores, strict=True
    ):
        colour = PALETTE[int(cls) % len(PALETTE)]
        draw_labelled_box(out, box, f"{class_names[int(cls)]} {score:.2f}", colour)
    return out


def write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    from tlt_core.io_utils import atomic_path

    ok, encoded = cv2.imencode(path.suffix.lower() or ".png", image)
    if not ok:
        raise DataError("OpenCV could not encode the annotated image", path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


class DetectionWriter:
    """Annotated images into ``output_dir``; with ``label_dir``, one KITTI file per image
    (boxes in original pixels, the score as KITTI's 16th column)."""

    def __init__(self, class_names: list[str], output_dir: Path, label_dir: Path | None) -> None:
        self.class_names = class_names
        self.output_dir = Path(output_dir)
        self.label_dir = Path(label_dir) if label_dir else None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.label_dir is not None:
            self.label_dir.mkdir(parents=True, exist_ok=True)

    def add(self, image_path: Path, image_bgr: np.ndarray, prediction: Any) -> int:
        from tlt_core.data.kitti import KittiObject, write_label_file

        names = self.class_names
        write_image(
            self.output_dir / image_path.name, draw_detections(image_bgr, prediction, names)
        )
        if self.label_dir is not None:
            objects = [
                KittiObject(names[int(c)], 0.0, 0, 0.0, *map(float, box), score=float(s))
                for box, c, s in zip(
                    prediction.boxes, prediction.classes, prediction.scores, strict=True
                )
            ]
            write_label_file(self.label_dir / f"{image_path.stem}.txt", objects)
        return len(prediction)

    def close(self) -> dict[str, Any]:
        return {}
