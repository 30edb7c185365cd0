"""The validation frames an evaluation report shows: the worst and the best, drawn.

Each frame's detections at or above a display threshold are matched to its ground truth
with the AP matching (``evaluate.ap.match_detections``): a matched detection is a true
positive, an unmatched one a false positive, an unmatched ground truth a miss (difficult
objects are neither). Frames are ranked by errors (false positives + misses): the worst
have the most, the best have none and the most objects found. Only the frames that can
still be shown are kept while the evaluation streams by (bounded memory), then drawn with
``boxes.draw`` at the network's input size (enlarged to at least ``MIN_SIDE`` pixels).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from tlt_core.reports import Tile

MIN_SIDE = 320  # pixels: the shorter side of a drawn frame, so labels stay readable
JPEG_QUALITY = 90
MAX_DRAWN = 50  # detections drawn per frame (highest scores); the caption counts them all
FONT_SCALE = 0.45  # OpenCV font scale of the labels: legible in a ~270 px wide grid tile
# BGR colours of the grid's box kinds; the report's legend names them.
COLOURS = {
    "tp": (0, 170, 0),  # green: detection matching a ground-truth object
    "fp": (0, 140, 255),  # orange: detection matching nothing (false positive)
    "miss": (60, 20, 220),  # red: ground-truth object no detection found
    "gt": (235, 235, 235),  # light grey: ground-truth object that was found
}


@dataclass(frozen=True)
class _Scored:
    frame_id: str
    image_bgr: np.ndarray  # uint8 at the network's input size
    original_size: tuple[int, int] | None  # (h, w) of the source image: its aspect ratio
    detections: object  # boxes.nms.Detections above the threshold
    ground_truth: object  # evaluate.ap.GroundTruth
    matched: np.ndarray  # per detection: gt index or -1
    true_positives: int
    false_positives: int
    misses: int


def frame_outcome(detections, ground_truth, matched: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, misses) of one frame; difficult gt is neither."""
    difficult = np.asarray(ground_truth.difficult, bool)
    hit = matched >= 0
    on_difficult = np.zeros_like(hit)
    on_difficult[hit] = difficult[matched[hit]]
    found = np.zeros(len(ground_truth.classes), bool)
    found[matched[hit]] = True
    tp = int(np.sum(hit & ~on_difficult))
    fp = int(np.sum(~hit))
    misses = int(np.sum(~found & ~difficult))
    return tp, fp, misses


def _is_detections(prediction) -> bool:
    return all(hasattr(prediction, name) for name in ("boxes", "classes", "scores"))


class FrameSelector:
    """Keeps the ``count`` worst and best frames of an evaluation as batches go by.

    ``add`` is ``evaluate.collect.collect_predictions``'s ``on_batch`` hook: model input
    images (BGR minus ``mean_bgr``), the network's predictions and truths, frame ids. It
    draws detectors' frames (``boxes.nms.Detections`` against ``evaluate.ap.GroundTruth``,
    in input pixels) and ignores a batch whose predictions are not detections.
    """

    def __init__(
        self,
        count: int,
        class_names: list[str],
        mean_bgr,
        *,
        iou_threshold: float | tuple[float, ...],
        threshold: float,
    ) -> None:
        self.count = int(count)
        self.class_names = list(class_names)
        self.mean_bgr = np.asarray(mean_bgr, np.float32)
        # One IoU for every class, or one per class (class_names order).
        self.iou_threshold = (
            float(iou_threshold)
            if np.ndim(iou_threshold) == 0
            else tuple(float(t) for t in iou_threshold)
        )
        self.threshold = float(threshold)
        self._order = itertools.count()
        self._seen = 0
        self._worst: list[tuple] = []  # min-heaps; the root is the first to drop
        self._best: list[tuple] = []

    def add(
        self, images: np.ndarray, detections, ground_truths, frame_ids, original_sizes=None
    ) -> None:
        from tlt_core.evaluate.ap import match_detections

        if self.count <= 0 or not all(_is_detections(d) for d in detections):
            return
        shown = [self._above_threshold(d) for d in detections]
        matches = match_detections(shown, ground_truths, len(self.class_names), self.iou_threshold)
        sizes = [None] * len(shown) if original_sizes is None else original_sizes
        for image, det, gt, frame_id, matched, size in zip(
            images, shown, ground_truths, frame_ids, matches, sizes, strict=True
        ):
            tp, fp, misses = frame_outcome(det, gt, matched)
            n = next(self._order)
            self._seen += 1
            errors = fp + misses
            worst_key = (errors, len(gt.classes), -n)
            best_key = (-errors, tp, -n)
            if not self._wanted(self._worst, worst_key) and not self._wanted(self._best, best_key):
                continue
            pixels = np.clip(np.asarray(image, np.float32) + self.mean_bgr, 0, 255)
            original = None if size is None else (int(size[0]), int(size[1]))
            scored = _Scored(
                str(frame_id), pixels.astype(np.uint8), original, det, gt, matched, tp, fp, misses
            )
            self._push(self._worst, worst_key, scored)
            self._push(self._best, best_key, scored)

    def _above_threshold(self, det):
        keep = np.asarray(det.scores) >= self.threshold
        return type(det)(det.boxes[keep], det.classes[keep], det.scores[keep])

    def _wanted(self, heap: list, key: tuple) -> bool:
        return len(heap) < self.count or key > heap[0][0]

    def _push(self, heap: list, key: tuple, scored: _Scored) -> None:
        if len(heap) < self.count:
            heapq.heappush(heap, (key, scored))
        elif key > heap[0][0]:
            heapq.heapreplace(heap, (key, scored))

    def tiles(self) -> list[Tile]:
        """Up to ``count`` distinct frames: the worst half first (most errors first), then
        the best (fewest errors, most objects found), topped up from either list."""
        worst = [s for _, s in sorted(self._worst, key=lambda e: e[0], reverse=True)]
        best = [s for _, s in sorted(self._best, key=lambda e: e[0], reverse=True)]
        chosen: list[tuple[str, _Scored]] = []
        taken: set[str] = set()

        def take(kind: str, items: list[_Scored], limit: int) -> None:
            for item in items:
                if len(chosen) >= limit:
                    return
                if item.frame_id not in taken:
                    taken.add(item.frame_id)
                    chosen.append((kind, item))

        shown = min(self.count, self._seen)
        take("worst", [s for s in worst if s.false_positives + s.misses], (shown + 1) // 2)
        take("best", best, self.count)
        take("worst", worst, self.count)
        return [self._draw(kind, item) for kind, item in chosen]

    def _draw(self, kind: str, item: _Scored) -> Tile:
        import cv2

        from tlt_core.boxes.draw import draw_labelled_box

        height, width = item.image_bgr.shape[:2]
        # Back to the source image's aspect ratio (the network input is stretched to its
        # size), the shorter side at least MIN_SIDE; boxes scale per axis.
        source_h, source_w = item.original_size or (height, width)
        aspect = source_w / source_h
        if aspect >= 1.0:
            out_h = max(MIN_SIDE, height)
            out_w = round(out_h * aspect)
        else:
            out_w = max(MIN_SIDE, width)
            out_h = round(out_w / aspect)
        image = cv2.resize(item.image_bgr, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        factor = np.array([out_w / width, out_h / height] * 2, np.float32)
        gt, det = item.ground_truth, item.detections
        found = set(int(g) for g in item.matched if g >= 0)
        difficult = np.asarray(gt.difficult, bool)
        for index, (box, cls) in enumerate(zip(gt.boxes, gt.classes, strict=True)):
            name = self.class_names[int(cls)]
            if index in found or difficult[index]:
                draw_labelled_box(image, np.asarray(box) * factor, "", COLOURS["gt"], thickness=1)
            else:
                draw_labelled_box(
                    image,
                    np.asarray(box) * factor,
                    f"miss {name}",
                    COLOURS["miss"],
                    thickness=2,
                    font_scale=FONT_SCALE,
                )
        drawn = np.argsort(-np.asarray(det.scores), kind="stable")[:MAX_DRAWN]
        for box, cls, score, matched in zip(
            det.boxes[drawn],
            det.classes[drawn],
            det.scores[drawn],
            item.matched[drawn],
            strict=True,
        ):
            name = self.class_names[int(cls)]
            if matched >= 0:
                text, colour = f"{name} {score:.2f}", COLOURS["tp"]
            else:
                text, colour = f"FP {name} {score:.2f}", COLOURS["fp"]
            draw_labelled_box(
                image, np.asarray(box) * factor, text, colour, thickness=2, font_scale=FONT_SCALE
            )
        # JPEG: a dozen photo-like tiles stay around 30 KB each in the page (PNG: ~150 KB).
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:  # OpenCV encodes any uint8 BGR image; a failure is a bug, not bad input
            raise RuntimeError(f"could not encode frame {item.frame_id} as JPEG")
        return Tile(
            frame_id=item.frame_id,
            kind=kind,
            image=encoded.tobytes(),
            mime="image/jpeg",
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            true_positives=item.true_positives,
            false_positives=item.false_positives,
            misses=item.misses,
        )
