"""Colour matching, mask blending and landmark smoothing on real GRID frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepswap.convert.blend import fine_detail, paste_face, prepare_mask, region_window
from deepswap.convert.color import histogram_transfer, match_color, reinhard_transfer
from deepswap.convert.smoothing import LandmarkSmoother
from deepswap.faces import warp_face
from deepswap.faces import face_region
from deepswap.video import read_frames


@pytest.fixture(scope="module")
def two_frames(s1_clips, speaker_clips) -> tuple[np.ndarray, np.ndarray]:
    first = next(read_frames(s1_clips[0])).image
    other = next(read_frames(speaker_clips[0])).image
    return first, other


def ellipse_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (size // 3, size // 2 - 8), 0, 0, 360, 1.0, -1)
    return mask


def test_reinhard_matches_lab_statistics_inside_mask(two_frames):
    source, target = (cv2.resize(f[40:232, 80:272], (128, 128)) for f in two_frames)
    mask = ellipse_mask(128)
    result = reinhard_transfer(source, target, mask)
    inside = mask > 0.5
    result_lab = cv2.cvtColor(result, cv2.COLOR_RGB2LAB).astype(float)[inside]
    target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(float)[inside]
    source_lab = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(float)[inside]
    assert np.abs(result_lab.mean(0) - target_lab.mean(0)).max() < 2.0
    assert np.abs(source_lab.mean(0) - target_lab.mean(0)).max() > 4.0


def test_reinhard_is_the_per_channel_lab_map_of_its_definition(two_frames):
    """Each LAB channel goes through (value − the source's mean) × the spreads' ratio + the
    target's mean, the statistics taken inside the mask, or over the whole crop when the mask holds
    fewer than 16 pixels."""
    source, target = (cv2.resize(f[40:232, 80:272], (128, 128)) for f in two_frames)
    for mask in (ellipse_mask(128), np.zeros((128, 128), np.float32)):
        inside = mask > 0.5 if (mask > 0.5).sum() >= 16 else np.ones(mask.shape, bool)
        source_lab, target_lab = (cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(float) for image in (source, target))
        expected = ((source_lab - source_lab[inside].mean(0)) * target_lab[inside].std(0) / source_lab[inside].std(0)
                    + target_lab[inside].mean(0))
        expected = cv2.cvtColor(np.clip(expected, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
        difference = np.abs(reinhard_transfer(source, target, mask).astype(int) - expected.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001


def test_histogram_transfer_matches_channel_distributions(two_frames):
    source, target = (cv2.resize(f, (160, 128)) for f in two_frames)
    mask = np.ones((128, 160), np.float32)
    result = histogram_transfer(source, target, mask)
    quantiles = np.linspace(5, 80, 16)  # the source clips at 255 above ~85 %: a spike cannot be split
    for channel in range(3):
        def gap(image: np.ndarray) -> float:
            return float(np.abs(np.percentile(image[..., channel], quantiles) - np.percentile(target[..., channel], quantiles)).mean())

        assert gap(result) <= 3 < gap(source)


def test_color_none_returns_the_face_unchanged(two_frames):
    face = two_frames[0]
    assert match_color(face, two_frames[1], np.ones(face.shape[:2]), "none") is face


@pytest.mark.parametrize("mode", ["feather", "seamless"])
def test_paste_changes_only_the_masked_face_region(two_frames, mode):
    frame, other = two_frames
    size = 128
    matrix = np.array([[0.8, 0.1, -60.0], [-0.1, 0.8, -10.0]], np.float32)  # frame → crop
    face = cv2.warpAffine(other, matrix, (size, size))
    mask = prepare_mask(ellipse_mask(size), erode=0.02, blur=0.05)
    result = paste_face(frame, face, mask, matrix, mode=mode)
    back = cv2.warpAffine(mask, cv2.invertAffineTransform(matrix), frame.shape[1::-1])
    untouched = back == 0
    assert np.array_equal(result[untouched], frame[untouched])
    changed = np.abs(result.astype(int) - frame.astype(int)).sum(-1) > 0
    assert changed.sum() > 0.5 * (back > 0.5).sum()


def test_crop_and_paste_back_keeps_the_face_s_fine_detail(two_frames):
    """convert's round trip, frame → aligned crop → frame, with nothing swapped: bicubic warps keep
    the inner face's variance of the Laplacian (bilinear ones lost about a quarter of it here, and
    a third on whole GRID clips)."""
    frame = two_frames[0]
    matrix = cv2.getRotationMatrix2D((180, 120), 7, 2.4)  # frame → crop: a slightly rolled face, 2.4× enlarged
    matrix[:, 2] += (128 - 180, 128 - 120)
    back = paste_face(frame, warp_face(frame, matrix, 256), np.ones((256, 256), np.float32), matrix)
    box = (slice(80, 160), slice(140, 220))

    def laplacian_variance(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image[box], cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var())

    assert laplacian_variance(back) > 0.9 * laplacian_variance(frame)
    assert np.abs(back[box].astype(int) - frame[box]).mean() < 3


def test_fine_detail_is_the_band_finer_than_its_scale(two_frames):
    frame = two_frames[0]
    inner = (slice(20, -20), slice(20, -20))  # away from the dark top rows of GRID frames

    def amount(image: np.ndarray, scale: float = 0.5) -> float:
        return float(np.abs(fine_detail(image, scale)[inner]).mean())

    detail = fine_detail(frame, 0.5)
    assert detail.shape == frame.shape[:2] and detail.dtype == np.float32 and abs(detail[inner].mean()) < 0.5
    assert np.abs(fine_detail(np.full_like(frame, 77), 0.5)).max() < 1e-3, "flat picture has none"
    assert amount(cv2.GaussianBlur(frame, (0, 0), 2)) < 0.4 * amount(frame), "little of a picture without fine detail"
    assert amount(frame, 0.25) > 1.5 * amount(frame), "a smaller scale takes a wider band"


def test_paste_with_detail_restores_the_frame_s_finest_detail_inside_the_mask_only(two_frames):
    """A blurred copy of the face pasted back with --detail: inside the mask it regains the frame's
    fine detail (the Laplacian variance of the inner face comes back), outside nothing changes."""
    frame = two_frames[0]
    matrix = cv2.getRotationMatrix2D((180, 120), 0, 1.6)
    matrix[:, 2] += (128 - 180, 128 - 120)
    crop = warp_face(frame, matrix, 256)
    blurred = cv2.GaussianBlur(crop, (0, 0), 3)
    mask = prepare_mask(ellipse_mask(256), erode=0.02, blur=0.05)
    box = (slice(90, 150), slice(150, 210))

    def laplacian_variance(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image[box], cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var())

    plain = paste_face(frame, blurred, mask, matrix)
    detailed = paste_face(frame, blurred, mask, matrix, detail=1.0, detail_scale=0.5)
    assert laplacian_variance(plain) < 0.3 * laplacian_variance(frame)
    assert laplacian_variance(detailed) > 2 * laplacian_variance(plain)
    back = cv2.warpAffine(mask, cv2.invertAffineTransform(matrix), frame.shape[1::-1])
    assert np.array_equal(detailed[back == 0], frame[back == 0])
    assert np.array_equal(paste_face(frame, blurred, mask, matrix, detail=1.0, detail_scale=1.0), plain), \
        "at scale 1 the frame has no finer detail to give"


def test_paste_outside_the_frame_is_a_no_op(two_frames):
    frame = two_frames[0]
    matrix = np.array([[1, 0, 5000], [0, 1, 5000]], np.float32)
    result = paste_face(frame, np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), np.float32), matrix)
    assert np.array_equal(result, frame)


@settings(max_examples=20, deadline=None)
@given(erode=st.floats(-0.1, 0.1), blur=st.floats(0, 0.2))
def test_prepared_mask_stays_in_unit_range(erode, blur):
    mask = prepare_mask(ellipse_mask(64), erode, blur)
    assert mask.shape == (64, 64) and mask.min() >= 0 and mask.max() <= 1


def jitter(sequence: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(sequence, axis=0), axis=-1).mean())


@given(size=st.sampled_from([64, 128, 256]), blur=st.floats(0, 0.2))
def test_the_mask_window_fades_out_inside_the_model_s_region(size, blur):
    """Outside the square the model draws, the swapper returns the footage: the window that bounds
    the mask is 0 there and at the square's edge, 1 in its middle, and rises smoothly in between."""
    x, y, side = face_region(size, 0.8)
    window = region_window(size, (x, y, side), blur)
    outside = np.ones((size, size), bool)
    outside[y + 1:y + side - 1, x + 1:x + side - 1] = False
    assert window[outside].max() < 0.01 and window[y + side // 2, x + side // 2] == pytest.approx(1)
    row = window[y + side // 2, x:x + side // 2 + 1]
    assert np.all(np.diff(row) >= -1e-6), "no dip on the way in"


def test_smoother_removes_jitter_of_a_still_face():
    rng = np.random.default_rng(0)
    face = rng.uniform(100, 200, (68, 2))
    noisy = face + rng.normal(0, 1.0, (50, 68, 2))
    smoother = LandmarkSmoother()
    smoothed = np.stack([smoother(points, t / 25) for t, points in enumerate(noisy)])
    assert jitter(smoothed) < 0.4 * jitter(noisy)
    assert np.abs(smoothed[-10:] - face).mean() < 1.0


def test_smoother_of_a_static_sequence_has_no_jitter():
    face = np.random.default_rng(1).uniform(100, 200, (68, 2))
    smoother = LandmarkSmoother()
    smoothed = np.stack([smoother(face, t / 25) for t in range(20)])
    assert jitter(smoothed) == pytest.approx(0.0, abs=1e-9)


def test_smoother_resets_on_a_cut_and_when_the_face_is_lost():
    face = np.random.default_rng(2).uniform(100, 200, (68, 2))
    smoother = LandmarkSmoother()
    for t in range(10):
        smoother(face, t / 25)
    moved = face + 300
    assert np.allclose(smoother(moved, 10 / 25), moved)
    smoother.lost()
    assert np.allclose(smoother(face, 11 / 25), face)
