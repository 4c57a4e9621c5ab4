"""Cuts between shots, found frame by frame as the frames arrive (``CutDetector``).

A frame's change is the mean absolute difference of its hue, saturation and value from the previous
frame's, on copies ``WIDTH`` pixels wide (PySceneDetect's content score). A cut is a change that is
both large (``MIN_CHANGE``) and several times (``RATIO``) the mean change of the ``WINDOW`` frames
before it: PySceneDetect's adaptive detector made causal (that one also compares a frame with the
frames after it, which the face tracking in ``convert`` cannot wait for). Each frame's change is
judged twice, as filmed and with the camera's own motion taken out: where the picture changes more
than a still shot's (``ALIGN_ABOVE``), the previous frame is moved onto this one by the affine map
that best aligns them (OpenCV's ECC on copies ``ALIGN_WIDTH`` pixels wide), so that a pan, zoom,
roll or shaking hand changes about as little as a still shot and a cut during it stands out. A
frame is a cut when either change stands out; the change as filmed is still needed where a face
fills the frame, since then the alignment takes out a head's move from one take to the next too.

Calibrated on GRID footage joined into one video (benchmarks/footage.py): a jump cut from one take
of a speaker to the next in the same studio changes 6.1-54 against at most 2.4 within a still shot;
within the shot of a zooming, panning and rolling or a shaking camera, frames change up to 5.1-12.9
as filmed and at most 3.0 with the motion taken out, where such cuts change 5.0-10.8 (and 2.6 where
the face fills the frame; 6.0 as filmed).
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
ALIGN_ABOVE = 2.0  # a change under this is a still shot's: no camera motion to take out
ALIGN_WIDTH = 64  # pixels: the camera's motion is found on copies this wide
ALIGN_STEPS = 15  # ECC iterations at most


class CutDetector:
    """Says, frame after frame of one video, whether each frame begins a new shot."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the frames seen (the next frame starts a new video)."""
        self._previous: np.ndarray | None = None
        self._changes: deque[tuple[float, float]] = deque(maxlen=WINDOW)  # (as filmed, the motion taken out)

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
        changes = _changes(previous, current)
        # too few frames since the last cut to judge against: no cut
        baselines = np.mean(self._changes, axis=0) if len(self._changes) >= MIN_SHOT - 1 else (np.inf, np.inf)
        cut = any(change >= max(MIN_CHANGE, RATIO * baseline) for change, baseline in zip(changes, baselines))
        if cut:
            self._changes.clear()
        else:
            self._changes.append(changes)
        return cut


def _changes(previous: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The mean absolute HSV difference of ``current`` from ``previous`` as filmed, and with the
    camera's motion between them taken out where there may be some (never more than as filmed)."""
    change = _mean_difference(previous, current)
    if change < ALIGN_ABOVE:
        return change, change
    height, width = current.shape[:2]
    small = (ALIGN_WIDTH, max(1, round(height * ALIGN_WIDTH / width)))
    template, moved = (cv2.resize(image[..., 2], small, interpolation=cv2.INTER_AREA).astype(np.float32)
                       for image in (current, previous))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ALIGN_STEPS, 1e-4)
    try:  # the affine map from this frame's coordinates to the previous frame's
        _, motion = cv2.findTransformECC(template, moved, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE,
                                         criteria, None, 1)
    except cv2.error:  # no alignment found (a flat picture, or a new shot): the change as filmed
        return change, change
    motion[:, 2] *= (width / small[0], height / small[1])
    back, size = cv2.WARP_INVERSE_MAP, (width, height)
    aligned = cv2.warpAffine(previous, motion, size, flags=back | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    seen = cv2.warpAffine(np.full((height, width), 255, np.uint8), motion, size, flags=back | cv2.INTER_NEAREST)
    if cv2.countNonZero(seen) < seen.size // 2:  # moved too far to compare
        return change, change
    return change, min(change, _mean_difference(aligned, current, seen))


def _mean_difference(first: np.ndarray, second: np.ndarray, where: np.ndarray | None = None) -> float:
    return float(np.mean(cv2.mean(cv2.absdiff(first, second), where)[:3]))
