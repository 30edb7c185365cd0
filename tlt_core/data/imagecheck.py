"""Full decode of an encoded image, without TensorFlow: is this image usable for training?

``dataset-convert`` stores image bytes as read (no re-encode), so a truncated or corrupt
file would pass a header check and then be dropped by the training input. Decoding each
image once at conversion (OpenCV releases the GIL, so the read-ahead threads decode in
parallel) names the broken file while it can still be fixed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tlt_core.errors import DataError

# OpenCV prints a warning line per broken image on its own; the DataError says it once.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def verify_decodes(data: bytes, fmt: str, path: str | Path | None = None) -> None:
    """Raise :class:`DataError` naming ``path`` unless ``data`` decodes completely.

    The caller has checked the header (format and a bounded size) first.
    """
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise DataError(f"corrupt or truncated {fmt.upper()}: the image does not decode", path)
