"""Cuts between shots, found as the frames arrive, on the shipped GRID clips played back to back."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import cv2
import numpy as np

from deepswap.video import CutDetector, read_frames
from deepswap.video.cuts import MIN_SHOT


def cuts_in(images) -> list[int]:
    detector = CutDetector()
    return [index for index, image in enumerate(images) if detector(image)]


def test_every_join_of_clips_is_a_cut_and_nothing_inside_a_clip(s1_clips: list[Path],
                                                                speaker_clips: list[Path]) -> None:
    clips = [list(read_frames(clip)) for clip in s1_clips + speaker_clips]
    joins = np.cumsum([len(frames) for frames in clips])[:-1].tolist()
    # s1 to s1 are jump cuts between takes in one studio: the least the picture changes at a cut
    assert cuts_in(frame.image for frame in chain.from_iterable(clips)) == joins


def test_a_camera_moving_through_a_shot_is_not_cut(s1_clips: list[Path]) -> None:
    frames = [frame.image for frame in read_frames(s1_clips[0])]
    height, width = frames[0].shape[:2]

    def filmed(k: int, image: np.ndarray) -> np.ndarray:  # zooming in from 1.2× to 2.2×, panning and rolling
        matrix = cv2.getRotationMatrix2D((width / 2 + 2 * k - 75, height / 2), 0.2 * k, 1.2 + k / 75)
        return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)

    assert cuts_in(filmed(k, image) for k, image in enumerate(frames)) == []


def test_a_new_frame_shape_is_a_cut_and_a_shot_is_never_shorter_than_its_minimum(
        s1_clips: list[Path], speaker_clips: list[Path]) -> None:
    s1 = [frame.image for frame in read_frames(s1_clips[0])]
    other = [frame.image for frame in read_frames(speaker_clips[0])]
    assert cuts_in(s1[:10] + [cv2.resize(image, (360, 200)) for image in s1[10:20]]) == [10]
    flicker = s1[:10] + other[:1] + s1[10:20]  # a shot of one frame: only its start is a cut
    assert cuts_in(flicker) == [10]
    assert cuts_in(other[:1] + s1[:MIN_SHOT + 1]) == []  # nothing before the first shot has a few frames
    detector = CutDetector()
    for image in s1[:10]:
        detector(image)
    detector.reset()
    assert not any(detector(image) for image in other[:1] + s1[10:12])
