"""Camera frames as the recorder stores them: JPEG bytes encoded from RGB (after RGB->BGR)."""

from __future__ import annotations

import cv2
import numpy as np

from takeover.storage.errors import EpisodeFileError


def decode_rgb(jpeg: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 (H, W, 3) RGB (:class:`EpisodeFileError` if they do not decode)."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EpisodeFileError("a camera frame is not a decodable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
