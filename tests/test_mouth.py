"""A's own mouth interior inside the new lips (convert --mouth-interior), on real GRID frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepswap.convert import Converter, ReplaceSettings
from deepswap.convert.mouth import interior_mask, interior_weight, widest_opening
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
    """The frame of an s1 clip's first second whose mouth is open widest, and its landmarks."""
    analyzer = FaceAnalyzer(face_size=128)
    frames = [frame.image for frame in read_frames(s1_clips[-1], duration=1.0)]
    faces = [analyzer.analyze(image)[0].landmarks for image in frames]
    widest = int(np.argmax([mouth_open(face) for face in faces]))
    assert mouth_open(faces[widest]) > 0.05
    return frames[widest]


def test_the_interior_mask_lies_inside_the_inner_lips(open_mouth):
    analyzer = FaceAnalyzer(face_size=128)
    face = analyzer.analyze(open_mouth)[0]
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
    located = replacer.locate(Frame(0, 0.0, open_mouth))
    output = replacer.render([open_mouth], [located])[0]
    points = located.landmarks[60:68]
    centre = points.mean(axis=0)
    inner = np.round(centre + 0.4 * (points - centre)).astype(int)  # well inside the inner lips
    change = np.abs(output.astype(int) - open_mouth)[inner[:, 1], inner[:, 0]].max(axis=1)
    if mode == "always":
        assert change.max() <= 2, change
    else:
        assert change.mean() > 4, change
