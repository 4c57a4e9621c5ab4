"""Local warps across a face feature (an eye, the mouth) for ``cv2.remap``.

A feature has its own coordinates, in feature widths: ``u`` along the line through its two corners
(from their midpoint), ``v`` across it (down an upright face). Each column across the feature is
moved by a monotone piecewise-linear map from source knots to target knots, so the picture is
squeezed or stretched between the knots but never folded, and it is left alone beyond the first
and last knot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..faces.detect import Detection
from ..faces.landmarks import LandmarkPredictor

Shift = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Feature:
    """The frame of a face feature between two corners (image pixels): ``centre``, the unit vector
    ``along`` from the first corner to the second, and ``width`` (their distance)."""

    centre: np.ndarray
    along: np.ndarray
    width: float

    @classmethod
    def between(cls, corner: np.ndarray, other_corner: np.ndarray) -> Feature:
        corner, other_corner = np.asarray(corner, np.float64), np.asarray(other_corner, np.float64)
        width = max(float(np.linalg.norm(other_corner - corner)), 1e-6)
        return cls((corner + other_corner) / 2, (other_corner - corner) / width, width)

    @property
    def across(self) -> np.ndarray:
        """The unit vector of growing ``v``: down the face for a feature upright in the picture
        whose first corner is on the picture's left."""
        return np.array([-self.along[1], self.along[0]])

    def coordinates(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The feature coordinates (u, v) of image positions."""
        dx, dy = xs - self.centre[0], ys - self.centre[1]
        return ((dx * self.along[0] + dy * self.along[1]) / self.width,
                (dx * self.across[0] + dy * self.across[1]) / self.width)

    def across_of(self, points: np.ndarray) -> np.ndarray:
        """The ``v`` coordinate of N×2 image points."""
        return (np.asarray(points, np.float64) - self.centre) @ self.across / self.width

    def shift(self, v: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel (its ``v``), the offset (x, y) in pixels to the position it takes its colour
        from so that what lay at each source knot moves to its target knot (K×… each, increasing
        down the knots, the first and last the same)."""
        offset = (inverse_piecewise(v, sources, targets) - v) * self.width
        return (offset * self.across[0]).astype(np.float32), (offset * self.across[1]).astype(np.float32)

    def window(self, u_reach: float, v_range: tuple[float, float], shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """The corners (x0, y0), (x1, y1) of the part of an image (``shape``: height, width) that
        holds every position with |u| ≤ ``u_reach`` and v in ``v_range``, with a pixel to spare."""
        corners = np.array([self.centre + self.width * (u * self.along + v * self.across)
                            for u in (-u_reach, u_reach) for v in v_range])
        low = np.clip(np.floor(corners.min(axis=0)) - 2, 0, None).astype(int)
        high = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, (shape[1], shape[0]))
        return (int(low[0]), int(low[1])), (int(high[0]), int(high[1]))


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


def remap_window(image: np.ndarray, window: tuple[tuple[int, int], tuple[int, int]], shift_of: Shift) -> np.ndarray:
    """``image`` with the part inside ``window`` remapped: ``shift_of(xs, ys)`` gives each pixel's
    offset (x, y) to where it takes its colour from."""
    (x0, y0), (x1, y1) = window
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    shift_x, shift_y = shift_of(xs, ys)
    warped = image.copy()
    warped[y0:y1, x0:x1] = cv2.remap(image, xs + shift_x, ys + shift_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped


def drawn_landmarks(drawn: np.ndarray, box: np.ndarray, predictor: LandmarkPredictor) -> np.ndarray:
    """The 68 landmarks of a drawn face (an RGB crop) that a warp is placed by; ``box`` is the
    face's detector box in the crop (x, y, w, h)."""
    grey = cv2.cvtColor(drawn, cv2.COLOR_RGB2GRAY)
    return predictor.predict(grey, Detection(np.asarray(box, np.float64), np.zeros((5, 2)), 1.0))
