"""Cuts between shots, found frame by frame as the frames arrive (``CutDetector``).

A frame's change is the mean absolute difference of its hue, saturation and value from the previous
frame's, on copies ``WIDTH`` pixels wide (PySceneDetect's content score). A cut is a change that is
both large (``MIN_CHANGE``) and several times (``RATIO``) the mean change of the ``WINDOW`` frames
before it, so a camera moving through a shot, whose every frame changes a lot, is not cut. This is
PySceneDetect's adaptive detector made causal: that one also compares a frame with the frames after
it, which the face tracking in ``convert`` cannot wait for. Calibrated on GRID footage joined into one
video, where a jump cut from one take of a speaker to the next in the same studio changes 5.6-54
against at most 2.6 within a still shot and 5.1 within a zoom and pan (benchmarks/footage.py). A cut
hidden in a moving camera's changes is missed (the zoom and pan's join, 7.2 after frames of 4-5).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

WIDTH = 320  # pixels: frames are compared at this width
MIN_CHANGE = 4.0  # mean absolute HSV difference (0-255 scale; hue 0-179) under which a frame is never a cut
RATIO = 2.5  # a cut changes at least this many times the mean change of the frames before it
WINDOW = 8  # frames: how many changes before a frame make its baseline
MIN_SHOT = 4  # frames: a shot is at least this long (the baseline needs a few changes)


class CutDetector:
    """Says, frame after frame of one video, whether each frame begins a new shot."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the frames seen (the next frame starts a new video)."""
        self._previous: np.ndarray | None = None
        self._changes: deque[float] = deque(maxlen=WINDOW)

    def __call__(self, image: np.ndarray) -> bool:
        """Whether ``image`` (RGB, H×W×3 uint8), the video's next frame, begins a new shot; the first
        ``MIN_SHOT`` frames after ``reset`` or a cut do not, and a frame of another size does."""
        height = max(1, round(image.shape[0] * WIDTH / image.shape[1]))
        small = cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)
        current = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        if previous.shape != current.shape:  # the picture changed size: a new shot
            self._changes.clear()
            return True
        change = float(np.mean(cv2.mean(cv2.absdiff(current, previous))[:3]))
        cut = len(self._changes) >= MIN_SHOT - 1 and change >= max(MIN_CHANGE, RATIO * float(np.mean(self._changes)))
        if cut:
            self._changes.clear()
        else:
            self._changes.append(change)
        return cut
