"""The new face's eyelids follow the replaced person's (``ReplaceSettings.eyelids``).

A small model draws a blink only part way: where A's eyes are shut, B's decoder brings the lids
about half way down. Per frame and eye, A's openness over A's usual openness (the median of A's
extracted faces; the predictor reads a shut eye as ``CLOSED_READING`` of it, so the share is
counted from there) gives the lid gap the new face should have: B's usual openness times that
share. Where A's eyes close past ``CLOSING``, the 68-landmark predictor finds the drawn face's lids,
and each eye whose lids stand further apart than that is closed by a local warp: across the eye (at
right angles to the line through its corners) a monotone piecewise-linear map moves the upper lid
``UPPER_SHARE`` of the way and the lower lid the rest, fading to no change ``REACH`` eye widths
above and below the lids and at the eye's corners (the shift follows the lids' curve along the
eye), so nothing folds and the brows, nose and cheeks stay put. One ``cv2.remap`` per eye, of a
square around it only (``warp_window``). The iris and lashes are pressed into the lid line, as in a
shut eye; open eyes are left as drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..faces.detect import Detection
from ..faces.expression import EYES, eye_ratios
from ..faces.landmarks import LandmarkPredictor

UPPER_SHARE = 0.75  # of the closing: the upper lid's part (the lower lid moves the rest)
REACH = 0.5  # eye widths above the upper lid and below the lower lid where the warp has faded out
LANDMARK_COLUMN = 1 / 6  # eye widths from the eye's centre: where the predictor's lid points sit
CLOSED_READING = 0.45  # of a person's usual openness: what the predictor reads on a shut eye (lid and lashes)
CLOSING = 0.85  # of A's usual openness: only eyes closed further than this are looked at
MIN_CLOSING = 0.1  # of B's usual openness: a drawn lid gap this close to its target is left as drawn


@dataclass(frozen=True)
class EyelidFollower:
    """Closes the drawn eyes as far as the replaced person's are closed; per eye in the order of
    ``faces.expression.EYES``, the usual openness (``eye_ratios``' median) of the replaced person
    and of the other person, whose face is drawn."""

    usual_replaced: tuple[float, float]
    usual_other: tuple[float, float]

    def target_ratios(self, replaced_landmarks: np.ndarray) -> np.ndarray:
        """Per eye, the drawn face's lid gap (over eye width) that matches the replaced face's
        (68×2, any coordinates): the other person's usual openness times the replaced person's
        share of their own, counted from ``CLOSED_READING`` (a shut eye: no gap) to 1 (never more
        than usual: an eye is only ever closed)."""
        share = np.nan_to_num(eye_ratios(replaced_landmarks) / np.asarray(self.usual_replaced), nan=1.0)
        return np.asarray(self.usual_other) * np.clip((share - CLOSED_READING) / (1 - CLOSED_READING), 0.0, 1.0)

    def follow(self, drawn: np.ndarray, replaced_landmarks: np.ndarray, box: np.ndarray,
               predictor: LandmarkPredictor) -> np.ndarray:
        """The drawn face (an RGB crop) with each eye closed as far as the replaced face's (its 68
        landmarks) says; ``box`` is the face's detector box in the crop (x, y, w, h). Returned as
        it is when the replaced face's eyes are open or the drawn lids already match."""
        if np.all(eye_ratios(replaced_landmarks) >= CLOSING * np.asarray(self.usual_replaced)):
            return drawn
        targets = self.target_ratios(replaced_landmarks)
        grey = cv2.cvtColor(drawn, cv2.COLOR_RGB2GRAY)
        drawn_landmarks = predictor.predict(grey, Detection(np.asarray(box, np.float64), np.zeros((5, 2)), 1.0))
        closings = eye_ratios(drawn_landmarks) - targets
        eyes = [(EYES[eye], targets[eye]) for eye in range(2) if closings[eye] > MIN_CLOSING * self.usual_other[eye]]
        if not eyes:
            return drawn
        warped = drawn.copy()
        for indices, target in eyes:
            eye = drawn_landmarks[list(indices)]
            (x0, y0), (x1, y1) = warp_window(eye, drawn.shape[:2])
            xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
            shift_x, shift_y = lid_shift(eye, float(target), xs, ys)
            warped[y0:y1, x0:x1] = cv2.remap(drawn, xs + shift_x, ys + shift_y, cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE)
        return warped


def warp_window(eye: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The corners (x0, y0), (x1, y1) of the part of an image (``shape``: height, width) that
    ``lid_shift`` can move for this eye (its six landmarks): a square around the eye's centre wide
    enough for its corners and ``REACH`` beyond its lids at any roll."""
    centre = (eye[0] + eye[3]) / 2
    width = float(np.linalg.norm(eye[3] - eye[0]))
    lids = float(np.abs(eye - centre).max())
    half = 0.5 * width + REACH * width + 1.2 * lids + 2
    low = np.clip(np.floor(centre - half), 0, None).astype(int)
    high = np.minimum(np.ceil(centre + half).astype(int), (shape[1], shape[0]))
    return (int(low[0]), int(low[1])), (int(high[0]), int(high[1]))


def lid_shift(eye: np.ndarray, target: float, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel (``xs``, ``ys``) takes its colour from, as an offset (x, y), so that
    the eye (its six landmarks in ``EYES`` order) ends with a lid gap of ``target`` eye widths."""
    corner, other_corner = eye[0].astype(np.float64), eye[3].astype(np.float64)
    width = float(np.linalg.norm(other_corner - corner))
    along = (other_corner - corner) / width
    across = np.array([-along[1], along[0]])  # down the face for an eye upright in the picture
    centre = (corner + other_corner) / 2
    lids = (eye - centre) @ across / width
    upper, lower = lids[1:3].mean(), lids[4:6].mean()
    if upper > lower:  # an eye upside down in the picture: "across" points up the face
        upper, lower, across = -upper, -lower, -across
    closing = max(lower - upper - target, 0.0)
    u = ((xs - centre[0]) * along[0] + (ys - centre[1]) * along[1]) / width
    v = ((xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]) / width
    profile = np.clip(1 - (2 * u) ** 2, 0, None) / (1 - (2 * LANDMARK_COLUMN) ** 2)  # the lids' curve along the eye
    sources = np.stack([upper * profile - REACH, upper * profile, lower * profile, lower * profile + REACH])
    targets = sources + np.stack([np.zeros_like(profile), UPPER_SHARE * closing * profile,
                                  -(1 - UPPER_SHARE) * closing * profile, np.zeros_like(profile)])
    shift = (inverse_piecewise(v, sources, targets) - v) * width
    return (shift * across[0]).astype(np.float32), (shift * across[1]).astype(np.float32)


def inverse_piecewise(values: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per element, the source position the monotone piecewise-linear map ``sources[k] → targets[k]``
    (K×… knots, each row increasing, the first and last unchanged) sends to ``values``; values
    outside the knots map to themselves."""
    result = values.astype(np.float64)
    for k in range(len(sources) - 1):
        span = targets[k + 1] - targets[k]
        inside = (values >= targets[k]) & (values < targets[k + 1]) & (span > 0)
        fraction = (values - targets[k]) / np.where(span > 0, span, 1.0)
        result = np.where(inside, sources[k] + fraction * (sources[k + 1] - sources[k]), result)
    return result


def usual_openness(landmarks: np.ndarray) -> tuple[float, float]:
    """Per eye, the median openness (``eye_ratios``) of a person's faces (N×68×2); NaN without faces."""
    ratios = eye_ratios(np.asarray(landmarks, np.float64).reshape(-1, 68, 2))
    if not np.isfinite(ratios).any():
        return (float("nan"), float("nan"))
    median = np.nanmedian(ratios, axis=0)
    return (float(median[0]), float(median[1]))


def crop_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A detector box (x, y, w, h, frame pixels) in the crop the frame→crop ``matrix`` (2×3, a
    similarity) makes: the same centre, scaled."""
    x, y, w, h = np.asarray(box, np.float64)
    centre = matrix[:, :2] @ np.array([x + w / 2, y + h / 2]) + matrix[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return np.array([centre[0] - w * scale / 2, centre[1] - h * scale / 2, w * scale, h * scale])
