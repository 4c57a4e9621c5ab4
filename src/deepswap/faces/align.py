"""Step 4: align. A least-squares similarity transform (Umeyama 1991) maps the face's landmarks
onto a canonical mean face; the crop around it keeps forehead, jaw and a margin.

``MEAN_FACE`` is the symmetrised generalised-Procrustes mean of dlib landmarks on 102 frontal
faces (GRID speakers and two portraits), in units of the outer-eye-corner distance with the eye
corners at (±0.5, 0). The fit uses the rigid part of the face (brows, nose, eyes: points 17–47),
so a speaking mouth or jaw does not shake the crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from .mask import face_hull

MEAN_FACE = np.array([
    [-0.804, 0.047], [-0.786, 0.271], [-0.759, 0.494], [-0.727, 0.717], [-0.669, 0.928], [-0.561, 1.118],
    [-0.405, 1.273], [-0.219, 1.385], [0.0, 1.423], [0.219, 1.385], [0.405, 1.273], [0.561, 1.118],
    [0.669, 0.928], [0.727, 0.717], [0.759, 0.494], [0.786, 0.271], [0.804, 0.047],  # jaw 0–16
    [-0.665, -0.157], [-0.572, -0.266], [-0.427, -0.298], [-0.276, -0.275], [-0.132, -0.222],
    [0.132, -0.222], [0.276, -0.275], [0.427, -0.298], [0.572, -0.266], [0.665, -0.157],  # brows 17–26
    [0.0, -0.046], [0.0, 0.099], [0.0, 0.24], [0.0, 0.391],
    [-0.168, 0.532], [-0.086, 0.556], [0.0, 0.575], [0.086, 0.556], [0.168, 0.532],  # nose 27–35
    [-0.5, 0.0], [-0.412, -0.047], [-0.306, -0.046], [-0.208, 0.016], [-0.309, 0.04], [-0.417, 0.042],
    [0.208, 0.016], [0.306, -0.046], [0.412, -0.047], [0.5, 0.0], [0.417, 0.042], [0.309, 0.04],  # eyes 36–47
    [-0.298, 0.876], [-0.194, 0.811], [-0.082, 0.773], [0.0, 0.796], [0.082, 0.773], [0.194, 0.811],
    [0.298, 0.876], [0.197, 0.974], [0.089, 1.018], [0.0, 1.027], [-0.089, 1.018], [-0.197, 0.974],
    [-0.246, 0.877], [-0.083, 0.845], [0.0, 0.852], [0.083, 0.845], [0.246, 0.877], [0.083, 0.909],
    [0.0, 0.918], [-0.083, 0.909],  # mouth 48–67
], dtype=np.float64)
FIT_POINTS = slice(17, 48)
INNER_FACE = slice(17, 68)  # brows, nose, eyes and mouth: the face without the jaw line
# The crop is a square of CROP_SIDE eye-corner distances centred at CROP_CENTRE of the mean face:
# from 1.3 above the eyes (the hairline is at about 1.15) to 1.7 below (the chin is at 1.42).
CROP_SIDE = 3.0
CROP_CENTRE = np.array([0.0, 0.2])


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2×3 similarity transform (rotation, uniform scale, shift) that best maps ``source`` onto
    ``target`` in the least-squares sense (no reflection)."""
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (source_centred ** 2).sum() / len(source)
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def canonical_landmarks(size: int) -> np.ndarray:
    """Where the mean face's 68 points fall in a ``size``×``size`` aligned crop."""
    return (MEAN_FACE - CROP_CENTRE) / CROP_SIDE * size + size / 2


def face_region(face_size: int, coverage: float) -> tuple[int, int, int]:
    """(x, y, side) of the square that the models see in an aligned crop: ``coverage`` of the side,
    centred on the mean face's mask outline (brows raised onto the forehead, down to the chin),
    moved inside the crop if it would leave it."""
    outline = face_hull(canonical_landmarks(face_size)).reshape(-1, 2)
    centre = (outline.min(axis=0) + outline.max(axis=0)) / 2
    side = int(round(face_size * coverage))
    x, y = (int(round(np.clip(c - side / 2, 0, face_size - side))) for c in centre)
    return x, y, side


def inner_face_box(landmarks: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """[x0, y0, x1, y1] (integers) of the box spanned by the brows, eyes, nose and mouth of 68-point
    landmarks, ``margin`` pixels wider on every side: the part of the face whose detail a swap must
    keep (no background, no jaw line)."""
    points = np.asarray(landmarks, np.float64)[INNER_FACE]
    return np.concatenate([np.floor(points.min(axis=0) - margin), np.ceil(points.max(axis=0) + margin)]).astype(int)


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 frame→crop transform for a face with 68 ``landmarks`` (frame coordinates)."""
    return umeyama(np.asarray(landmarks)[FIT_POINTS], canonical_landmarks(size)[FIT_POINTS])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine ``matrix`` to N×2 points."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned ``size``×``size`` crop out of a frame (edges replicated where it leaves the frame).
    Bicubic: a bilinear warp blurs away the finest detail of the face (a third of its variance of
    the Laplacian, measured on GRID footage through convert's crop-and-paste round trip)."""
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)


def invert(matrix: np.ndarray) -> np.ndarray:
    """The crop→frame transform of a frame→crop ``matrix``."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def unwarp_face(crop: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Warp a crop (or a crop-sized mask) back into frame coordinates (zeros outside it)."""
    height, width = frame_shape[:2]
    return cv2.warpAffine(crop, np.asarray(matrix, np.float64), (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
