"""The face pipeline for one image: detect → landmarks → (identity) → align. Extract runs it over
footage; convert runs it per frame of the video being swapped."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .align import alignment_matrix, transform_points, warp_face
from .detect import Detection, FaceDetector
from .identity import IdentityEncoder
from .landmarks import LandmarkPredictor
from .defaults import DEFAULT_FACE_SIZE
from .mask import face_mask


@dataclass
class Face:
    """A face found in an image: detection, 68 landmarks and the frame→crop ``matrix`` (all in
    frame coordinates), plus its identity embedding once computed."""

    detection: Detection
    landmarks: np.ndarray
    matrix: np.ndarray
    size: int
    embedding: np.ndarray | None = None

    @property
    def box(self) -> np.ndarray:
        return self.detection.box

    @property
    def score(self) -> float:
        return self.detection.score

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The aligned ``size``×``size`` crop of this face from its image."""
        return warp_face(image, self.matrix, self.size)

    def crop_landmarks(self) -> np.ndarray:
        """The 68 landmarks in crop coordinates."""
        return transform_points(self.landmarks, self.matrix)

    def mask(self) -> np.ndarray:
        """The uint8 face mask of the crop."""
        return face_mask(self.crop_landmarks(), self.size)


def blur_score(crop: np.ndarray) -> float:
    """Sharpness of a crop: variance of the Laplacian of its grey image at 256 px (higher = sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    if grey.shape[0] != 256:
        grey = cv2.resize(grey, (256, 256), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


class FaceAnalyzer:
    """Detector, landmark predictor and (loaded on first use) identity encoder for one image at a time.

    ``face_size`` is the side of aligned crops; ``detect_size`` the longest side frames are
    scaled down to for detection; ``min_score`` the detector confidence needed.
    """

    def __init__(self, face_size: int = DEFAULT_FACE_SIZE, detect_size: int = 320, min_score: float = 0.7) -> None:
        self.face_size = face_size
        self.detector = FaceDetector(score_threshold=min_score, max_side=detect_size)
        self.landmarker = LandmarkPredictor()
        self._encoder: IdentityEncoder | None = None

    @property
    def encoder(self) -> IdentityEncoder:
        if self._encoder is None:
            self._encoder = IdentityEncoder()
        return self._encoder

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, highest score first."""
        return self.detector.detect(image)

    def describe(self, image: np.ndarray, detection: Detection, grey: np.ndarray | None = None) -> Face:
        """Landmarks and alignment of one detection (pass ``grey`` when describing several faces of a frame)."""
        if grey is None:
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        landmarks = self.landmarker.predict(grey, detection)
        return Face(detection, landmarks, alignment_matrix(landmarks, self.face_size), self.face_size)

    def embed(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """Unit-length identity embedding of a detected face."""
        return self.encoder.embed(image, detection)

    def analyze(self, image: np.ndarray, embed: bool = False) -> list[Face]:
        """Every face of an RGB image with landmarks and alignment (and embeddings if ``embed``)."""
        detections = self.detect(image)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if detections else None
        faces = [self.describe(image, detection, grey) for detection in detections]
        if embed:
            for face in faces:
                face.embedding = self.embed(image, face.detection)
        return faces
