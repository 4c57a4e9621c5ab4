"""The new face's eyelids follow the replaced person's (``ReplaceSettings.eyelids``).

A small model draws a blink only part way: where A's eyes are shut, B's decoder brings the lids
about half way down. Per frame and eye, A's openness over A's usual openness (the median of A's
extracted faces) read through ``READING_KNOTS`` (the 68-point predictor reads a shut eye well above
0 and a narrowed, open one lower than its gap) gives the lid gap the new face should have: B's usual
openness times how open A's eye is. Where A's eyes close past ``CLOSING``, the 68-landmark predictor
finds the drawn face's lids, and each eye whose lids stand further apart than that is closed by a
local warp: across the eye (at right angles to the line through its corners) a monotone
piecewise-linear map moves the upper lid ``UPPER_SHARE`` of the way and the lower lid the rest,
fading to no change ``REACH`` eye widths above and below the lids and at the eye's corners (the
shift follows the lids' curve along the eye), so nothing folds and the brows, nose and cheeks stay
put (``convert.warp``). One ``cv2.remap`` per eye, of the part around it only (``warp_window``). The
iris and lashes are pressed into the lid line, as in a shut eye; open eyes are left as drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..faces.expression import EYES, eye_ratios
from ..faces.landmarks import LandmarkPredictor
from .warp import Feature, drawn_landmarks, remap_window

UPPER_SHARE = 0.75  # of the closing: the upper lid's part (the lower lid moves the rest)
REACH = 0.5  # eye widths above the upper lid and below the lower lid where the warp has faded out
LANDMARK_COLUMN = 1 / 6  # eye widths from the eye's centre: where the predictor's lid points sit
# How open an eye is (0 shut, 1 as usual) at the predictor's readings of it, as shares of the person's
# usual openness: piecewise linear through these knots. Fitted to an eyelid-refining reader (MediaPipe
# Face Mesh, benchmarks/eyelids.py --second-judge) on GRID footage of s1: the 68-point predictor reads
# shut eyes at 0.5-0.65 of usual (lid and lashes), and narrowed, open ones (looking down) at 0.7-0.85.
READING_KNOTS = ((0.62, 0.75, 0.9), (0.0, 0.7, 1.0))
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
        (68×2, any coordinates): the other person's usual openness times how open the replaced
        person's eye is, read from its share of their usual openness through ``READING_KNOTS`` (0
        at and under a shut eye's reading, 1 from the last knot on: an eye is only ever closed)."""
        share = np.nan_to_num(eye_ratios(replaced_landmarks) / np.asarray(self.usual_replaced), nan=1.0)
        return np.asarray(self.usual_other) * np.interp(share, *READING_KNOTS)

    def follow(self, drawn: np.ndarray, replaced_landmarks: np.ndarray, box: np.ndarray,
               predictor: LandmarkPredictor) -> np.ndarray:
        """The drawn face (an RGB crop) with each eye closed as far as the replaced face's (its 68
        landmarks) says; ``box`` is the face's detector box in the crop (x, y, w, h). Returned as
        it is when the replaced face's eyes are open or the drawn lids already match."""
        if np.all(eye_ratios(replaced_landmarks) >= CLOSING * np.asarray(self.usual_replaced)):
            return drawn
        targets = self.target_ratios(replaced_landmarks)
        landmarks = drawn_landmarks(drawn, box, predictor)
        closings = eye_ratios(landmarks) - targets
        eyes = [(EYES[eye], targets[eye]) for eye in range(2) if closings[eye] > MIN_CLOSING * self.usual_other[eye]]
        if not eyes:
            return drawn
        for indices, target in eyes:
            eye = landmarks[list(indices)]
            drawn = remap_window(drawn, warp_window(eye, drawn.shape[:2]),
                                 lambda xs, ys, eye=eye, target=float(target): lid_shift(eye, target, xs, ys))
        return drawn


def eye_frame(eye: np.ndarray) -> tuple[Feature, float, float]:
    """An eye's ``Feature`` (six landmarks in ``EYES`` order), turned so that ``v`` runs down the
    face even for an eye upside down in the picture, and its upper and lower lids' ``v``."""
    feature = Feature.between(eye[0], eye[3])
    lids = feature.across_of(eye)
    upper, lower = lids[1:3].mean(), lids[4:6].mean()
    if upper > lower:
        return Feature.between(eye[3], eye[0]), -upper, -lower
    return feature, upper, lower


def warp_window(eye: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The corners (x0, y0), (x1, y1) of the part of an image (``shape``: height, width) that
    ``lid_shift`` can move for this eye (its six landmarks)."""
    feature, upper, lower = eye_frame(eye)
    reach = max(-upper, lower) / (1 - (2 * LANDMARK_COLUMN) ** 2) + REACH
    return feature.window(0.5, (-reach, reach), shape)


def lid_shift(eye: np.ndarray, target: float, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel (``xs``, ``ys``) takes its colour from, as an offset (x, y), so that
    the eye (its six landmarks in ``EYES`` order) ends with a lid gap of ``target`` eye widths."""
    feature, upper, lower = eye_frame(eye)
    closing = max(lower - upper - target, 0.0)
    u, v = feature.coordinates(xs, ys)
    profile = np.clip(1 - (2 * u) ** 2, 0, None) / (1 - (2 * LANDMARK_COLUMN) ** 2)  # the lids' curve along the eye
    sources = np.stack([upper * profile - REACH, upper * profile, lower * profile, lower * profile + REACH])
    targets = sources + np.stack([np.zeros_like(profile), UPPER_SHARE * closing * profile,
                                  -(1 - UPPER_SHARE) * closing * profile, np.zeros_like(profile)])
    return feature.shift(v, sources, targets)


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
