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


def filmed(k: int, image: np.ndarray, speed: float = 1) -> np.ndarray:
    """Frame ``k`` as a camera zooming in (from 1.2×, by 1× in 75 frames at ``speed`` 1), panning
    and rolling would film it."""
    height, width = image.shape[:2]
    k = speed * k
    matrix = cv2.getRotationMatrix2D((width / 2 + 2 * k - 75, height / 2), 0.2 * k, 1.2 + k / 75)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def handheld(images: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """The frames as a hand-held camera shaking by a few pixels and a fraction of a degree films them."""
    rng, shake = np.random.default_rng(seed), np.zeros(3)
    shaken = []
    for image in images:
        shake = 0.7 * shake + rng.normal(0, 3, 3)
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.3 * shake[2], 1.1)
        matrix[:, 2] += shake[:2]
        shaken.append(cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE))
    return shaken


def test_a_camera_moving_through_a_shot_is_not_cut_and_a_cut_while_it_moves_is(s1_clips: list[Path]) -> None:
    first, second = ([frame.image for frame in read_frames(clip)] for clip in s1_clips[:2])
    for speed in (1, 2):
        assert cuts_in(filmed(k, image, speed) for k, image in enumerate(first)) == [], speed
    # twice as fast on through a jump cut to the next take: before the motion is taken out, the
    # cut (9.6) changes less than 2.5 times as much as the frames before it (6.0)
    assert cuts_in(filmed(k, image, 2) for k, image in enumerate(first[:40] + second[:40])) == [40]


def test_a_jump_in_framing_while_the_camera_pans_is_a_cut_though_aligning_the_frames_takes_it_out(
        s1_clips: list[Path]) -> None:
    """A punch-in style cut, the same picture moved by 30 pixels while the camera pans by 1 a frame:
    with the motion taken out the cut changes 1.0 (no cut), as filmed 19.1 after frames of 2.4."""
    def framed(k: int, image: np.ndarray) -> np.ndarray:
        shift = k + (30 if k >= 40 else 0)
        matrix = np.float32([[1.3, 0, -60 - shift], [0, 1.3, -40]])
        return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)

    frames = [frame.image for frame in read_frames(s1_clips[0])]
    assert cuts_in(framed(k, image) for k, image in enumerate(frames)) == [40]


def test_every_jump_cut_of_a_shaking_hand_held_camera_is_found_and_nothing_else(s1_clips: list[Path]) -> None:
    clips = [[frame.image for frame in read_frames(clip)] for clip in s1_clips[:6]]
    joins = np.cumsum([len(frames) for frames in clips])[:-1].tolist()
    assert cuts_in(handheld(list(chain.from_iterable(clips)))) == joins


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
