"""Boxes with a text label drawn on a BGR image (OpenCV): the one drawing routine, used by
``tlt ssd inference``'s annotated images and the evaluation report's frame grid."""

from __future__ import annotations

import numpy as np

# Box colours (BGR) cycled over the classes.
PALETTE = ((0, 200, 0), (0, 0, 230), (230, 120, 0), (0, 200, 230), (200, 0, 200), (130, 130, 0))


def line_scale(image: np.ndarray) -> tuple[int, float]:
    """(line thickness, font scale) readable on an image of this size."""
    scale = max(image.shape[0], image.shape[1]) / 800.0
    return max(1, round(2 * scale)), max(0.35, 0.5 * scale)


def draw_labelled_box(
    image: np.ndarray,
    box,
    text: str,
    colour: tuple[int, int, int],
    *,
    thickness: int | None = None,
    font_scale: float | None = None,
    text_colour: tuple[int, int, int] = (255, 255, 255),
) -> None:
    """Draw corners ``box`` ``[x1, y1, x2, y2]`` (pixels) and ``text`` above it, in place.
    An empty ``text`` draws the box only; thickness and font scale default to
    ``line_scale(image)``."""
    import cv2

    default_thickness, default_font_scale = line_scale(image)
    thickness = thickness or default_thickness
    font_scale = font_scale or default_font_scale
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
    if not text:
        return
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    top = max(y1 - th - base, 0)
    cv2.rectangle(image, (x1, top), (x1 + tw, top + th + base), colour, -1)
    cv2.putText(
        image,
        text,
        (x1, top + th),
        cv2.FONT_HERSHEY_SIMPLEX,
        font_scale,
        text_colour,
        1,
        cv2.LINE_AA,
    )
