"""Temporal smoothing of face landmarks (a One-Euro filter that resets on cuts or lost faces) and of
the learned face mask (``MaskSmoother``).

The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter whose cut-off rises with
the signal's speed: still faces are smoothed hard (no jitter), fast motion follows with little lag.
"""

from __future__ import annotations

import math

import numpy as np


class OneEuroFilter:
    """Smooths an array-valued signal sampled at known times."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, derivative_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past (call on a scene cut or when the face was lost)."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value: np.ndarray, time: float, speed_scale: float = 1.0) -> np.ndarray:
        """Filter ``value`` at ``time`` (seconds); speeds are divided by ``speed_scale`` before ``beta``."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or time <= self._time:
            self._value, self._speed, self._time = value, np.zeros_like(value), time
            return value
        dt = time - self._time
        speed = (value - self._value) / dt
        self._speed = self._speed + self._alpha(self.derivative_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed) / speed_scale
        self._value = self._value + self._alpha(cutoff, dt) * (value - self._value)
        self._time = time
        return self._value


class LandmarkSmoother:
    """Smooths one tracked face's 68 landmarks over time, in units of the face's size.

    Resets when the face jumps further than ``cut_threshold`` face sizes between frames (a cut or a
    different face) or when a frame had no face.
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 8.0, cut_threshold: float = 0.35) -> None:
        self._filter = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
        self._previous: np.ndarray | None = None
        self.cut_threshold = cut_threshold

    def lost(self) -> None:
        """The face was not found in this frame."""
        self._filter.reset()
        self._previous = None

    def __call__(self, landmarks: np.ndarray, time: float) -> np.ndarray:
        scale = float(np.ptp(landmarks[:, 0]) + np.ptp(landmarks[:, 1])) / 2 or 1.0
        if self._previous is not None:
            jump = np.linalg.norm(landmarks.mean(axis=0) - self._previous.mean(axis=0)) / scale
            if jump > self.cut_threshold:
                self._filter.reset()
        self._previous = landmarks
        return self._filter(landmarks, time, speed_scale=scale)


class MaskSmoother:
    """Steadies a tracked face's learned mask (in crop coordinates) over time: quick to take away, slow
    to give back. Each frame's mask is the lower of this frame's and a running average
    (``keep`` of the past): a hand coming in front of the face is left out at once, flicker that
    would let the new face show through an occluder for a frame is held down, and a face uncovered
    again fills in over a few frames."""

    def __init__(self, keep: float = 0.5) -> None:
        self.keep = keep
        self._average: np.ndarray | None = None

    def lost(self) -> None:
        """The face was not found (or a new image began): forget the past."""
        self._average = None

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        if self._average is None or self._average.shape != mask.shape:
            self._average = mask
            return mask
        self._average = self.keep * self._average + (1 - self.keep) * mask
        return np.minimum(mask, self._average)
