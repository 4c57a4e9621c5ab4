"""Step 1: find faces. YuNet (through OpenCV's ``FaceDetectorYN``) gives a box, five points and a score."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .models import YUNET, model_file


@dataclass(frozen=True)
class Detection:
    """One detected face in frame coordinates.

    ``box`` is x, y, w, h; ``points`` are YuNet's five points (right eye, left eye, nose tip,
    right and left mouth corner, as seen from the person); ``score`` is the detector confidence.
    """

    box: np.ndarray
    points: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    def yunet_row(self) -> np.ndarray:
        """The 15-number row OpenCV's ``FaceRecognizerSF.alignCrop`` expects."""
        return np.concatenate([self.box, self.points.ravel(), [self.score]]).astype(np.float32)


class FaceDetector:
    """YuNet face detector that runs on a frame scaled down to at most ``max_side`` pixels.

    Detection only needs to find the face; landmarks are then placed on the full-resolution
    frame, so a reduced detection size costs little accuracy and saves most of the time.
    """

    def __init__(self, score_threshold: float = 0.7, max_side: int = 320, nms_threshold: float = 0.3) -> None:
        self.max_side = max_side
        self._net = cv2.FaceDetectorYN.create(str(model_file(*YUNET)), "", (320, 320), score_threshold, nms_threshold, 5000)
        self._input_size = (320, 320)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, highest score first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, rows = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if rows is None:
            return []
        scale_back = np.array([width / size[0], height / size[1]], np.float32)
        detections = [
            Detection(box=(row[:4].reshape(2, 2) * scale_back).ravel(),
                      points=row[4:14].reshape(5, 2) * scale_back, score=float(row[14]))
            for row in rows
        ]
        return sorted(detections, key=lambda d: -d.score)
