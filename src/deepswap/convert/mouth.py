"""The new face's mouth opens as far as A's (``ReplaceSettings.lips``), with A's own mouth
interior inside its lips (``ReplaceSettings.mouth_interior``).

A model draws only the openings the other person's footage shows: where A's mouth opens wider than
any of B's faces, B's decoder closes it part way and smears teeth and tongue.

``follow_lips``: where A's inner lips stand further apart than the drawn face's (the 68-landmark
predictor finds its lips), a local warp across the mouth (at right angles to the line through its
corners, ``convert.warp``) opens the drawn mouth to A's gap: the upper lip moves ``UPPER_SHARE``
of the way up, the lower lip and the chin the rest down, as a jaw drops, each lip keeping its
thickness; the warp fades out at the nose and ``BELOW_CHIN`` mouth widths below the chin, and
along the mouth with the lips' curve (the corners stay) and with the jaw's wider one for the chin.
The new lips then lie on A's inner lips, where A's interior is shown.

``keep_interior``: with ``wide`` the pixels inside A's inner lips are left as filmed from the
point where A's mouth opens past ``RAMP[0]`` of B's widest opening, fully past ``RAMP[1]`` of it;
with ``always`` at every opening. The lips and everything around them stay the model's, so the
identity is still B's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..faces.expression import lip_gap, mouth_open
from ..faces.landmarks import LandmarkPredictor
from .blend import prepare_mask
from .options import MouthInterior
from .warp import Feature, drawn_landmarks, remap_window

INNER_LIPS = slice(60, 68)
RAMP = (0.8, 1.0)  # of the other person's widest opening: where A's own interior starts to show, and shows fully
FEATHER = 0.25  # of the lip gap: the soft edge of the interior along the inner-lip line
UPPER_SHARE = 0.3  # of the opening: the upper lip's part (the lower lip and the chin move the rest)
PHILTRUM_SHARE = 0.6  # of the space between the nose and the upper lip: the most the upper lip moves up
MIN_OPENING = 0.03  # mouth widths: a drawn gap this close to A's is left as drawn
BELOW_CHIN = 0.5  # mouth widths below the moved chin where the warp has faded out
JAW_REACH = 1.0  # mouth widths along the mouth from its centre where the chin's move has faded out
LIP_COLUMN = 0.2  # mouth widths from the mouth's centre: where the predictor's outer inner-lip points sit
UPPER_OUTER, UPPER_INNER, LOWER_INNER, LOWER_OUTER = [50, 51, 52], [61, 62, 63], [65, 66, 67], [56, 57, 58]
MOUTH_CORNERS, NOSE_BASE, CHIN = (48, 54), 33, 8


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
    return prepare_mask(mask, 0.0, FEATHER * float(lip_gap(points)) / size)


def keep_interior(mask: np.ndarray, landmarks: np.ndarray, mode: MouthInterior, widest_other: float) -> np.ndarray:
    """The face's paste mask with A's own mouth interior taken out of it, as far as ``interior_weight`` says."""
    weight = interior_weight(float(mouth_open(landmarks)), mode, widest_other)
    if weight <= 0:
        return mask
    return mask * (1 - weight * interior_mask(landmarks, mask.shape[0]))


def follow_lips(drawn: np.ndarray, replaced_landmarks: np.ndarray, box: np.ndarray,
                predictor: LandmarkPredictor) -> np.ndarray:
    """The drawn face (an RGB crop) with its mouth opened as far as the replaced face's (its 68
    landmarks in the crop's pixels); ``box`` is the face's detector box in the crop (x, y, w, h).
    Returned as it is where A's mouth is closed or the drawn one opens as wide already."""
    replaced_landmarks = np.asarray(replaced_landmarks, np.float64)
    wanted = float(lip_gap(replaced_landmarks))
    if wanted < MIN_OPENING * Feature.between(*replaced_landmarks[list(MOUTH_CORNERS)]).width:
        return drawn
    landmarks = drawn_landmarks(drawn, box, predictor)
    opening = (wanted - float(lip_gap(landmarks))) / Feature.between(*landmarks[list(MOUTH_CORNERS)]).width
    if opening < MIN_OPENING:
        return drawn
    return remap_window(drawn, lip_window(landmarks, opening, drawn.shape[:2]),
                        lambda xs, ys: lip_shift(landmarks, opening, xs, ys))


def mouth_frame(landmarks: np.ndarray, opening: float) -> tuple[Feature, dict[str, float], float, float]:
    """The mouth's ``Feature`` (of 68 landmarks, turned so that ``v`` runs down the face), the nose
    base's, lips' and chin's ``v`` (each lip at its landmarks' columns), and how far the upper lip
    moves up and the lower lip down to open it by ``opening`` mouth widths."""
    points = np.asarray(landmarks, np.float64)
    mouth = Feature.between(*points[list(MOUTH_CORNERS)])
    if mouth.across_of(points[UPPER_OUTER]).mean() > mouth.across_of(points[LOWER_OUTER]).mean():
        mouth = Feature.between(*points[list(MOUTH_CORNERS[::-1])])  # upside down in the picture
    levels = {name: float(mouth.across_of(points[indices]).mean()) for name, indices in
              (("nose", [NOSE_BASE]), ("upper_outer", UPPER_OUTER), ("upper_inner", UPPER_INNER),
               ("lower_inner", LOWER_INNER), ("lower_outer", LOWER_OUTER), ("chin", [CHIN]))}
    levels["lower_inner"] = max(levels["lower_inner"], levels["upper_inner"])
    up = min(UPPER_SHARE * opening, PHILTRUM_SHARE * max(levels["upper_outer"] - levels["nose"], 0.0))
    return mouth, levels, up, opening - up


def lip_window(landmarks: np.ndarray, opening: float, shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The corners (x0, y0), (x1, y1) of the part of an image (``shape``: height, width) that
    ``lip_shift`` can move."""
    mouth, levels, _, down = mouth_frame(landmarks, opening)
    return mouth.window(JAW_REACH, (levels["nose"], levels["chin"] + down + BELOW_CHIN), shape)


def lip_shift(landmarks: np.ndarray, opening: float, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel (``xs``, ``ys``) takes its colour from, as an offset (x, y), so that
    the mouth of a face (its 68 landmarks) opens by ``opening`` mouth widths (at the lips' landmarks)."""
    mouth, levels, up, down = mouth_frame(landmarks, opening)
    u, v = mouth.coordinates(xs, ys)
    # the lips' curve along the mouth, 1 on average at their landmarks' columns; the chin's, wider
    lips = np.clip(1 - (2 * u) ** 2, 0, None) / (1 - 2 * (2 * LIP_COLUMN) ** 2 / 3)
    jaw = np.clip(1 - (u / JAW_REACH) ** 2, 0, None)
    flat = np.ones_like(u)
    sources = np.stack([levels["nose"] * flat, levels["upper_outer"] * lips, levels["upper_inner"] * lips,
                        levels["lower_inner"] * lips, levels["lower_outer"] * lips, levels["chin"] * flat,
                        (levels["chin"] + down + BELOW_CHIN) * flat])
    moves = np.stack([0 * flat, -up * lips, -up * lips, down * lips, down * lips, down * jaw, 0 * flat])
    return mouth.shift(v, np.maximum.accumulate(sources), np.maximum.accumulate(sources + moves))
