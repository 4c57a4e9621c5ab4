"""Skin-only face labels: the landmark mask with the hair over the forehead and temples left out.

The landmark mask (``mask.face_mask``) raises the brows onto the forehead to close the face's
outline there, so on a face with a fringe or hair at the temples it counts that hair as face. The
learned mask (``deepswap.train.segmenter``) is trained on labels; given this mask, it learns "hair
over the forehead is face", and convert pastes B's fringe over A's forehead. ``skin_mask`` takes
out of the mask, without hand labelling, what is not skin in the band the landmarks only guess:
each face's own skin colour is read from its cheeks and nose bridge (always skin, between
landmarks), and a pixel of the band counts as skin when its colour (a*b* in CIELAB, within
``CHROMA_DISTANCE`` of the skin's robust mean in Mahalanobis units), its lightness (not below
``DARKEST`` of the skin's) and its texture (local spread of lightness under ``TEXTURE``) all say
so. The inner face — the hull of the jaw line and brows, pulled in by ``INNER_MARGIN`` — and the
brows themselves are never tested: eyes, brows, lips and nostrils are not skin-coloured but are
face. What is left of the face is the part joined to the inner face.
"""

from __future__ import annotations

import cv2
import numpy as np

from .expression import eye_distance

OUTLINE = slice(0, 27)  # the jaw line and the brows of 68 landmarks
BROWS = (slice(17, 22), slice(22, 27))
CHEEKS = ((41, 2, 31, 48), (46, 14, 35, 54))  # each cheek's centre is the mean of these points
NOSE_BRIDGE = (28, 29)
CHEEK_RADIUS = 0.15  # eye-corner distances
BRIDGE_RADIUS = 0.06  # eye-corner distances
INNER_MARGIN = 0.12  # eye-corner distances the inner face is pulled in by (its edge is tested too)
BROW_MARGIN = 0.12  # eye-corner distances around each brow never tested
CHROMA_DISTANCE = 4.0  # Mahalanobis units from the skin's a*b*: further is not skin
CHROMA_FLOOR = 4.0  # levels of a* and b*: the least spread the skin's colour is given
DARKEST = 0.6  # of the skin's median lightness: darker is not skin (hair, not shading)
TEXTURE = 0.09  # local standard deviation of lightness over the skin's median: more is strands of hair
TEXTURE_WINDOW = 0.08  # eye-corner distances: the side of the window the texture is measured over
CLEAN = 0.03  # eye-corner distances: specks of "not skin" smaller than this are taken for skin


def _discs(shape: tuple[int, int], centres: list[np.ndarray], radius: float) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    for centre in centres:
        cv2.circle(canvas, tuple(round(v) for v in centre), max(1, round(radius)), 1, -1)
    return canvas.astype(bool)


def skin_reference(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """H×W bool: the pixels whose colour is the face's skin colour: a disc on each cheek and on the
    nose bridge, between landmarks where neither hair nor a feature lies."""
    unit = float(eye_distance(landmarks))
    cheeks = [landmarks[list(points)].mean(axis=0) for points in CHEEKS]
    return _discs(shape, cheeks, CHEEK_RADIUS * unit) | _discs(shape, [landmarks[k] for k in NOSE_BRIDGE],
                                                                BRIDGE_RADIUS * unit)


def inner_face(shape: tuple[int, int], landmarks: np.ndarray, pull: float, brow_margin: float) -> np.ndarray:
    """H×W bool: the hull of the jaw line and brows pulled in by ``pull``, and ``brow_margin`` around
    each brow (both in eye-corner distances) — the part of a face its landmarks outline for sure."""
    unit = float(eye_distance(landmarks))
    inner = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(inner, np.round(cv2.convexHull(landmarks[OUTLINE].astype(np.float32))).astype(np.int32), 1)
    if pull > 0:
        reach = max(1, round(pull * unit))
        inner = cv2.erode(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    for brow in BROWS:
        cv2.polylines(inner, [np.round(landmarks[brow]).astype(np.int32)], False, 1,
                      max(1, round(2 * brow_margin * unit)))
    return inner > 0


def tested_band(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """H×W bool: where a pixel of the face mask must look like skin to stay: everywhere but the
    ``inner_face`` (pulled in by ``INNER_MARGIN``, ``BROW_MARGIN`` around the brows) — the forehead
    above the brows, the temples, the edge along the jaw."""
    return ~inner_face(shape, landmarks, INNER_MARGIN, BROW_MARGIN)


def local_spread(values: np.ndarray, inside: np.ndarray, window: int) -> np.ndarray:
    """The standard deviation of ``values`` (H×W float32) over a ``window``-px square around each
    pixel, counting only the pixels ``inside`` (H×W bool): the face's edge is not texture."""
    weights = inside.astype(np.float32)
    count = np.maximum(cv2.blur(weights, (window, window)), 1e-6)
    mean = cv2.blur(values * weights, (window, window)) / count
    return np.sqrt(np.maximum(cv2.blur(values * values * weights, (window, window)) / count - mean * mean, 0))


def not_skin(image: np.ndarray, landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H×W bool: the pixels of an RGB face image that do not look like the face's own skin (colour,
    lightness or texture within ``mask``; see the module docstring), specks removed."""
    unit = float(eye_distance(landmarks))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lightness, chroma = lab[..., 0], lab[..., 1:]
    reference = skin_reference(image.shape[:2], landmarks)
    samples = chroma[reference].reshape(-1, 2)
    centre = np.median(samples, axis=0)
    spread = 1.4826 * np.median(np.abs(samples - centre), axis=0) + 1e-3
    typical = samples[(np.abs(samples - centre) <= 2.5 * spread).all(axis=1)]
    typical = typical if len(typical) >= 8 else samples
    covariance = np.cov(typical.T) + np.eye(2) * CHROMA_FLOOR ** 2  # the forehead is often less red than the cheeks
    (a, b), (_, c) = np.linalg.inv(covariance)
    da, db = (chroma - typical.mean(axis=0)).transpose(2, 0, 1)
    distance = a * da * da + 2 * b * da * db + c * db * db  # the Mahalanobis distance, squared
    skin_lightness = float(np.median(lightness[reference]))
    window = max(3, round(TEXTURE_WINDOW * unit) | 1)
    texture = local_spread(lightness, mask > 0, window)
    other = ((distance > CHROMA_DISTANCE ** 2) | (lightness < DARKEST * skin_lightness)
             | (texture > TEXTURE * skin_lightness)).astype(np.uint8)
    speck = max(1, round(CLEAN * unit))
    return cv2.morphologyEx(other, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * speck + 1,) * 2)) > 0


def skin_mask(image: np.ndarray, landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face ``mask`` (H×W uint8) of the RGB ``image`` with its landmarks (68×2, the image's
    coordinates) restricted to face skin: what of ``tested_band`` does not look like skin is taken
    out, and so is whatever is then cut off from the inner face (an island of skin-coloured pixels
    beyond a fringe). The eyes, brows, lips and nostrils stay."""
    landmarks = np.asarray(landmarks, np.float32)
    shape = mask.shape[:2]
    keep = ~(tested_band(shape, landmarks) & not_skin(image, landmarks, mask)) & (mask > 0)
    count, parts = cv2.connectedComponents(keep.astype(np.uint8), connectivity=4)
    nose = np.clip(np.round(landmarks[NOSE_BRIDGE[1]]).astype(int), 0, np.subtract(shape[::-1], 1))
    joined = parts == parts[nose[1], nose[0]] if count > 1 and keep[nose[1], nose[0]] else keep
    return np.where(joined, mask, 0).astype(np.uint8)
