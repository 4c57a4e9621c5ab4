"""The new face's eyelids follow the replaced person's (convert --eyelids), on a synthetic eye and real GRID blinks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepswap.convert import Converter, ReplaceSettings
from deepswap.convert.eyelids import (COARSE, READING_KNOTS, REACH, EyelidFollower, crop_box, eye_frame, lid_shift,
                                      lower_lid_skin, warp_window)
from deepswap.convert.warp import inverse_piecewise
from deepswap.evaluate.metrics import CLOSED_EYES, FOLLOWED_MARGIN
from deepswap.faces import Detection, FaceAnalyzer
from deepswap.faces.expression import EYES, eye_ratios
from deepswap.video import Frame, read_frames

# An eye 40 px wide with its corners at y = 100 and its lids 6 px above and below: a gap of 0.3 widths.
EYE = np.array([[100, 100], [113.3, 94], [126.7, 94], [140, 100], [126.7, 106], [113.3, 106]], np.float32)
BLINK_FRAME = 44  # of the first s1 clip: both eyes shut (about 0.43 of their usual openness)
SHUT = CLOSED_EYES + FOLLOWED_MARGIN  # of the usual openness: under it evaluate counts an output eye closed


def test_the_inverse_of_a_piecewise_linear_map_sends_each_target_knot_to_its_source():
    sources, targets = np.array([-1.0, 0.0, 1.0, 2.0]), np.array([-1.0, 0.5, 0.6, 2.0])
    values = np.array([-3.0, -1.0, 0.5, 0.55, 0.6, 1.3, 2.0, 5.0])
    found = inverse_piecewise(values, sources[:, None], targets[:, None])
    assert found == pytest.approx([-3.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 5.0])


def test_the_lid_warp_closes_the_eye_folds_nothing_and_leaves_the_face_beyond_it_alone():
    xs, ys = np.meshgrid(np.arange(240, dtype=np.float32), np.arange(200, dtype=np.float32))
    shift_x, shift_y = lid_shift(EYE, 0.1, xs, ys)
    assert np.abs(shift_x).max() < 1e-4  # an upright eye: pixels move only up and down
    source_y = ys + shift_y
    assert (np.diff(source_y, axis=0) > 0).all()  # down every column the source still runs downwards: no fold
    # the lids' new places (at the landmarks' columns): upper 3/4 of the 0.2-width closing down, lower 1/4 up
    assert source_y[100, 113] == pytest.approx(94, abs=0.3)
    assert source_y[104, 127] == pytest.approx(106, abs=0.3)
    far = (ys < 94 - REACH * 40 - 3) | (ys > 106 + REACH * 40 + 3) | (xs < 99) | (xs > 141)
    assert np.abs(shift_y[far]).max() < 1e-4
    assert np.abs(shift_y[~far]).max() > 5


@pytest.mark.parametrize("roll", [0.0, 35.0])
def test_the_lid_warp_stays_inside_the_window_convert_remaps(roll):
    turn = np.radians(roll)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    eye = (EYE - (120, 100)) @ rotation.T + (120, 100)
    xs, ys = np.meshgrid(np.arange(240, dtype=np.float32), np.arange(200, dtype=np.float32))
    shift_x, shift_y = lid_shift(eye, 0.0, xs, ys)
    (x0, y0), (x1, y1) = warp_window(eye, (200, 240))
    outside = np.ones(xs.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.hypot(shift_x, shift_y)[outside].max() < 1e-4 and np.hypot(shift_x, shift_y).max() > 5


def _eyes(ratios: tuple[float, float]) -> np.ndarray:
    """68 landmarks whose eyes (the only points set) open ``ratios`` of their widths."""
    points = np.zeros((68, 2))
    for offset, (indices, ratio) in enumerate(zip(EYES, ratios)):
        eye = EYE.astype(np.float64).copy()
        eye[[1, 2], 1] = 100 - 20 * ratio
        eye[[4, 5], 1] = 100 + 20 * ratio
        points[list(indices)] = eye + (60 * offset, 0)
    return points


def test_the_target_gap_is_the_other_persons_usual_times_how_open_the_replaced_persons_eye_reads():
    follower = EyelidFollower(usual_replaced=(0.3, 0.3), usual_other=(0.25, 0.2))
    assert follower.target_ratios(_eyes((0.3, 0.36))) == pytest.approx([0.25, 0.2])  # wider than usual: as drawn
    (shut, narrowed, open_from), (_, narrowed_open, _) = READING_KNOTS
    winking = follower.target_ratios(_eyes((shut * 0.3, 0.3)))  # the predictor's reading of a shut eye
    assert winking == pytest.approx([0.0, 0.2])
    assert follower.target_ratios(_eyes((0.4 * 0.3, 0.3)))[0] == 0.0  # read more shut still: shut, never less
    looking_down = follower.target_ratios(_eyes((narrowed * 0.3, open_from * 0.3)))
    assert looking_down == pytest.approx([0.25 * narrowed_open, 0.2])
    between = follower.target_ratios(_eyes(((shut + narrowed) / 2 * 0.3, 0.3)))
    assert between[0] == pytest.approx(0.25 * narrowed_open / 2)


@pytest.fixture(scope="module")
def blink(s1_clips):
    """An open-eyed frame and a blink of the first s1 clip, their faces, and the clip's usual openness per eye."""
    analyzer = FaceAnalyzer()  # 256 px crops, as convert's by default
    frames = [frame.image for frame in read_frames(s1_clips[0])]
    faces = [analyzer.analyze(image)[0] for image in frames]
    ratios = eye_ratios(np.array([face.landmarks for face in faces]))
    usual = np.median(ratios, axis=0)
    assert (ratios[BLINK_FRAME] < 0.6 * usual).all()
    open_index = int(np.argmax(ratios.mean(axis=1) - np.abs(np.arange(len(frames)) - BLINK_FRAME) * 1e-3))
    return analyzer, frames, faces, (float(usual[0]), float(usual[1])), open_index


def _openness(analyzer: FaceAnalyzer, crop: np.ndarray, box: np.ndarray) -> np.ndarray:
    detection = Detection(box, np.zeros((5, 2)), 1.0)
    return eye_ratios(analyzer.landmarker.predict(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), detection))


def test_a_real_open_eye_closes_with_a_blink_and_alone_with_a_wink(blink):
    """A filmed open-eyed face stands in for the drawn one: the predictor reads its eyes shut after the
    warp to the blink's landmarks, and after a wink (only the first eye shut) the second eye is untouched."""
    analyzer, frames, faces, usual, open_index = blink
    face = faces[open_index]
    crop, box = face.crop(frames[open_index]), crop_box(face.box, face.matrix)
    follower = EyelidFollower(usual, usual)
    before = _openness(analyzer, crop, box)
    closed = follower.follow(crop, faces[BLINK_FRAME].landmarks, box, analyzer.landmarker)
    after = _openness(analyzer, closed, box)
    assert (after < SHUT * np.asarray(usual)).all() and (before > 0.85 * np.asarray(usual)).all(), (before, after)
    wink_landmarks = face.landmarks.copy()
    wink_landmarks[list(EYES[0])] = faces[BLINK_FRAME].landmarks[list(EYES[0])]
    winked = follower.follow(crop, wink_landmarks, box, analyzer.landmarker)
    after = _openness(analyzer, winked, box)
    # the predictor's shape model ties the eyes together: a shut eye beside an open one reads less shut than in a blink
    assert after[0] < 0.8 * usual[0] and after[1] > 0.85 * usual[1], after
    second_eye = face.crop_landmarks()[list(EYES[1])]
    (x0, y0), (x1, y1) = second_eye.min(axis=0).astype(int) - 6, second_eye.max(axis=0).astype(int) + 6
    assert np.array_equal(winked[y0:y1, x0:x1], crop[y0:y1, x0:x1])
    assert follower.follow(crop, face.landmarks, box, analyzer.landmarker) is crop  # open eyes: as drawn


def _drawn_coarsely(crop: np.ndarray, pixel: float) -> np.ndarray:
    """A filmed crop as a model would draw it seeing one pixel per ``pixel`` crop pixels."""
    size = crop.shape[0]
    small = cv2.resize(crop, (round(size / pixel), round(size / pixel)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def test_under_a_shut_lid_the_smeared_band_turns_to_skin_and_nothing_else_changes(blink):
    """On a coarsely drawn blink the band just under each lid line is brought towards the skin below
    it (lighter, never darker); the lid line itself, the eye's corners and the face around are as drawn;
    an eye that is not nearly shut is left alone."""
    analyzer, frames, faces, usual, _ = blink
    face = faces[BLINK_FRAME]
    drawn = _drawn_coarsely(face.crop(frames[BLINK_FRAME]), COARSE[1])
    eye = face.crop_landmarks()[list(EYES[0])]
    shown = lower_lid_skin(drawn, eye, 0.0, usual[0], 0.7)
    feature, upper, lower = eye_frame(eye)
    ys, xs = np.mgrid[:drawn.shape[0], :drawn.shape[1]].astype(np.float64)
    u, v = feature.coordinates(xs, ys)
    line = lower - 0.25 * (lower - upper)
    grey = lambda image: image.astype(float).mean(axis=2)
    band = (np.abs(u) < 0.25) & (v > line + 0.08) & (v < line + 0.14)
    assert (grey(shown) - grey(drawn))[band].mean() > 5
    assert (grey(shown) >= grey(drawn) - 0.51).all()
    changed = np.abs(shown.astype(int) - drawn).max(axis=2) > 0
    assert (v[changed] > line + 0.04).all() and (v[changed] < line + 0.2).all() and (np.abs(u[changed]) < 0.5).all()
    assert lower_lid_skin(drawn, eye, 0.25 * usual[0], usual[0], 0.7) is drawn
    assert lower_lid_skin(drawn, eye, 0.0, usual[0], 0.0) is drawn


def test_the_lower_lid_s_skin_is_shown_only_on_a_coarsely_drawn_face(blink):
    """A filmed open-eyed face drawn as coarsely as a 64-px model draws at 256-px crops, closed to the
    blink's landmarks: seen as sharp as the crop or nearly (up to ``COARSE``'s first value) only the
    lids move; seen as coarse as it is, the band under them is lighter too, and nothing darker."""
    analyzer, frames, faces, usual, open_index = blink
    face = faces[open_index]
    crop, box = face.crop(frames[open_index]), crop_box(face.box, face.matrix)
    follower = EyelidFollower(usual, usual)
    coarse = _drawn_coarsely(crop, COARSE[1])
    sharp, nearly_sharp, shown = (follower.follow(coarse, faces[BLINK_FRAME].landmarks, box, analyzer.landmarker, pixel)
                                  for pixel in (1.0, COARSE[0], COARSE[1]))
    assert np.array_equal(sharp, nearly_sharp)
    lighter = shown.astype(float).mean(axis=2) - sharp.astype(float).mean(axis=2)
    assert lighter.max() > 10 and lighter.min() > -0.51


def test_convert_warps_the_drawn_eyes_on_a_blink_and_leaves_open_eyes_as_drawn(trained_workspace, blink):
    """In convert the warp runs on a blink, around the eyes only, and not on open eyes. (That it shuts
    an eye is tested on a real face above: the tiny model's blurred eyes are no measure of it.)"""
    analyzer, frames, faces, _, open_index = blink
    converter = Converter(trained_workspace)
    replacers = {eyelids: converter.replacer("a2b", ReplaceSettings(eyelids=eyelids, lips="off", learned_mask=False,
                                                                   drawn_face_only=False, detail=0.0))
                 for eyelids in ("follow", "off")}  # the lips' warp reads the drawn face after the eyelids': off

    def converted(index: int) -> dict[str, np.ndarray]:
        return {eyelids: replacer.render([frames[index]], [replacer.locate(Frame(0, 0.0, frames[index]))])[0]
                for eyelids, replacer in replacers.items()}

    opened = converted(open_index)
    assert np.array_equal(opened["follow"], opened["off"])
    shut = converted(BLINK_FRAME)
    changed = np.abs(shut["follow"].astype(int) - shut["off"]).max(axis=2) > 8
    eyes = faces[BLINK_FRAME].landmarks[36:48]
    reach = np.ptp(eyes[:, 0]) * 0.2
    ys, xs = np.nonzero(changed)
    assert len(ys) > 30 and (eyes[:, 0].min() - reach <= xs).all() and (xs <= eyes[:, 0].max() + reach).all()
    assert (eyes[:, 1].min() - 2 * reach <= ys).all() and (ys <= eyes[:, 1].max() + 2 * reach).all()
