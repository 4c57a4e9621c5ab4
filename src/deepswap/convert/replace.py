"""The per-frame face replacement of convert: find the person, align, swap (batched), blend back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..faces import (Face, FaceAnalyzer, IdentityTracker, alignment_matrix, face_mask, face_region, skin_mask,
                     transform_points, warp_face)
from ..faces.skin import INNER_MARGIN, inner_face, skin_reference, tested_band
from ..train import Swapper
from ..video import CutDetector, Frame
from .blend import fill_from_footage, paste_face, prepare_mask, region_window
from .color import match_color
from .eyelids import EyelidFollower, crop_box
from .mouth import follow_lips, keep_interior
from .options import ReplaceSettings
from .smoothing import LandmarkSmoother, MaskSmoother


DETAIL_RESOLUTION = 112  # pixels across the face region: the footage's detail finer than this is laid over the new face
FINEST_SHARE = 0.5  # ... but on a large face only the frame's finest octave
LEARNED_ERODE = 0.005  # of the crop: how far the new face stays from what the learned mask says is not face
LEARNED_BLUR = 0.015  # of the crop: the feather of the learned mask's edge
LEARNED_RAMP = (0.5, 0.8)  # face probabilities below the first count as no face, above the second as all face
DRAWN_ERODE = 0.01  # of the crop: how far inside the drawn face's own outline (where its hair begins) it is kept
DRAWN_BLUR = 0.02  # of the crop: the feather from the drawn face to the footage's own skin (within DRAWN_ERODE)
FOREHEAD_DARK = (0.8, 0.92)  # of the drawn cheeks' lightness: a drawn forehead this dark is left out where the footage is skin
FOREHEAD_BLUR = 0.04  # of the crop: the wider feather where the drawn forehead is left out (no hard edge across the brow)


@dataclass
class Located:
    """The replaced person's face in one frame: smoothed landmarks and the frame→crop matrix;
    ``cut``: the frame begins a new shot (nothing is carried over from the frames before)."""

    face: Face
    landmarks: np.ndarray
    matrix: np.ndarray
    cut: bool = False


class FaceReplacer:
    """Replaces one person's face through a sequence of frames with another person's generated face.

    ``locate`` runs per frame (in order: it tracks the face and smooths its landmarks over time);
    ``render`` takes a batch of located frames and runs the model once for all of them.
    """

    def __init__(self, analyzer: FaceAnalyzer, tracker: IdentityTracker, swapper: Swapper, to: str,
                 settings: ReplaceSettings, widest_mouth: float = math.inf,
                 eyelids: EyelidFollower | None = None) -> None:
        self.analyzer = analyzer
        self.tracker = tracker
        self.swapper = swapper
        self.to = to
        self.settings = settings
        self.widest_mouth = widest_mouth  # the other person's widest mouth opening (``convert.mouth``)
        self.eyelids = eyelids if settings.eyelids == "follow" else None  # both persons' usual eye openness
        self.size = analyzer.face_size
        self.smoother = LandmarkSmoother()
        self.mask_smoother = MaskSmoother()
        self.cuts = CutDetector()
        region = face_region(self.size, swapper.coverage)
        self.region_side = region[2]
        self.drawn_scale = min(1.0, swapper.model.output_resolution / self.region_side)  # drawn pixels per crop pixel
        self.model_pixel = self.region_side / swapper.resolution  # crop pixels per pixel the model sees
        self.window = region_window(self.size, region, settings.mask_blur)

    def reset(self) -> None:
        """Forget the tracked face (between unrelated images)."""
        self.tracker.reset()
        self.smoother.lost()
        self.mask_smoother.lost()
        self.cuts.reset()

    def locate(self, frame: Frame) -> Located | None:
        """The replaced person's face in this frame, or None (the frame then passes through unchanged).
        At a cut between shots the face is tracked and smoothed afresh."""
        cut = self.cuts(frame.image)
        if cut:
            self.tracker.reset()
            self.smoother.lost()
        detections = self.analyzer.detect(frame.image)
        detection, _ = self.tracker.select(frame.image, detections)
        if detection is None:
            self.smoother.lost()
            return None
        face = self.analyzer.describe(frame.image, detection)
        landmarks = self.smoother(face.landmarks, frame.time) if self.settings.smooth else face.landmarks
        return Located(face, landmarks, alignment_matrix(landmarks, self.size), cut)

    def render(self, frames: list[np.ndarray], located: list[Located | None]) -> list[np.ndarray]:
        """The frames with every located face replaced; frames without one are returned as they are."""
        todo = [i for i, where in enumerate(located) if where is not None]
        if not todo:
            self.mask_smoother.lost()
            return list(frames)
        crops = np.stack([warp_face(frames[i], located[i].matrix, self.size) for i in todo])
        generated, generated_masks = self.swapper.swap(crops, to=self.to)
        crop_landmarks = [transform_points(located[i].landmarks, located[i].matrix) for i in todo]
        generated = np.stack([self.follow_expression(face, located[i], points)
                              for face, i, points in zip(generated, todo, crop_landmarks)])
        landmark_masks = [face_mask(points, self.size) for points in crop_landmarks]
        learned = self.footage_probabilities(crops)
        drawn = self.drawn_face(generated) if self.settings.drawn_face_only else None
        output = list(frames)
        for k, i in enumerate(todo):
            where = located[i]
            if where.cut or i != (todo[k - 1] + 1 if k else 0):  # a new shot, or frames without the face came before:
                self.mask_smoother.lost()  # the learned mask starts anew
            landmark_mask = landmark_masks[k].astype(np.float32) / 255
            mask = landmark_mask if generated_masks is None else np.minimum(generated_masks[k], _dilated(landmark_mask))
            mask = prepare_mask(mask, self.settings.mask_erode, self.settings.mask_blur) * self.window
            if learned is not None:
                mask *= self.learned_mask(learned[k])
            mask = keep_interior(mask, crop_landmarks[k], self.settings.mouth_interior, self.widest_mouth)
            skin = None
            if drawn is not None or self.settings.keep_fringe:
                skin = footage_skin(crops[k], crop_landmarks[k], landmark_masks[k],
                                    None if learned is None else learned[k])
            if self.settings.keep_fringe:
                mask *= clear_of_fringe(skin, crop_landmarks[k])
            face = self.matched_face(generated[k], crops[k], mask, None if drawn is None else drawn[k],
                                     crop_landmarks[k], landmark_masks[k], skin)
            output[i] = paste_face(frames[i], face, mask, where.matrix, self.settings.blend, self.settings.detail,
                                   detail_scale(where.matrix, self.region_side))
        if todo[-1] != len(frames) - 1:
            self.mask_smoother.lost()
        return output

    def follow_expression(self, drawn: np.ndarray, where: Located, crop_landmarks: np.ndarray) -> np.ndarray:
        """The drawn face with its eyes closed as far as the located face's are (``convert.eyelids``)
        and its mouth opened as far (``convert.mouth``; ``crop_landmarks``: the located face's
        smoothed landmarks in the crop, as the mouth interior's), each as drawn where it is off."""
        box = crop_box(where.face.box, where.matrix)
        if self.eyelids is not None:
            drawn = self.eyelids.follow(drawn, where.face.landmarks, box, self.analyzer.landmarker, self.model_pixel)
        if self.settings.lips == "follow":
            drawn = follow_lips(drawn, crop_landmarks, box, self.analyzer.landmarker)
        return drawn

    def footage_probabilities(self, crops: np.ndarray) -> np.ndarray | None:
        """Per crop, the learned mask's face probability (N×S×S): what is in front of the face (a hand,
        a microphone) is not face. None when the learned mask is off or the model has none."""
        return self.swapper.face_masks(crops) if self.settings.learned_mask else None

    def matched_face(self, generated: np.ndarray, crop: np.ndarray, mask: np.ndarray, drawn: np.ndarray | None,
                     landmarks: np.ndarray, landmark_mask: np.ndarray, skin: np.ndarray | None) -> np.ndarray:
        """A drawn face colour-matched to its crop inside ``mask``. With ``drawn`` (its face probability,
        ``drawn_face``), what is not face in it — hair the model drew beside the cheeks or over the
        forehead, and, where the footage is skin, the shading it draws before that hairline
        (``forehead_shading``) — is left out of the match and replaced by the footage's own crop,
        toned where that is skin (``skin``: ``footage_skin``) to meet the new face as the inner faces
        and foreheads meet (``tone_measured``, ``blend.fill_from_footage``): the footage's cheek or
        forehead shows there, its own hair as filmed, never the other person's hair, and with no seam
        in tone where the drawn face ends.
        Over the forehead that edge is feathered wider (``FOREHEAD_BLUR``): it runs across the face,
        where a crisp line (a fringe cut off, or the dark rim of the shading left in) would show."""
        if drawn is None:
            return match_color(generated, crop, mask, self.settings.color)
        forehead = np.minimum(forehead_skin(generated, landmarks, landmark_mask),
                              np.maximum(forehead_shading(generated, landmarks), 1 - skin))
        keep = drawn_keep(drawn, forehead)
        face = match_color(generated, crop, mask * keep, self.settings.color)
        return fill_from_footage(face, crop, keep, skin, skin * tone_measured(crop.shape[:2], landmarks), self.drawn_scale)

    def drawn_face(self, generated: np.ndarray) -> np.ndarray:
        """Per drawn face, 1 where it is face and 0 where it is hair or background (N×S×S): the learned
        mask run on it, made as decisive as on the footage (``LEARNED_RAMP``); all 1 when the model has
        none. Its forehead is tested apart (``matched_face``): the learned mask's labels count the
        forehead's hair as face."""
        learned = self.swapper.face_masks(generated)
        return np.ones(generated.shape[:3], np.float32) if learned is None else decisive(learned)

    def learned_mask(self, probabilities: np.ndarray) -> np.ndarray:
        """The learned face mask of one crop as the final mask's last factor: smoothed over time, made
        decisive (``LEARNED_RAMP``: an unsure "face" would let A show through, and a hand's palm,
        which looks like skin, is often only half sure), then pulled back from what is not face by
        ``LEARNED_ERODE`` and feathered over ``LEARNED_BLUR`` (narrower than the face's own edge, so
        an occluder keeps its outline and little of A shows around it)."""
        if self.settings.smooth:
            probabilities = self.mask_smoother(probabilities)
        return prepare_mask(decisive(probabilities), LEARNED_ERODE, LEARNED_BLUR)


def decisive(probabilities: np.ndarray) -> np.ndarray:
    """Learned face probabilities stretched over ``LEARNED_RAMP``: below it no face, above it all face."""
    low, high = LEARNED_RAMP
    return np.clip((probabilities - low) / (high - low), 0, 1)


def drawn_keep(drawn: np.ndarray, forehead: np.ndarray) -> np.ndarray:
    """Where a drawn face is kept (S×S, 0..1): its face probability (``drawn``) pulled in by
    ``DRAWN_ERODE`` and feathered over ``DRAWN_BLUR``, and its forehead test (``forehead``: 0 on the
    hair or shading left out above the brows) pulled in as far and feathered over ``FOREHEAD_BLUR``."""
    return np.minimum(prepare_mask(drawn, DRAWN_ERODE, DRAWN_BLUR), prepare_mask(forehead, DRAWN_ERODE, FOREHEAD_BLUR))


def tone_measured(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """H×W float32, 1 where the drawn face's tone against the footage's is measured (where both are
    skin) for ``blend.fill_from_footage``: the inner face (``faces.skin.inner_face``) and the forehead
    above the brows. A model often draws its forehead darker than its cheeks, shading towards its
    hairline; the footage's forehead shown where the drawn one is left out then takes the tone of the
    drawn forehead beside it, not the cheeks', and no lighter patch shows there."""
    return (inner_face(shape, landmarks, INNER_MARGIN, 0.0) | above_brows(shape[0], landmarks)).astype(np.float32)


def detail_scale(matrix: np.ndarray, region_side: float) -> float:
    """The share of the frame's resolution below which the footage's detail is left out, for a face
    whose model region spans ``region_side`` crop pixels: ``DETAIL_RESOLUTION`` pixels across the
    face's region in the frame, but never less than ``FINEST_SHARE`` (on a large face, only the
    frame's finest octave: grain and texture, no features); ≥ 1 when the frame holds nothing finer."""
    frame_side = region_side / math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return max(DETAIL_RESOLUTION / frame_side, FINEST_SHARE)


def _dilated(mask: np.ndarray) -> np.ndarray:
    """The landmark mask grown by 8 % of the crop: a bound for the model's own mask."""
    return prepare_mask(mask, -0.08, 0.0)


def footage_skin(crop: np.ndarray, landmarks: np.ndarray, landmark_mask: np.ndarray,
                 learned: np.ndarray | None) -> np.ndarray:
    """S×S float32, 0..1: where the footage's crop (RGB, its 68 crop landmarks and their
    ``face_mask``) is face skin (``crop_skin``) and, with ``learned`` (its learned face probability),
    face to the learned mask too (a hand is not the face's skin), feathered over ``DRAWN_BLUR``."""
    skin = crop_skin(crop, landmarks, landmark_mask)
    if learned is not None:
        skin = np.minimum(skin, learned)
    return prepare_mask(skin, 0.0, DRAWN_BLUR)


def clear_of_fringe(skin: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """S×S float32, 0..1: 0 above the line through the brows' inner ends (``above_brows``) where
    the footage is not skin (``footage_skin``: its own fringe or hairline), 1 elsewhere, feathered
    over ``DRAWN_BLUR`` (``ReplaceSettings.keep_fringe``)."""
    return prepare_mask(np.where(above_brows(skin.shape[0], landmarks), skin, 1.0), 0.0, DRAWN_BLUR)


def crop_skin(crop: np.ndarray, landmarks: np.ndarray, landmark_mask: np.ndarray) -> np.ndarray:
    """S×S float32, 1 where a crop (RGB: the footage's or a drawn face; its 68 crop landmarks and
    their ``face_mask``) is face skin (``faces.skin_mask``), tested at half the crop's size: it is
    feathered over more than a pixel anyway, and the test costs a quarter as much."""
    size = crop.shape[0]
    half = (size // 2, size // 2)
    skin = skin_mask(cv2.resize(crop, half, interpolation=cv2.INTER_AREA), landmarks * (half[0] / size),
                     cv2.resize(landmark_mask, half, interpolation=cv2.INTER_NEAREST))
    return cv2.resize(skin.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_LINEAR)


def above_brows(size: int, landmarks: np.ndarray) -> np.ndarray:
    """S×S bool: the part of a crop above the line through the brows' inner ends (68 crop landmarks)."""
    left, right = landmarks[21], landmarks[22]
    across = right - left
    down = np.array([-across[1], across[0]]) / max(float(np.linalg.norm(across)), 1e-6)
    across_x = (np.arange(size) - left[0]) * down[0]  # the half-plane test is a sum of a row and a column term
    across_y = (np.arange(size) - left[1]) * down[1]
    return across_x[None, :] + across_y[:, None] <= 0


def forehead_skin(face: np.ndarray, landmarks: np.ndarray, landmark_mask: np.ndarray) -> np.ndarray:
    """S×S float32 for a drawn face (an RGB crop, its 68 crop landmarks and their ``face_mask``): 0
    where it is not skin above the line through the brows' inner ends (``crop_skin``: the other
    person's fringe, hairline and temple hair), 1 elsewhere (below it the learned mask decides)."""
    skin = crop_skin(face, landmarks, landmark_mask) > 0.5
    return (~above_brows(face.shape[0], landmarks) | skin).astype(np.float32)


def forehead_shading(face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """S×S float32 for a drawn face (an RGB crop and its 68 crop landmarks): above the line through
    the brows' inner ends and away from the brows (``faces.skin.tested_band``), 1 where it is as light
    as its cheeks, fading to 0 as it darkens past ``FOREHEAD_DARK`` of their lightness (the soft
    shading a small model draws before its hairline); 1 elsewhere."""
    lightness = cv2.cvtColor(face, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    relative = lightness / max(float(np.median(lightness[skin_reference(face.shape[:2], landmarks)])), 1.0)
    low, high = FOREHEAD_DARK
    light = np.clip((relative - low) / (high - low), 0, 1)
    tested = above_brows(face.shape[0], landmarks) & tested_band(face.shape[:2], landmarks)
    return np.where(tested, light, 1.0).astype(np.float32)
