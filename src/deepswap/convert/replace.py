"""The per-frame face replacement of convert: find the person, align, swap (batched), blend back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np

from ..errors import DeepswapError
from ..faces import Face, FaceAnalyzer, IdentityTracker, alignment_matrix, face_mask, transform_points, warp_face
from ..video import Frame
from .blend import BlendMode, paste_face, prepare_mask
from .color import ColorMode, match_color
from .smoothing import LandmarkSmoother


@dataclass(frozen=True)
class ReplaceSettings:
    """How a generated face is fitted into the frame."""

    color: ColorMode = "reinhard"
    blend: BlendMode = "feather"
    mask_erode: float = 0.03
    mask_blur: float = 0.08
    smooth: bool = True

    def __post_init__(self) -> None:
        for flag, value, allowed in (("--color", self.color, get_args(ColorMode)), ("--blend", self.blend, get_args(BlendMode))):
            if value not in allowed:
                raise DeepswapError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
        if not -0.3 <= self.mask_erode <= 0.3:
            raise DeepswapError(f"--mask-erode must be -0.3..0.3 (a fraction of the face), not {self.mask_erode}")
        if not 0 <= self.mask_blur <= 0.5:
            raise DeepswapError(f"--mask-blur must be 0..0.5 (a fraction of the face), not {self.mask_blur}")


@dataclass
class Located:
    """The replaced person's face in one frame: smoothed landmarks and the frame→crop matrix."""

    face: Face
    landmarks: np.ndarray
    matrix: np.ndarray


class FaceReplacer:
    """Replaces one person's face through a sequence of frames with another person's generated face.

    ``locate`` runs per frame (in order: it tracks the face and smooths its landmarks over time);
    ``render`` takes a batch of located frames and runs the model once for all of them.
    """

    def __init__(self, analyzer: FaceAnalyzer, tracker: IdentityTracker, swap, to: str, settings: ReplaceSettings) -> None:
        self.analyzer = analyzer
        self.tracker = tracker
        self.swap = swap
        self.to = to
        self.settings = settings
        self.size = analyzer.face_size
        self.smoother = LandmarkSmoother()

    def reset(self) -> None:
        """Forget the tracked face (between unrelated images)."""
        self.tracker.reset()
        self.smoother.lost()

    def locate(self, frame: Frame) -> Located | None:
        """The replaced person's face in this frame, or None (the frame then passes through unchanged)."""
        detections = self.analyzer.detect(frame.image)
        detection, _ = self.tracker.select(frame.image, detections)
        if detection is None:
            self.smoother.lost()
            return None
        face = self.analyzer.describe(frame.image, detection)
        landmarks = self.smoother(face.landmarks, frame.time) if self.settings.smooth else face.landmarks
        return Located(face, landmarks, alignment_matrix(landmarks, self.size))

    def render(self, frames: list[np.ndarray], located: list[Located | None]) -> list[np.ndarray]:
        """The frames with every located face replaced; frames without one are returned as they are."""
        todo = [i for i, where in enumerate(located) if where is not None]
        if not todo:
            return list(frames)
        crops = np.stack([warp_face(frames[i], located[i].matrix, self.size) for i in todo])
        generated, generated_masks = self.swap(crops, to=self.to)
        output = list(frames)
        for k, i in enumerate(todo):
            where = located[i]
            landmark_mask = face_mask(transform_points(where.landmarks, where.matrix), self.size).astype(np.float32) / 255
            mask = landmark_mask if generated_masks is None else np.minimum(generated_masks[k], _dilated(landmark_mask))
            mask = prepare_mask(mask, self.settings.mask_erode, self.settings.mask_blur)
            face = match_color(generated[k], crops[k], mask, self.settings.color)
            output[i] = paste_face(frames[i], face, mask, where.matrix, self.settings.blend)
        return output


def _dilated(mask: np.ndarray) -> np.ndarray:
    """The landmark mask grown by 8 % of the crop: a bound for the model's own mask."""
    return prepare_mask(mask, -0.08, 0.0)
