import math
from dataclasses import dataclass

import numpy as np
import pytest

from tlt_core.networks.ssd.anchors import anchor_count, boxes_per_layer, generate_anchors


@dataclass
class Spec:
    scales: list
    aspect_ratios: list
    two_boxes_for_ar1: bool = True
    steps: list | None = None
    offsets: list | None = None
    clip_boxes: bool = False


TLT_SPEC = Spec(
    scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
    aspect_ratios=[
        [1.0, 2.0, 0.5],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
        [1.0, 2.0, 0.5],
        [1.0, 2.0, 0.5],
    ],
)
SSD300_MAPS = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def test_ssd300_count_matches_the_paper():
    # 38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1·4 = 8732, the SSD300 anchor count.
    assert boxes_per_layer(TLT_SPEC) == [4, 6, 6, 6, 4, 4]
    anchors = generate_anchors(TLT_SPEC, SSD300_MAPS, (300, 300))
    assert anchors.shape == (8732, 4)
    assert anchors.dtype == np.float32
    assert anchor_count(TLT_SPEC, SSD300_MAPS) == 8732


def test_hand_computed_layer_order_and_sizes():
    # Image H=100, W=200; one 2x2 layer; scale 0.2, next 0.8; ratios [1, 2].
    spec = Spec(scales=[0.2, 0.8], aspect_ratios=[[1.0, 2.0]])
    anchors = generate_anchors(spec, [(2, 2)], (100, 200)).astype(np.float64)
    # Sizes relative to the shorter side (100 px): ar1 20x20, extra sqrt(.16)=.4 -> 40x40,
    # ar2 -> 20*sqrt2 wide, 20/sqrt2 high. Normalised: w / 200, h / 100.
    sizes = [
        (20 / 200, 20 / 100),
        (40 / 200, 40 / 100),
        (20 * math.sqrt(2) / 200, 20 / math.sqrt(2) / 100),
    ]
    # Steps 50 px (y) and 100 px (x), offset 0.5: centres y 25, 75 and x 50, 150.
    centres = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]  # row y, then x
    expected = [(cx, cy, w, h) for cx, cy in centres for w, h in sizes]
    np.testing.assert_allclose(anchors, expected, rtol=1e-6)


def test_steps_offsets_pairs_and_numbers():
    spec = Spec(
        scales=[0.1, 0.2],
        aspect_ratios=[[1.0]],
        two_boxes_for_ar1=False,
        steps=[(10.0, 20.0)],
        offsets=[0.0],
    )
    anchors = generate_anchors(spec, [(2, 3)], (40, 80))
    # steps (vertical 10, horizontal 20), offset 0: centres y 0, 10 and x 0, 20, 40 px.
    np.testing.assert_allclose(anchors[:, 0], np.tile([0, 20 / 80, 40 / 80], 2), atol=1e-7)
    np.testing.assert_allclose(anchors[:, 1], np.repeat([0, 10 / 40], 3), atol=1e-7)
    spec2 = Spec(
        scales=[0.1, 0.2],
        aspect_ratios=[[1.0]],
        two_boxes_for_ar1=False,
        steps=[10.0],
        offsets=[(0.5, 0.25)],
    )
    a2 = generate_anchors(spec2, [(1, 2)], (40, 80))
    np.testing.assert_allclose(a2[:, 0], [2.5 / 80, 12.5 / 80], atol=1e-7)
    np.testing.assert_allclose(a2[:, 1], [5 / 40, 5 / 40], atol=1e-7)


def test_clip_boxes_keeps_corners_inside():
    spec = Spec(scales=[0.9, 1.2], aspect_ratios=[[1.0, 3.0]], clip_boxes=True)
    anchors = generate_anchors(spec, [(3, 3)], (90, 90)).astype(np.float64)
    x1 = anchors[:, 0] - anchors[:, 2] / 2
    x2 = anchors[:, 0] + anchors[:, 2] / 2
    y1 = anchors[:, 1] - anchors[:, 3] / 2
    y2 = anchors[:, 1] + anchors[:, 3] / 2
    assert x1.min() >= -1e-6 and y1.min() >= -1e-6
    assert x2.max() <= 1 + 1e-6 and y2.max() <= 1 + 1e-6
    unclipped = generate_anchors(
        Spec(scales=[0.9, 1.2], aspect_ratios=[[1.0, 3.0]]), [(3, 3)], (90, 90)
    )
    assert (unclipped[:, 2] > 1).any()  # the clip did something


def test_boxes_per_layer_without_ar1_or_second_box():
    spec = Spec(
        scales=[0.1, 0.2, 0.3], aspect_ratios=[[2.0, 0.5], [1.0, 2.0]], two_boxes_for_ar1=False
    )
    assert boxes_per_layer(spec) == [2, 2]
    spec.two_boxes_for_ar1 = True
    assert boxes_per_layer(spec) == [2, 3]
    assert anchor_count(spec, [(4, 5), (2, 2)]) == 4 * 5 * 2 + 2 * 2 * 3
    assert generate_anchors(spec, [(4, 5), (2, 2)], (64, 80)).shape == (52, 4)


@pytest.mark.parametrize(
    "spec, maps",
    [
        (Spec(scales=[0.1, 0.2], aspect_ratios=[[1.0]]), [(2, 2), (1, 1)]),
        (Spec(scales=[0.1], aspect_ratios=[[1.0]]), [(2, 2)]),
        (Spec(scales=[0.1, 0.2], aspect_ratios=[[1.0]], steps=[8, 16]), [(2, 2)]),
    ],
)
def test_inconsistent_layers_raise(spec, maps):
    with pytest.raises(ValueError):
        generate_anchors(spec, maps, (32, 32))
