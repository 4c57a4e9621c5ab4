"""A face's head pose and expression from its 68 landmarks alone (no image): what the coverage check
compares between A's and B's faces, and what ``evaluate`` compares between input and output.

Every function takes landmarks shaped …×68×2 (any leading shape; NaN faces give NaN) in frame or
crop pixels; the ratios do not depend on the face's size, position or in-plane rotation.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

INNER_LIPS = ((61, 67), (62, 66), (63, 65))
NOSE_BRIDGE, CHIN = 27, 8
EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # each: outer/inner corner, two upper, two lower points
EYE_CORNERS = (36, 45)
BROWS = slice(17, 27)
# A generic head in eye-corner distances (x right, y down as in the picture, z towards the camera),
# for the pose fit: jaw ends, chin, nose bridge and tip, outer eye corners, mouth corners.
POSE_POINTS = (0, 16, 8, 27, 30, 36, 45, 48, 54)
GENERIC_HEAD = np.array([
    [-0.80, 0.05, -0.75], [0.80, 0.05, -0.75], [0.0, 1.42, 0.05], [0.0, -0.05, 0.15], [0.0, 0.39, 0.45],
    [-0.50, 0.0, 0.0], [0.50, 0.0, 0.0], [-0.30, 0.88, 0.10], [0.30, 0.88, 0.10]])
FOCAL = 12.0  # eye-corner distances: a long lens, so the fit is close to an orthographic one


def _points(landmarks: np.ndarray) -> np.ndarray:
    return np.asarray(landmarks, np.float64)


def eye_distance(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (the unit of face size here)."""
    points = _points(landmarks)
    return np.linalg.norm(points[..., EYE_CORNERS[1], :] - points[..., EYE_CORNERS[0], :], axis=-1)


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """The inner lips' gap in the landmarks' own units (pixels): the mean over ``INNER_LIPS``."""
    points = _points(landmarks)
    return np.mean([np.linalg.norm(points[..., top, :] - points[..., bottom, :], axis=-1)
                    for top, bottom in INNER_LIPS], axis=0)


def mouth_open(landmarks: np.ndarray) -> np.ndarray:
    """Mouth-open ratio: the inner-lip gap over the face height (nose bridge to chin); 0 when
    closed, about 0.15 wide open."""
    points = _points(landmarks)
    return lip_gap(points) / np.linalg.norm(points[..., NOSE_BRIDGE, :] - points[..., CHIN, :], axis=-1)


def eye_ratios(landmarks: np.ndarray) -> np.ndarray:
    """Each eye's aspect ratio (eyelid gap over eye width), …×2 in the order of ``EYES``: about 0.3
    open, under 0.15 closed."""
    points = _points(landmarks)
    ratios = []
    for outer, upper1, upper2, inner, lower2, lower1 in EYES:
        gap = (np.linalg.norm(points[..., upper1, :] - points[..., lower1, :], axis=-1)
               + np.linalg.norm(points[..., upper2, :] - points[..., lower2, :], axis=-1)) / 2
        ratios.append(gap / np.linalg.norm(points[..., outer, :] - points[..., inner, :], axis=-1))
    return np.stack(ratios, axis=-1)


def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """Eye aspect ratio (eyelid gap over eye width), the mean of both eyes (``eye_ratios``): about
    0.3 open, under 0.15 closed; differs between people, so compare it with the person's own usual value."""
    return eye_ratios(landmarks).mean(axis=-1)


def brow_height(landmarks: np.ndarray) -> np.ndarray:
    """How far the brows sit above the eyes, across the line through the eye corners, in eye-corner
    distances (about 0.25; raised brows add ~0.05–0.1)."""
    points = _points(landmarks)
    left, right = points[..., EYE_CORNERS[0], :], points[..., EYE_CORNERS[1], :]
    across = right - left
    width = np.linalg.norm(across, axis=-1)
    normal = np.stack([across[..., 1], -across[..., 0]], axis=-1) / width[..., None]  # points up the face
    eye_centres = points[..., 36:48, :].mean(axis=-2)
    height = ((points[..., BROWS, :] - eye_centres[..., None, :]) * normal[..., None, :]).sum(axis=-1).mean(axis=-1)
    return height / width


def roll(landmarks: np.ndarray) -> np.ndarray:
    """In-plane rotation in degrees: the angle of the line through the outer eye corners
    (positive: turned clockwise in the picture)."""
    points = _points(landmarks)
    across = points[..., EYE_CORNERS[1], :] - points[..., EYE_CORNERS[0], :]
    return np.degrees(np.arctan2(across[..., 1], across[..., 0]))


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """Yaw, pitch and roll in degrees (…×3) from a fit of a generic head to nine landmarks
    (``cv2.solvePnP``). Yaw > 0: the face turned towards the picture's right; pitch > 0: tilted
    up. A generic head gives each person a small offset of their own, so compare a person's pitch
    with their usual pitch; yaw is close to 0 for a face looking at the camera."""
    points = _points(landmarks)
    flat = points.reshape(-1, 68, 2)
    pose = np.full((len(flat), 3), np.nan)
    for index, face in enumerate(flat):
        if np.isfinite(face).all():
            pose[index, :2] = _yaw_pitch(face)
    pose[:, 2] = roll(flat)
    return pose.reshape(*points.shape[:-2], 3)


def _yaw_pitch(face: np.ndarray) -> tuple[float, float]:
    scale = float(eye_distance(face))
    centre = face[list(POSE_POINTS)].mean(axis=0)
    camera = np.array([[FOCAL * scale, 0, centre[0]], [0, FOCAL * scale, centre[1]], [0, 0, 1]])
    # the head stands FOCAL eye distances in front of the camera (z towards it, so flip z and y for OpenCV)
    model = GENERIC_HEAD * np.array([1.0, 1.0, -1.0])
    guess = np.array([0.0, 0.0, FOCAL])
    found, rotation, _ = cv2.solvePnP(model, face[list(POSE_POINTS)].astype(np.float64), camera, None,
                                      np.zeros(3), guess, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not found:
        return math.nan, math.nan
    matrix, _ = cv2.Rodrigues(rotation)
    yaw = math.degrees(math.asin(float(np.clip(-matrix[2, 0], -1, 1))))
    pitch = math.degrees(math.atan2(float(matrix[2, 1]), float(matrix[2, 2])))
    return -yaw, -pitch
