"""The new mouth opens with A's (convert --lips) and shows A's own interior inside its lips
(convert --mouth-interior): on a drawn mouth, real GRID frames and a trained model."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from deepswap.convert import Converter, ReplaceSettings
from deepswap.convert.eyelids import crop_box
from deepswap.convert.mouth import (UPPER_SHARE, follow_lips, interior_mask, interior_weight, lip_shift, lip_window,
                                    widest_opening)
from deepswap.convert.warp import remap_window
from deepswap.coverage import faceset_landmarks
from deepswap.faces import FaceAnalyzer, alignment_matrix, load_faceset, transform_points
from deepswap.faces.expression import mouth_open
from deepswap.video import Frame, read_frames


def test_the_interior_shows_from_just_below_the_other_persons_widest_opening():
    assert interior_weight(0.05, "off", 0.04) == 0.0
    assert interior_weight(0.01, "always", 0.04) == 1.0
    assert interior_weight(0.02, "wide", 0.04) == 0.0  # B opens wider: the model draws it
    assert 0 < interior_weight(0.036, "wide", 0.04) < 1
    assert interior_weight(0.05, "wide", 0.04) == 1.0
    assert interior_weight(0.5, "wide", math.inf) == 0.0
    assert interior_weight(math.nan, "always", 0.04) == 0.0


def test_the_widest_opening_is_the_largest_of_a_persons_faces(extracted_workspace):
    landmarks, _ = faceset_landmarks(load_faceset(extracted_workspace / "a" / "faces"))
    assert widest_opening(landmarks) == pytest.approx(float(np.nanmax(mouth_open(landmarks))))
    assert widest_opening(np.zeros((0, 68, 2))) == 0.0


@pytest.fixture(scope="module")
def open_mouth(s1_clips):
    """The frame of an s1 clip's first second whose mouth is open widest, with all of that second's
    frames and their faces (256-px crops, as convert's)."""
    analyzer = FaceAnalyzer()
    frames = [frame.image for frame in read_frames(s1_clips[-1], duration=1.0)]
    faces = [analyzer.analyze(image)[0] for image in frames]
    widest = int(np.argmax([mouth_open(face.landmarks) for face in faces]))
    assert mouth_open(faces[widest].landmarks) > 0.05
    return frames[widest], frames, faces


def test_the_interior_mask_lies_inside_the_inner_lips(open_mouth):
    analyzer = FaceAnalyzer(face_size=128)
    face = analyzer.analyze(open_mouth[0])[0]
    crop_points = transform_points(face.landmarks, alignment_matrix(face.landmarks, 128))
    mask = interior_mask(crop_points, 128)
    centre = crop_points[60:68].mean(axis=0).round().astype(int)
    assert mask[centre[1], centre[0]] > 0.9
    nose, chin = crop_points[30].round().astype(int), crop_points[8].round().astype(int)
    assert mask[nose[1], nose[0]] == 0 and mask[min(chin[1], 127), chin[0]] == 0
    assert 0.002 < mask.mean() < 0.05


@pytest.mark.parametrize("mode", ["off", "always"])
def test_convert_leaves_the_filmed_mouth_interior_only_when_asked(trained_workspace, open_mouth, mode):
    converter = Converter(trained_workspace)
    replacer = converter.replacer("a2b", ReplaceSettings(mouth_interior=mode, learned_mask=False))
    located = replacer.locate(Frame(0, 0.0, open_mouth[0]))
    output = replacer.render([open_mouth[0]], [located])[0]
    points = located.landmarks[60:68]
    centre = points.mean(axis=0)
    inner = np.round(centre + 0.4 * (points - centre)).astype(int)  # well inside the inner lips
    change = np.abs(output.astype(int) - open_mouth[0])[inner[:, 1], inner[:, 0]].max(axis=1)
    if mode == "always":
        assert change.max() <= 2, change
    else:
        assert change.mean() > 4, change


# A drawn mouth 50 px wide, its corners at y = 150, each lip's outline a parabola through them: the
# lips 7 px thick at the middle around a 4-px gap; the nose base 40 px above, the chin 50 px below.
LIP_LINES = {(50, 51, 52): -9, (61, 62, 63): -2, (67, 66, 65): 2, (58, 57, 56): 9}  # landmarks left to right: half-height


def _lip_curve(xs: np.ndarray) -> np.ndarray:
    return np.clip(1 - ((xs - 125) / 25) ** 2, 0, None)


def _drawn_mouth() -> tuple[np.ndarray, np.ndarray]:
    """The landmarks the lip warp reads and a grey picture of that mouth: skin 150, lips 90, the
    mouth's inside 20, the neck below the chin 60."""
    points = np.zeros((68, 2))
    points[[48, 54, 33, 8]] = [(100, 150), (150, 150), (125, 110), (125, 200)]
    for indices, half in LIP_LINES.items():
        xs = np.array([115.0, 125.0, 135.0])
        points[list(indices)] = np.stack([xs, 150 + half * _lip_curve(xs)], axis=1)
    ys, xs = np.mgrid[0:260, 0:250].astype(np.float64)
    image = np.full(xs.shape, 150.0)
    image[np.abs(ys - 150) < 9 * _lip_curve(xs)] = 90
    image[np.abs(ys - 150) < 2 * _lip_curve(xs)] = 20
    image[ys > 200] = 60
    return points, image.astype(np.uint8)


def _runs(column: np.ndarray, value: int, below: int = 0) -> tuple[int, int]:
    """First and last row of a column (from row ``below`` on) where it is within 25 of ``value``."""
    rows = below + np.flatnonzero(np.abs(column[below:].astype(int) - value) < 25)
    return int(rows[0]), int(rows[-1])


def test_the_lip_warp_opens_the_mouth_as_a_jaw_drops_and_leaves_the_face_beyond_it_alone():
    points, image = _drawn_mouth()
    opening = 0.3  # mouth widths: 15 px at the lips' landmarks, 1.12 × that at the middle (the lips' curve)
    xs, ys = np.meshgrid(np.arange(250, dtype=np.float32), np.arange(260, dtype=np.float32))
    shift_x, shift_y = lip_shift(points, opening, xs, ys)
    assert np.abs(shift_x).max() < 1e-4  # an upright mouth: pixels move only up and down
    assert (np.diff(ys + shift_y, axis=0) >= 0).all()  # no fold
    (x0, y0), (x1, y1) = lip_window(points, opening, image.shape)
    inside = np.zeros(image.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert np.abs(shift_y[~inside]).max() < 1e-4 and y0 <= 110
    warped = remap_window(image, ((x0, y0), (x1, y1)), lambda x, y: lip_shift(points, opening, x, y))
    before, after = image[:190, 125], warped[:190, 125]  # above the chin
    (lips_top, lips_bottom), (lips_top_after, lips_bottom_after) = _runs(before, 90), _runs(after, 90)
    (dark_top, dark_bottom), (dark_top_after, dark_bottom_after) = _runs(before, 20), _runs(after, 20)
    middle = 1.12 * 15
    assert lips_top - lips_top_after == pytest.approx(UPPER_SHARE * middle, abs=1.5)  # the upper lip: a third up
    assert lips_bottom_after - lips_bottom == pytest.approx((1 - UPPER_SHARE) * middle, abs=1.5)  # the lower lip the rest
    gap = 4 * 1.12  # between the inner lips' knots at the middle: what is drawn there is stretched with the opening
    assert dark_bottom_after - dark_top_after + 1 == pytest.approx((dark_bottom - dark_top + 1) * (gap + middle) / gap, abs=2)
    assert _runs(warped[:, 125], 60, 180)[0] - _runs(image[:, 125], 60, 180)[0] == pytest.approx((1 - UPPER_SHARE) * 15, abs=1.5)  # the chin drops
    assert np.array_equal(warped[:112], image[:112])  # the nose and everything above it stay
    assert np.abs(warped[150, [95, 155]].astype(int) - image[150, [95, 155]]).max() <= 2  # so do the mouth's corners


def test_a_real_closed_mouth_opens_towards_an_open_ones_gap_and_an_open_one_is_left_alone(open_mouth):
    """A filmed face with its lips together stands in for the drawn one: warped to the landmarks of
    the same speaker's open mouth, its dark mouth grows and the face above the nose stays."""
    analyzer = FaceAnalyzer()
    frames, faces = open_mouth[1], open_mouth[2]
    openings = np.array([mouth_open(face.landmarks) for face in faces])
    closed, wide = int(np.argmin(openings)), int(np.argmax(openings))
    face = faces[closed]
    crop, box = face.crop(frames[closed]), crop_box(face.box, face.matrix)
    target = face.crop_landmarks().copy()
    target[60:68] = faces[wide].crop_landmarks()[60:68] - faces[wide].crop_landmarks()[60:68].mean(axis=0) \
        + face.crop_landmarks()[60:68].mean(axis=0)  # the open mouth's inner lips around the closed one's
    opened = follow_lips(crop, target, box, analyzer.landmarker)
    mouth = face.crop_landmarks()[48:68]
    (x0, y0), (x1, y1) = mouth.min(axis=0).astype(int), mouth.max(axis=0).astype(int) + (0, 20)

    def dark(image: np.ndarray) -> int:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1]
        return int((grey < np.percentile(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1], 10)).sum())

    assert dark(opened) > 1.3 * dark(crop), (dark(opened), dark(crop))
    nose = int(face.crop_landmarks()[33, 1])
    assert np.array_equal(opened[:nose - 2], crop[:nose - 2])
    assert follow_lips(crop, face.crop_landmarks(), box, analyzer.landmarker) is crop  # A's mouth as closed: as drawn


def test_convert_opens_the_drawn_mouth_only_around_it_and_leaves_a_closed_mouth_as_drawn(trained_workspace, open_mouth):
    """In convert the warp runs where A's mouth opens wider than drawn, around the mouth and chin
    only, and not where A's mouth is closed."""
    frames, faces = open_mouth[1], open_mouth[2]
    converter = Converter(trained_workspace)
    replacers = {lips: converter.replacer("a2b", ReplaceSettings(lips=lips, eyelids="off", learned_mask=False,
                                                                 drawn_face_only=False, detail=0.0, mouth_interior="off"))
                 for lips in ("follow", "off")}

    def converted(index: int) -> dict[str, np.ndarray]:
        return {lips: replacer.render([frames[index]], [replacer.locate(Frame(0, 0.0, frames[index]))])[0]
                for lips, replacer in replacers.items()}

    openings = [mouth_open(face.landmarks) for face in faces]
    shut = converted(int(np.argmin(openings)))
    assert np.array_equal(shut["follow"], shut["off"])
    wide = int(np.argmax(openings))
    opened = converted(wide)
    changed = np.abs(opened["follow"].astype(int) - opened["off"]).max(axis=2) > 8
    landmarks = faces[wide].landmarks
    ys, xs = np.nonzero(changed)
    width = np.ptp(landmarks[48:55, 0])
    assert len(ys) > 30 and (xs >= landmarks[48, 0] - width).all() and (xs <= landmarks[54, 0] + width).all()
    assert (ys >= landmarks[33, 1] - 2).all()
