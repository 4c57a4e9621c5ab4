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

A small model also smears the lash line and the socket's shade down over the lower lid, so a shut
eye it draws shows a thick dark band where a filmed one shows a thin lash line over skin. Under each
eye closed to nearly shut (``lower_lid_skin``) the band from just under the lid line down to
``BELOW_LID`` eye widths is brought towards the skin further down (``LID_SKIN`` of the way, only
where it is darker), fading out towards the eye's corners, on faces drawn coarser than the crop
(``COARSE``).
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
SHUT = 0.25  # of B's usual openness: lid gaps under this count as shut (the lower lid's skin fully shown at 0)
BELOW_LID = (0.04, 0.2)  # eye widths under the closed lid line: where the lower lid's skin is shown (lashes above)
LID_SKIN = 0.7  # how far the band under a shut lid is brought towards the skin below it ...
COARSE = (1.5, 3.0)  # ... on a face drawn this coarse (crop pixels per pixel the model sees): none at the first, all from
# the second (a 64-px model at 256-px crops: 3.2). A face as sharp as the crop keeps its own lower lid.


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
               predictor: LandmarkPredictor, pixel: float = 1.0) -> np.ndarray:
        """The drawn face (an RGB crop) with each eye closed as far as the replaced face's (its 68
        landmarks) says, and on a coarse face (``pixel``: crop pixels per pixel the model sees; see
        ``COARSE``) the skin under a nearly shut lid shown (``lower_lid_skin``); ``box`` is the face's
        detector box in the crop (x, y, w, h). Returned as it is when the replaced face's eyes are
        open or the drawn lids already match."""
        if np.all(eye_ratios(replaced_landmarks) >= CLOSING * np.asarray(self.usual_replaced)):
            return drawn
        targets = self.target_ratios(replaced_landmarks)
        landmarks = drawn_landmarks(drawn, box, predictor)
        closings = eye_ratios(landmarks) - targets
        eyes = [eye for eye in range(2) if closings[eye] > MIN_CLOSING * self.usual_other[eye]]
        strength = LID_SKIN * float(np.interp(pixel, COARSE, (0.0, 1.0)))
        for eye in eyes:  # each eye's windows lie clear of the other's
            points, target = landmarks[list(EYES[eye])], float(targets[eye])
            drawn = remap_window(drawn, warp_window(points, drawn.shape[:2]),
                                 lambda xs, ys, points=points, target=target: lid_shift(points, target, xs, ys))
            drawn = lower_lid_skin(drawn, points, target, self.usual_other[eye], strength)
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


def lid_moves(upper: float, lower: float, target: float) -> tuple[float, float]:
    """How far (eye widths, at the eye's middle) the upper lid moves down and the lower lid up to
    bring lids at ``upper`` and ``lower`` (``eye_frame``'s) to a gap of ``target``: ``UPPER_SHARE``
    of the closing and the rest."""
    closing = max(lower - upper - target, 0.0)
    return UPPER_SHARE * closing, (1 - UPPER_SHARE) * closing


def lid_shift(eye: np.ndarray, target: float, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel (``xs``, ``ys``) takes its colour from, as an offset (x, y), so that
    the eye (its six landmarks in ``EYES`` order) ends with a lid gap of ``target`` eye widths."""
    feature, upper, lower = eye_frame(eye)
    down, up = lid_moves(upper, lower, target)
    u, v = feature.coordinates(xs, ys)
    profile = np.clip(1 - (2 * u) ** 2, 0, None) / (1 - (2 * LANDMARK_COLUMN) ** 2)  # the lids' curve along the eye
    sources = np.stack([upper * profile - REACH, upper * profile, lower * profile, lower * profile + REACH])
    targets = sources + np.stack([np.zeros_like(profile), down * profile, -up * profile, np.zeros_like(profile)])
    return feature.shift(v, sources, targets)


def lower_lid_skin(drawn: np.ndarray, eye: np.ndarray, target: float, usual: float, strength: float) -> np.ndarray:
    """The drawn face (an RGB crop) with the band under an eye's closed lid line (the eye's six
    landmarks before ``lid_shift`` closed it to ``target`` eye widths; ``usual``: the drawn person's
    usual openness) brought towards the skin below it: ``BELOW_LID`` eye widths under the lid line,
    ``strength`` of the way at the eye's middle, less towards its corners, only where darker than
    that skin (the median colour 0.1-0.3 eye widths further down), and only as far as the eye is
    shut (fully at a target of 0, not at all from ``SHUT`` of ``usual`` up)."""
    shut = float(np.clip(1 - target / (SHUT * usual), 0, 1))
    if shut <= 0 or strength <= 0:
        return drawn
    feature, upper, lower = eye_frame(eye)
    line = lower - lid_moves(upper, lower, target)[1]  # where the lower lid ends
    top, bottom = line + BELOW_LID[0], line + BELOW_LID[1]
    (x0, y0), (x1, y1) = feature.window(0.5, (top, bottom + 0.3), drawn.shape[:2])
    u, v = feature.coordinates(*np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)))
    part = drawn[y0:y1, x0:x1].astype(np.float32)
    below = (np.abs(u) < 0.35) & (v > bottom + 0.1) & (v < bottom + 0.3)
    if not below.any():
        return drawn
    skin = np.median(part[below], axis=0)
    fade_in = np.clip((v - top) / 0.03, 0, 1)  # the band's upper edge rises over 0.03 eye widths
    fade_out = np.clip((bottom - v) / (BELOW_LID[1] / 2), 0, 1)
    along = np.clip(1 - (2 * u) ** 2, 0, None)  # most at the eye's middle, none at its corners
    weight = (strength * shut * along * fade_in * fade_out * (part.mean(axis=2) < skin.mean())).astype(np.float32)
    out = drawn.copy()
    out[y0:y1, x0:x1] = np.clip(part + weight[..., None] * (skin - part) + 0.5, 0, 255).astype(np.uint8)
    return out


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
