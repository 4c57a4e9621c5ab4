"""Step 5: a face mask from the landmarks: the convex hull of the 68 points with the brows raised
onto the forehead, so training can weight the loss on the face and convert can blend it in."""

from __future__ import annotations

import cv2
import numpy as np

BROWS = slice(17, 27)
CHIN, NOSE_BRIDGE = 8, 27
FOREHEAD_RAISE = 0.45  # of the chin → nose-bridge distance


def face_hull(landmarks: np.ndarray) -> np.ndarray:
    """Outline points of the face: the 68 landmarks plus the brows raised onto the forehead."""
    landmarks = np.asarray(landmarks, np.float32)
    up = landmarks[NOSE_BRIDGE] - landmarks[CHIN]
    forehead = landmarks[BROWS] + FOREHEAD_RAISE * up
    return cv2.convexHull(np.concatenate([landmarks, forehead]))


def face_mask(landmarks: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """A uint8 mask (255 on the face, 0 elsewhere) of an image ``size`` (square side or (h, w))
    from landmarks in that image's coordinates."""
    height, width = (size, size) if isinstance(size, int) else size
    mask = np.zeros((height, width), np.uint8)
    hull = np.round(face_hull(landmarks) * 16).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return mask
