"""Skin-only labels for the learned mask: hair over a real GRID face's forehead is left out, the
eyes, brows, lips and cheeks stay, and both ways of training the mask use these labels."""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepswap.convert.blend import fill_from_footage, prepare_mask
from deepswap.convert import ReplaceSettings
from deepswap.convert.replace import (DRAWN_BLUR, DRAWN_ERODE, FaceReplacer, above_brows, crop_skin, drawn_keep,
                                      forehead_shading, forehead_skin, tone_measured)
from deepswap.evaluate import forehead_band, forehead_hair_added
from deepswap.faces import (FaceAnalyzer, IdentityTracker, face_mask, face_region, load_faceset, skin_mask,
                            transform_points, warp_face)
from deepswap.faces.expression import eye_distance
from deepswap.faces.skin import INNER_MARGIN, inner_face, skin_reference
from deepswap.train.config import COVERAGE
from deepswap.train.data import MaskSamples, PersonFaces, TrainingStream, region_face
from deepswap.train.mask_training import mask_faces
from deepswap.train.segmenter import RESOLUTION
from deepswap.train import load_swapper
from deepswap.video import Frame, read_frames
from deepswap.workspace import Workspace

HAIR = (35, 28, 22)  # dark brown
FEATURES = (range(36, 42), range(42, 48), range(48, 60), range(27, 36))  # the eyes, the lips, the nose


@pytest.fixture(scope="module")
def s1_face(s1_clips: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An aligned 256-px crop of a real s1 frame, its landmarks and its landmark mask."""
    frame = next(islice(read_frames(s1_clips[0]), 10, None)).image
    face = FaceAnalyzer(face_size=256).analyze(frame)[0]
    landmarks = face.crop_landmarks()
    return face.crop(frame), landmarks, face_mask(landmarks, 256)


def fringe(shape: tuple[int, ...], landmarks: np.ndarray, side: int, width: float) -> np.ndarray:
    """H×W bool: a lock of hair falling over one side of the forehead, from the mask's top to just
    above the brow, ``width`` eye-corner distances across, its edge cut by strands."""
    unit = float(eye_distance(landmarks))
    brow = landmarks[19] if side < 0 else landmarks[24]
    bottom, top = brow - (0, 0.15 * unit), brow - (0, 1.2 * unit)
    lock = np.zeros(shape[:2], np.uint8)
    corners = [top - (width * unit / 2, 0), top + (width * unit / 2, 0), bottom + (width * unit / 4, 0), bottom - (width * unit / 3, 0)]
    cv2.fillPoly(lock, [np.round(corners).astype(np.int32)], 1)
    for k in range(3):  # strands running past the lock's edge
        start = top + ((k - 1) * width * unit / 3, 0)
        cv2.line(lock, tuple(np.round(start).astype(int)), tuple(np.round(bottom + ((k - 1) * width * unit / 2, 0)).astype(int)),
                 1, max(1, round(0.04 * unit)))
    return lock.astype(bool)


def with_hair(image: np.ndarray, hair: np.ndarray, darkness: float, seed: int = 0) -> np.ndarray:
    """``image`` with dark hair (``HAIR`` scaled by ``darkness``, and strand-like noise) where ``hair``."""
    noise = np.random.default_rng(seed).normal(0, 12, image.shape[:2])
    noise = cv2.GaussianBlur(noise, (1, 9), 0)[..., None]  # streaks along the strands
    out = image.astype(np.float32)
    out[hair] = (np.asarray(HAIR, np.float32) * darkness + noise[hair])
    return np.clip(out, 0, 255).astype(np.uint8)


def feature_pixels(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """H×W bool: the eyes, brows, lips, nose and the cheeks' skin."""
    features = np.zeros(shape[:2], np.uint8)
    for points in FEATURES:
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(landmarks[list(points)]).astype(np.int32)), 1)
    for brow in (slice(17, 22), slice(22, 27)):
        cv2.polylines(features, [np.round(landmarks[brow]).astype(np.int32)], False, 1, 5)
    return features.astype(bool) | skin_reference(shape[:2], landmarks)


@settings(max_examples=12, deadline=None)
@given(side=st.sampled_from([-1, 1]), width=st.floats(0.3, 0.7), darkness=st.floats(0.4, 1.6),
       light=st.floats(0.8, 1.15))
def test_the_skin_label_leaves_out_hair_over_the_forehead_and_keeps_eyes_brows_lips_cheeks(s1_face, side, width,
                                                                                          darkness, light):
    crop, landmarks, mask = s1_face
    lit = np.clip(crop * light, 0, 255).astype(np.uint8)  # the whole face lighter or darker: the skin colour is its own
    hair = fringe(crop.shape, landmarks, side, width) & (mask > 0)
    label = skin_mask(with_hair(lit, hair, darkness), landmarks, mask)
    assert hair.sum() > 400
    assert (label[hair] > 0).mean() < 0.05, "the fringe is labelled face"
    features = feature_pixels(crop.shape, landmarks)
    assert (label[features] == mask[features]).mean() > 0.99, "an eye, brow, lip or cheek is left out"


def test_the_plain_face_keeps_its_forehead_skin_and_loses_only_the_mask_beyond_the_face(s1_face):
    crop, landmarks, mask = s1_face
    label = skin_mask(crop, landmarks, mask)
    unit = float(eye_distance(landmarks))
    between_brows = np.round((landmarks[21] + landmarks[22]) / 2 - (0, 0.25 * unit)).astype(int)
    assert label[between_brows[1], between_brows[0]] == 255
    assert 0.7 < label.sum() / mask.sum() < 1.0  # what goes is the s1 speaker's own fringe and the background at the edge
    assert np.all(label <= mask)


def test_the_forehead_metric_counts_a_fringe_drawn_on_it_and_not_shading_or_higher_brows(s1_face):
    crop, landmarks, _ = s1_face
    band = forehead_band(landmarks, crop.shape)
    assert band.sum() > 1000 and not band[int(landmarks[30, 1]), int(landmarks[30, 0])]
    assert forehead_hair_added(crop, crop, landmarks) == 0.0
    hair = fringe(crop.shape, landmarks, -1, 0.6)
    assert forehead_hair_added(crop, with_hair(crop, hair, 1.0), landmarks) > 0.1
    shaded = (crop * 0.85).astype(np.uint8)
    for brow in (slice(17, 22), slice(22, 27)):  # another face's brows drawn a little higher
        cv2.polylines(shaded, [np.round(landmarks[brow] - (0, 4)).astype(np.int32)], False, HAIR, 4)
    assert forehead_hair_added(crop, shaded, landmarks) < 0.01
    assert math.isnan(forehead_hair_added(crop, crop, np.full((68, 2), np.nan)))


def test_with_skin_mask_both_ways_of_training_the_mask_label_skin_and_the_swap_keeps_the_stored_mask(
        extracted_workspace: Path):
    workspace = Workspace.open(extracted_workspace)
    plain = PersonFaces.load(workspace, "b")
    assert np.array_equal(plain.segmenter_label(0, *plain.read(0)), plain.read(0)[1]), "skin labels are asked for"
    people = PersonFaces.load(workspace, "b", skin_labels=True)
    faceset = load_faceset(workspace.faces_dir("b"))
    corrected = people.ids[1]
    faceset.corrected.append(corrected)  # as the mask editor records a face corrected by hand (not saved)
    people.faceset = faceset
    image, mask = people.read(0)
    label = skin_mask(image, people.landmarks[0], mask)
    assert label.sum() < mask.sum()
    assert np.array_equal(people.segmenter_label(0, image, mask), label)
    assert np.array_equal(people.segmenter_label(1, *people.read(1)), people.read(1)[1]), "a corrected mask is the user's"
    stream = TrainingStream({"b": people}, resolution=32, coverage=COVERAGE, seed=0, output_resolution=64)
    region = face_region(people.face_size, COVERAGE)
    assert np.array_equal(stream.region("b", 0)[1], region_face(mask, region, 64))
    assert np.array_equal(stream.mask_samples.region("b", 0)[1], region_face(label, region, RESOLUTION))
    faces, _ = mask_faces(workspace, "b", skin_labels=True)
    index = faces.ids.index(people.ids[0])
    alone = MaskSamples({"b": faces}, COVERAGE, 0).region("b", index)[1]
    assert np.array_equal(alone, region_face(label, region, RESOLUTION))


def test_convert_keeps_a_drawn_fringe_off_the_forehead_and_leaves_below_the_brows_to_the_learned_mask(s1_face):
    """The drawn face's forehead skin (``convert.replace.forehead_skin``): a lock of the other person's
    hair over the forehead is not pasted; the eyes, brows, nose, lips and cheeks are, and so is a
    dark strand on the cheek (below the brows the learned mask decides)."""
    crop, landmarks, _ = s1_face
    lock = fringe(crop.shape, landmarks, 1, 0.6)
    strand = np.zeros(crop.shape[:2], np.uint8)
    cv2.polylines(strand, [np.round(landmarks[2:6] + (landmarks[30] - landmarks[2:6]) * 0.15).astype(np.int32)], False, 1, 5)
    drawn = with_hair(with_hair(crop, lock, 1.0), strand > 0, 1.0, seed=1)
    skin = forehead_skin(drawn, landmarks, face_mask(landmarks, 256))
    assert skin[lock].mean() < 0.2, skin[lock].mean()
    assert skin[feature_pixels(crop.shape, landmarks)].min() == 1.0
    assert skin[strand > 0].min() == 1.0
    outline = face_mask(landmarks, 256)
    assert forehead_skin(crop, landmarks, outline)[outline > 0].mean() > 0.9, "a plain forehead is pasted"


def test_the_shading_a_model_draws_before_its_hairline_fades_out_and_the_brows_stay(s1_face):
    """``forehead_shading``: a soft band a quarter darker than the cheeks over the forehead (what a
    small model draws before its hairline) fades out; the brows, the eyes and everything below the
    brows' line keep their weight of 1."""
    crop, landmarks, _ = s1_face
    unit = float(eye_distance(landmarks))
    band = np.zeros(crop.shape[:2], np.uint8)
    top = landmarks[17:27, 1].min()
    cv2.rectangle(band, (round(landmarks[17, 0]), round(top - 0.9 * unit)), (round(landmarks[26, 0]), round(top - 0.5 * unit)), 1, -1)
    drawn = crop.copy()
    drawn[band > 0] = (np.median(crop[skin_reference(crop.shape[:2], landmarks)], axis=0) * 0.72).astype(np.uint8)
    shading = forehead_shading(drawn, landmarks)
    assert shading[band > 0].mean() < 0.1, shading[band > 0].mean()
    assert shading[feature_pixels(crop.shape, landmarks)].min() == 1.0
    below = np.mgrid[0:256, 0:256][0] > landmarks[21:23, 1].max() + 2
    assert shading[below].min() == 1.0


def test_the_drawn_forehead_gives_way_to_the_footage_over_a_wider_band_than_the_cheek(s1_face):
    """``drawn_keep``: where the drawn forehead is left out (a lock of the other person's hair over
    it), the drawn face gives way to the footage's forehead over a wider band than where the learned
    mask leaves out a strand of hair on the cheek, so no crisp line runs across the forehead; neither
    lock nor strand is kept, and the eyes, nose and lips are kept whole."""
    crop, landmarks, _ = s1_face
    lock = fringe(crop.shape, landmarks, 1, 0.6)
    strand = np.zeros(crop.shape[:2], np.uint8)
    cv2.polylines(strand, [np.round(landmarks[2:6] + (landmarks[30] - landmarks[2:6]) * 0.2).astype(np.int32)], False, 1, 15)
    keep = drawn_keep(1 - strand.astype(np.float32), 1 - lock.astype(np.float32))

    def transition(hair: np.ndarray) -> int:
        """Pixels from the hair's edge over which the kept share climbs from 5 % to 95 %."""
        distance = cv2.distanceTransform((~hair).astype(np.uint8), cv2.DIST_L2, 5)
        near = (distance > 0) & (distance < 20) & ~lock & (strand == 0)
        levels = [keep[near & (distance > d) & (distance <= d + 1)].mean() for d in range(20)]
        return sum(0.05 < level < 0.95 for level in levels)

    forehead, cheek = transition(lock), transition(strand > 0)
    assert forehead >= cheek + 2, (forehead, cheek)
    for hair in (lock, strand > 0):
        assert keep[cv2.erode(hair.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0].max() < 0.05
    features = np.zeros(crop.shape[:2], np.uint8)
    for indices in (range(36, 42), range(42, 48), range(48, 60), range(27, 36)):
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(landmarks[list(indices)]).astype(np.int32)), 1)
    assert keep[features > 0].min() > 0.99


def test_the_footages_cheek_shown_where_the_drawn_face_has_hair_takes_the_drawn_faces_tone(s1_face):
    """Where the drawn face (here the s1 face in another skin tone) has hair down its cheek, convert
    shows the footage's own cheek (``blend.fill_from_footage``) shifted to the drawn face's tone, so
    that it meets the drawn cheek without a seam; the footage's own hair (s1's fringe) is shown as it
    is, and the rest of the face is the drawn one."""
    crop, landmarks, outline = s1_face
    toned = np.clip(crop.astype(np.float32) * 0.8 + (40, 16, 0), 0, 255).astype(np.uint8)
    strand = np.zeros(crop.shape[:2], np.uint8)
    cv2.polylines(strand, [np.round(landmarks[2:6] + (landmarks[30] - landmarks[2:6]) * 0.2).astype(np.int32)], False, 1, 15)
    lock = fringe(crop.shape, landmarks, 1, 0.6)  # over s1's own fringe
    drawn = with_hair(toned, (strand > 0) | lock, 1.0)
    keep = prepare_mask(1 - ((strand > 0) | lock).astype(np.float32), DRAWN_ERODE, DRAWN_BLUR)
    skin = skin_mask(crop, landmarks, outline).astype(np.float32) / 255
    inner = inner_face(crop.shape[:2], landmarks, INNER_MARGIN, 0.0)
    pasted = fill_from_footage(drawn, crop, keep, skin, skin * inner, scale=1.0).astype(np.float32)
    cheek = cv2.erode(strand, np.ones((9, 9), np.uint8)) > 0
    off_tone, as_filmed = (np.median(np.abs(image - toned).mean(axis=2)[cheek]) for image in (pasted, crop.astype(np.float32)))
    assert off_tone < as_filmed / 3, (off_tone, as_filmed)
    own_hair = (keep < 0.001) & (cv2.dilate(skin, np.ones((9, 9), np.uint8)) == 0)
    assert own_hair.sum() > 100 and np.abs(pasted - crop)[own_hair].max() <= 1, "the footage's hair is shown as filmed"
    assert np.abs(pasted - drawn)[keep > 0.999].max() <= 1, "the rest is the drawn face"


def test_the_footages_forehead_shown_where_the_drawn_ones_hair_is_left_out_takes_the_drawn_foreheads_tone(s1_face):
    """Where the drawn face (s1's face in another complexion, drawn darker above the brows, as a
    model shades towards its hairline) has a lock of hair over the forehead, the footage's forehead
    shown there (``blend.fill_from_footage``, measured over ``tone_measured``) takes the tone of the
    drawn forehead beside it, not that of the drawn cheeks, which left a lighter patch."""
    crop, landmarks, outline = s1_face
    toned = crop.astype(np.float32) * 0.85 + (30, 12, 0)
    toned[above_brows(256, landmarks)] -= 25
    toned = np.clip(toned, 0, 255).astype(np.uint8)
    lock = fringe(crop.shape, landmarks, -1, 0.8)
    drawn = with_hair(toned, lock, 1.0)
    keep = drawn_keep(np.ones(crop.shape[:2], np.float32), 1 - lock.astype(np.float32))
    skin = skin_mask(crop, landmarks, outline).astype(np.float32) / 255
    shown = (cv2.erode(lock.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & (skin > 0.99)
    assert shown.sum() > 100, shown.sum()

    def off_tone(measured: np.ndarray) -> float:
        pasted = fill_from_footage(drawn, crop, keep, skin, skin * measured, scale=1.0).astype(np.float32)
        return float(np.median(np.abs(pasted - toned).mean(axis=2)[shown]))

    inner = inner_face(crop.shape[:2], landmarks, INNER_MARGIN, 0.0).astype(np.float32)
    assert off_tone(tone_measured(crop.shape[:2], landmarks)) < off_tone(inner) / 2, \
        (off_tone(tone_measured(crop.shape[:2], landmarks)), off_tone(inner))


def test_keep_fringe_leaves_the_footages_hair_above_the_brows_as_filmed(trained_workspace, s1_clips):
    """``ReplaceSettings.keep_fringe``: above the brows, where the footage's own crop is not skin
    (s1's fringe), the output frame is the input as filmed; without it the new forehead is pasted
    over the fringe; either way the face below is replaced."""
    frame = next(islice(read_frames(s1_clips[-1]), 10, None)).image
    analyzer = FaceAnalyzer(face_size=128)
    swapper = load_swapper(trained_workspace, device="cpu")
    identity = load_faceset(trained_workspace / "a" / "faces").identity()
    changes = {}
    for keep_fringe in (False, True):
        replacer = FaceReplacer(analyzer, IdentityTracker(identity, analyzer.encoder), swapper, "b",
                                ReplaceSettings(keep_fringe=keep_fringe, detail=0.0))
        located = replacer.locate(Frame(0, 0.0, frame))
        output = replacer.render([frame], [located])[0]
        crop, size = warp_face(frame, located.matrix, 128), analyzer.face_size
        landmarks = transform_points(located.landmarks, located.matrix)
        outline = face_mask(landmarks, size)
        hair = (crop_skin(crop, landmarks, outline) < 0.01) & above_brows(size, landmarks) & (outline > 0)
        hair = cv2.erode(hair.astype(np.uint8), np.ones((5, 5), np.uint8))
        inner = cv2.erode(outline, np.ones((25, 25), np.uint8)) & ~above_brows(size, landmarks)
        change = np.abs(warp_face(output, located.matrix, size).astype(int) - crop).max(axis=2)
        changes[keep_fringe] = float(change[hair > 0].mean()), float(change[inner > 0].mean())
        assert (hair > 0).sum() > 40, "s1's fringe lies over his forehead"
    assert changes[True][0] < 2 < 8 < changes[False][0], changes
    assert min(changes[True][1], changes[False][1]) > 8, "the face below the brows is replaced either way"

