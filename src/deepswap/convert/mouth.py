"""A's own mouth interior inside the new face's lips (``ReplaceSettings.mouth_interior``).

A model draws only the openings the other person's footage shows: where A's mouth opens wider than
any of B's faces, B's decoder closes it part way and smears teeth and tongue. With ``wide`` the
pixels inside A's inner lips are left as filmed from the point where A's mouth opens past
``RAMP[0]`` of B's widest opening, fully past ``RAMP[1]`` of it; with ``always`` at every opening.
The lips and everything around them stay the model's, so the identity is still B's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..faces.expression import INNER_LIPS as INNER_LIP_PAIRS, mouth_open
from .blend import prepare_mask
from .options import MouthInterior

INNER_LIPS = slice(60, 68)
RAMP = (0.8, 1.0)  # of the other person's widest opening: where A's own interior starts to show, and shows fully
FEATHER = 0.25  # of the lip gap: the soft edge of the interior along the inner-lip line


def widest_opening(landmarks: np.ndarray) -> float:
    """The widest mouth opening (``mouth_open``) among a person's faces (N×68×2); 0 for none."""
    openings = mouth_open(np.asarray(landmarks, np.float64).reshape(-1, 68, 2))
    openings = openings[np.isfinite(openings)]
    return float(openings.max()) if len(openings) else 0.0


def interior_weight(opening: float, mode: MouthInterior, widest_other: float) -> float:
    """How much of A's own interior shows (0..1) for a mouth opened ``opening`` (``mouth_open``)."""
    if mode == "off" or not math.isfinite(opening) or (mode == "wide" and not math.isfinite(widest_other)):
        return 0.0
    if mode == "always":
        return 1.0
    low, high = RAMP[0] * widest_other, RAMP[1] * widest_other
    return float(np.clip((opening - low) / max(high - low, 1e-6), 0.0, 1.0))


def interior_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """size×size float32 in 0..1: the inside of the inner lips (landmarks 60–67, crop pixels), its
    edge feathered by ``FEATHER`` of the lip gap (so a small mouth keeps a solid middle)."""
    points = np.asarray(landmarks, np.float64)
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [np.round(points[INNER_LIPS] * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    gap = np.mean([np.linalg.norm(points[top] - points[bottom]) for top, bottom in INNER_LIP_PAIRS])
    return prepare_mask(mask, 0.0, FEATHER * gap / size)


def keep_interior(mask: np.ndarray, landmarks: np.ndarray, mode: MouthInterior, widest_other: float) -> np.ndarray:
    """The face's paste mask with A's own mouth interior taken out of it, as far as ``interior_weight`` says."""
    weight = interior_weight(float(mouth_open(landmarks)), mode, widest_other)
    if weight <= 0:
        return mask
    return mask * (1 - weight * interior_mask(landmarks, mask.shape[0]))
