"""SSD anchor (default) boxes: one numpy table, computed once per model.

The layout follows the Keras SSD port TLT is built on (Pierluigi Ferrari's ``ssd_keras``,
``AnchorBoxes`` / ``SSDInputEncoder``):

* sizes are relative to the *shorter* image side: an aspect-ratio-1 box of layer ``i`` is
  ``scale_i * min(H, W)`` pixels wide and high; for aspect ratio ``ar`` the box is
  ``scale_i * min(H, W) * sqrt(ar)`` wide and ``scale_i * min(H, W) / sqrt(ar)`` high;
* with ``two_boxes_for_ar1`` an extra aspect-ratio-1 box of size
  ``sqrt(scale_i * scale_{i+1}) * min(H, W)`` follows the first one, in place;
* centres lie on a grid with ``step`` pixels between them (default ``image / feature map``,
  per axis) starting ``offset * step`` pixels from the top/left border (default offset 0.5);
  a step or offset may be one number or a ``(vertical, horizontal)`` pair;
* ``clip_boxes`` clips the anchor *corners* to the image, i.e. to ``[0, 1]`` normalised.
  (The Keras port clips to ``W - 1`` / ``H - 1`` pixels, a pixel-index convention; our boxes
  are continuous, so the border is ``W`` / ``H``.)

The result is ``[A, 4]`` normalised ``(cx, cy, w, h)`` (x divided by the image width, y by
the height), ordered by layer, then row y, then column x, then box of the cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class AnchorSpecLike(Protocol):
    """The fields of ``tlt_core.spec.AnchorSpec`` that anchors depend on."""

    scales: Sequence[float]
    aspect_ratios: Sequence[Sequence[float]]
    two_boxes_for_ar1: bool
    steps: Sequence[float | Sequence[float]] | None
    offsets: Sequence[float | Sequence[float]] | None
    clip_boxes: bool


def _is_one(ar: float) -> bool:
    # "1.0" in a spec parses to exactly 1.0; the tolerance only absorbs "3.0/3.0"-like text.
    return math.isclose(float(ar), 1.0, rel_tol=0.0, abs_tol=1e-9)


def layer_box_sizes(
    aspect_ratios: Sequence[float], this_scale: float, next_scale: float, two_boxes_for_ar1: bool
) -> list[tuple[float, float]]:
    """``(w, h)`` of each box of a cell, as fractions of the shorter image side."""
    sizes: list[tuple[float, float]] = []
    for ar in aspect_ratios:
        if _is_one(ar):
            sizes.append((this_scale, this_scale))
            if two_boxes_for_ar1:
                extra = math.sqrt(this_scale * next_scale)
                sizes.append((extra, extra))
        else:
            root = math.sqrt(float(ar))
            sizes.append((this_scale * root, this_scale / root))
    return sizes


def boxes_per_layer(anchor_spec: AnchorSpecLike) -> list[int]:
    """Number of anchors per feature-map cell, for each predictor layer."""
    counts = []
    for ratios in anchor_spec.aspect_ratios:
        n = len(ratios)
        if anchor_spec.two_boxes_for_ar1 and any(_is_one(ar) for ar in ratios):
            n += 1
        counts.append(n)
    return counts


def anchor_count(anchor_spec: AnchorSpecLike, feature_map_sizes: Sequence[Sequence[int]]) -> int:
    """Total number of anchors ``A`` for these feature maps."""
    per_cell = boxes_per_layer(anchor_spec)
    _check_layers(anchor_spec, feature_map_sizes)
    return sum(int(h) * int(w) * n for (h, w), n in zip(feature_map_sizes, per_cell, strict=True))


def _pair(value: float | Sequence[float]) -> tuple[float, float]:
    """A step/offset as ``(vertical, horizontal)``."""
    if isinstance(value, int | float | np.floating | np.integer):
        return float(value), float(value)
    values = [float(v) for v in value]
    if len(values) != 2:
        raise ValueError(f"expected one number or a (vertical, horizontal) pair, got {value!r}")
    return values[0], values[1]


def _check_layers(anchor_spec: AnchorSpecLike, feature_map_sizes: Sequence[Sequence[int]]) -> None:
    n_layers = len(anchor_spec.aspect_ratios)
    if len(feature_map_sizes) != n_layers:
        raise ValueError(
            f"{len(feature_map_sizes)} feature maps for {n_layers} predictor layers of the spec"
        )
    if len(anchor_spec.scales) != n_layers + 1:
        raise ValueError(f"need {n_layers + 1} scales, got {len(anchor_spec.scales)}")
    for name in ("steps", "offsets"):
        values = getattr(anchor_spec, name)
        if values is not None and len(values) != n_layers:
            raise ValueError(f"need {n_layers} {name}, got {len(values)}")


def generate_anchors(
    anchor_spec: AnchorSpecLike,
    feature_map_sizes: Sequence[Sequence[int]],
    image_size: Sequence[int],
) -> np.ndarray:
    """Anchors ``[A, 4]`` float32 normalised ``(cx, cy, w, h)``; see the module docstring.

    ``feature_map_sizes``: ``(h, w)`` of each predictor layer; ``image_size``: ``(H, W)`` of
    the network input in pixels.
    """
    _check_layers(anchor_spec, feature_map_sizes)
    img_h, img_w = float(image_size[0]), float(image_size[1])
    shorter = min(img_h, img_w)
    layers = []
    for i, (fm_h, fm_w) in enumerate(feature_map_sizes):
        fm_h, fm_w = int(fm_h), int(fm_w)
        sizes = (
            np.array(
                layer_box_sizes(
                    anchor_spec.aspect_ratios[i],
                    float(anchor_spec.scales[i]),
                    float(anchor_spec.scales[i + 1]),
                    anchor_spec.two_boxes_for_ar1,
                ),
                dtype=np.float64,
            )
            * shorter
        )  # [n, 2] pixels (w, h)
        if anchor_spec.steps is None:
            step_y, step_x = img_h / fm_h, img_w / fm_w
        else:
            step_y, step_x = _pair(anchor_spec.steps[i])
        if anchor_spec.offsets is None:
            off_y, off_x = 0.5, 0.5
        else:
            off_y, off_x = _pair(anchor_spec.offsets[i])
        cy = (off_y + np.arange(fm_h, dtype=np.float64)) * step_y
        cx = (off_x + np.arange(fm_w, dtype=np.float64)) * step_x
        n = len(sizes)
        # [fm_h, fm_w, n, 4] in (row y, column x, box) order.
        grid = np.empty((fm_h, fm_w, n, 4), dtype=np.float64)
        grid[..., 0] = cx[None, :, None]
        grid[..., 1] = cy[:, None, None]
        grid[..., 2] = sizes[:, 0]
        grid[..., 3] = sizes[:, 1]
        layers.append(grid.reshape(-1, 4))
    anchors = np.concatenate(layers, axis=0) if layers else np.zeros((0, 4))
    anchors /= np.array([img_w, img_h, img_w, img_h])
    if anchor_spec.clip_boxes:
        x1 = np.clip(anchors[:, 0] - anchors[:, 2] / 2, 0.0, 1.0)
        x2 = np.clip(anchors[:, 0] + anchors[:, 2] / 2, 0.0, 1.0)
        y1 = np.clip(anchors[:, 1] - anchors[:, 3] / 2, 0.0, 1.0)
        y2 = np.clip(anchors[:, 1] + anchors[:, 3] / 2, 0.0, 1.0)
        anchors = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)
    return anchors.astype(np.float32)
