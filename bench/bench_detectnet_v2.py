"""DetectNet_v2 post-processing and targets, side by side with the model's forward step.

- clustering: 10,000 candidate boxes of one image (DBSCAN on 1 - IoU, 4 classes x 2,500
  cells, every cell above the coverage threshold: the worst case), against one forward
  step of ResNet-10 on that image's 544x960 input (002's sample size);
- rasteriser: the targets of a batch of 16 images x 30 objects at 544x960, against the
  forward step of that batch.

Target: each <= 1x the forward step it is compared with (post-processing and targets must
not be what limits inference or training on the CPU). Best of 3 runs each.
"""

from __future__ import annotations

import time

import numpy as np

from bench import BenchRow


def _best(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _candidates(rng, classes: int, rows: int, cols: int):
    """Coverage and coded boxes of ``classes`` x ``rows`` x ``cols`` cells: a few objects
    whose cells agree, the rest noise, all above the threshold."""
    cov = rng.uniform(0.01, 1.0, (rows, cols, classes)).astype(np.float32)
    bbox = rng.uniform(0.1, 2.0, (rows, cols, classes * 4)).astype(np.float32)
    return cov, bbox


def run(quick: bool = False) -> list[BenchRow]:
    import keras

    from tlt_core.networks.detectnet_v2.clustering import cluster_image
    from tlt_core.networks.detectnet_v2.model import build_detectnet_v2_model
    from tlt_core.networks.detectnet_v2.rasterizer import RasterSettings, rasterize
    from tlt_core.networks.detectnet_v2.spec import ClusteringSpec

    rng = np.random.default_rng(0)
    height, width = (272, 480) if quick else (544, 960)
    rows, cols = height // 16, width // 16
    classes = 4
    cells_per_class = 10_000 // classes
    grid_cols = cells_per_class // rows + 1
    cov, bbox = _candidates(rng, classes, rows, grid_cols)
    settings = [ClusteringSpec(0.005, 0.15, 0.05, 4.0)] * classes
    candidates = int((cov >= 0.005).sum())
    cluster_s = _best(lambda: cluster_image(cov, bbox, settings, scale=35.0, offset=0.5))

    model = build_detectnet_v2_model(
        "resnet", 10, input_shape=(height, width, 3), num_classes=classes
    )
    image = rng.normal(size=(1, height, width, 3)).astype(np.float32)
    model.predict_on_batch(image)
    forward_1 = _best(lambda: model.predict_on_batch(image))

    batch = 4 if quick else 16
    boxes = np.zeros((batch, 30, 4), np.float32)
    xy = rng.uniform(0, [width - 40, height - 40], (batch, 30, 2))
    wh = rng.uniform(8, 200, (batch, 30, 2))
    boxes[..., :2], boxes[..., 2:] = xy, np.minimum(xy + wh, [width, height])
    labels = rng.integers(1, classes + 1, (batch, 30)).astype(np.int32)
    raster = RasterSettings(
        rows=rows,
        cols=cols,
        cov_center=np.full((classes, 2), 0.5, np.float32),
        cov_radius=np.full((classes, 2), 1.0, np.float32),
        min_radius=np.ones(classes, np.float32),
        deadzone=0.67,
        bbox_scale=35.0,
        bbox_offset=0.5,
    )
    rasterize(boxes, labels, raster)
    raster_s = _best(lambda: rasterize(boxes, labels, raster).numpy())
    images = rng.normal(size=(batch, height, width, 3)).astype(np.float32)
    model.predict_on_batch(images)
    forward_b = _best(lambda: model.predict_on_batch(images))
    keras.backend.clear_session()
    return [
        BenchRow(
            f"dnv2 clustering, {candidates:,} candidates, 1 image (s)",
            cluster_s,
            "s",
            f"ResNet-10 forward 1x{height}x{width}",
            forward_1,
            cluster_s / forward_1,
            "<= 1x",
            cluster_s <= forward_1,
        ),
        BenchRow(
            f"dnv2 rasteriser, batch {batch} x 30 objects (s)",
            raster_s,
            "s",
            f"ResNet-10 forward {batch}x{height}x{width}",
            forward_b,
            raster_s / forward_b,
            "<= 1x",
            raster_s <= forward_b,
        ),
    ]
