"""The metrics of ``deepswap evaluate``: pure functions over arrays, each usable on its own (see the
package docstring for what each measures)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..faces import FIT_POINTS, face_mask, transform_points, umeyama
from ..faces.expression import EYES, eye_distance, eye_openness, mouth_open  # noqa: F401 (metrics of this module too)
from ..faces.skin import inner_face, skin_reference
from ..provenance.watermark import Watermarker, flat_area_visibility
from ..train import ssim_map

PSNR_CAP = 100.0  # dB: what identical faces score
VISIBILITY_ID = "00000000"  # any output id: how visible the mark is does not depend on it
EDGE_MARGIN = 0.2  # eye-corner distances: how far inside the picture a face's landmarks must lie to count as whole


def identity_transfer(embeddings: np.ndarray, centre_a: np.ndarray, centre_b: np.ndarray) -> dict[str, float]:
    """Identity of swapped faces from their unit embeddings (N×D; a NaN row is a face not found in
    the output, which counts as not transferred): ``transfer``, the share closer (cosine) to B's
    centre than to A's, and the mean cosine similarity to each centre over the faces found."""
    embeddings = np.asarray(embeddings, np.float64).reshape(-1, len(centre_b))
    found = embeddings[np.isfinite(embeddings).all(axis=1)]
    similarity_a, similarity_b = found @ np.asarray(centre_a, np.float64), found @ np.asarray(centre_b, np.float64)
    return {"transfer": float((similarity_b > similarity_a).sum() / len(embeddings)) if len(embeddings) else math.nan,
            "similarity_b": finite_mean(similarity_b), "similarity_a": finite_mean(similarity_a)}


def _weights(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return mask.astype(np.float64) / 255 if mask.dtype == np.uint8 else mask.astype(np.float64)


def masked_ssim(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two H×W×3 uint8 images (Gaussian window 11, σ 1.5, the training loss's), averaged
    over the pixels of ``mask`` (H×W, uint8 0..255 or float 0..1, used as weights)."""
    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(array, np.float32) / 255).permute(2, 0, 1)[None]

    values = ssim_map(tensor(image), tensor(reference))[0].mean(dim=0).double().numpy()
    weights = _weights(mask)
    return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else math.nan


def masked_psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two H×W×3 uint8 images over the pixels of ``mask``; identical faces score PSNR_CAP."""
    weights = _weights(mask)
    if weights.sum() <= 0:
        return math.nan
    error = ((np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2).mean(axis=2)
    mse = float((error * weights).sum() / weights.sum())
    return min(PSNR_CAP, 10 * math.log10(255 ** 2 / mse)) if mse > 0 else PSNR_CAP


def landmark_jitter(landmarks: np.ndarray) -> float:
    """How much a face's landmarks shake from frame to frame, in eye-corner distances.

    ``landmarks`` is T×68×2 (frame pixels, a NaN row where there was no face). The shake at frame t
    is the mean size of the second difference p[t+1] − 2·p[t] + p[t−1] over the 68 points, so a head
    moving at a steady speed does not count; it is averaged over every run of three frames with a face.
    A still face scores 0.
    """
    points = np.asarray(landmarks, np.float64)
    if len(points) < 3:
        return math.nan
    acceleration = points[2:] - 2 * points[1:-1] + points[:-2]
    shake = np.linalg.norm(acceleration, axis=-1).mean(axis=-1) / eye_distance(points[1:-1])
    return finite_mean(shake)


def landmark_distance(landmarks: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance between the landmarks of two faces (T×68×2 each, NaN rows skipped) after a
    similarity transform of the rigid points (brows, nose, eyes) of each face onto the reference's,
    in eye-corner distances of the reference: what the expression and head pose changed."""
    landmarks, reference = np.asarray(landmarks, np.float64), np.asarray(reference, np.float64)
    distances = []
    for face, target in zip(landmarks, reference):
        if np.isfinite(face).all() and np.isfinite(target).all():
            aligned = transform_points(face, umeyama(face[FIT_POINTS], target[FIT_POINTS]))
            distances.append(np.linalg.norm(aligned - target, axis=1).mean() / eye_distance(target))
    return finite_mean(np.array(distances))


def inside_picture(landmarks: np.ndarray, size: tuple[int, int], margin: float = EDGE_MARGIN) -> np.ndarray:
    """Per face (…×68×2 landmarks, frame pixels), whether all 68 points lie inside a picture of
    ``size`` (width, height), at least ``margin`` eye-corner distances from its edge; False for a NaN
    face. (Of a face cut by the edge, the landmark model still puts the points beyond it just inside.)"""
    points = np.asarray(landmarks, np.float64)
    margin = (margin * eye_distance(points))[..., None, None]
    with np.errstate(invalid="ignore"):
        inside = (points >= margin) & (points < np.asarray(size, np.float64) - margin)
    return inside.all(axis=(-2, -1))


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two series over the entries finite in both; NaN with fewer than three
    such entries or when either series is constant there."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return math.nan
    x, y = x[both] - x[both].mean(), y[both] - y[both].mean()
    scale = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / scale) if scale > 0 else math.nan


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian (3×3) of the grey ``image`` inside ``box`` ([x0, y0, x1, y1], clipped
    to the image): high for crisp eyes, lips and skin texture, low for a blur; NaN for an empty box."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = np.clip(np.asarray(box), 0, [width, height, width, height])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return math.nan
    patch = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    return float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)[1:-1, 1:-1].var())


def watermark_visibility(output: np.ndarray) -> float:
    """How much the watermark convert adds to an output frame (RGB) shows on its flat picture: the
    std in grey levels of the luma change over its flat blocks (``flat_area_visibility``); NaN when
    the frame has none."""
    visibility = flat_area_visibility(output, Watermarker(VISIBILITY_ID).embed(output.copy()))
    return math.nan if visibility is None else visibility


def finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values (NaN when there is none)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def finite_max(values: np.ndarray) -> float:
    """The largest finite value (NaN when there is none)."""
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else math.nan


OCCLUDER_TOLERANCE = 12  # grey levels, every channel: how far an occluder's pixel may move and count as kept
CLOSED_EYES = 0.6  # eye openness, as a share of the clip's median, under which the eyes count as closed
FOLLOWED_MARGIN = 0.05  # more room for the output's eyes: the input's blinks redrawn at 128 px and measured again
WIDEST_MOUTH = 90  # percentile: the "widest mouths" of a clip
RESTING_MOUTH = 10  # percentile: a clip's mouth at rest (closed, or as near as that person's lips come)
JAW_BAND = 0.3  # eye-corner distances inside the face outline along the jaw: where B's hair would fall
FEATURE_MARGIN = 0.15  # eye-corner distances around each eye and the lips left out of the jaw band (not hair)
LIPS = tuple(range(48, 60))  # the outer lip line of 68 landmarks
HAIR_DARKER = 40  # grey levels: how much darker than both the input pixel and the skin an added strand is


def occluder_kept(image: np.ndarray, output: np.ndarray, occluder: np.ndarray,
                  tolerance: int = OCCLUDER_TOLERANCE) -> float:
    """Share of the occluder's pixels (``occluder``: H×W bool, what is in front of the face) that the
    output frame keeps: every channel within ``tolerance`` of the input frame's. NaN for an empty mask."""
    occluder = np.asarray(occluder, bool)
    if not occluder.any():
        return math.nan
    change = np.abs(output.astype(np.int16) - image.astype(np.int16)).max(axis=2)
    return float((change[occluder] <= tolerance).mean())


def hidden_behind(occluder: np.ndarray | None, landmarks: np.ndarray, features: tuple[tuple[int, ...], ...]) -> bool:
    """Whether the occluder (H×W bool, or None: nothing in front) covers any pixel inside the hull
    of any of ``features`` (groups of the face's 68 ``landmarks``): a mouth or eye behind a hand or
    a microphone, whose landmarks the judge can only guess, on the input as on the output."""
    if occluder is None or not np.isfinite(landmarks).all():
        return False
    occluder = np.asarray(occluder, bool)
    area = np.zeros(occluder.shape, np.uint8)
    for feature in features:
        cv2.fillConvexPoly(area, cv2.convexHull(np.round(np.asarray(landmarks)[list(feature)]).astype(np.int32)), 1)
    return bool(occluder[area > 0].any())


def closed_eyes(openness: np.ndarray, threshold: float = CLOSED_EYES) -> np.ndarray:
    """Per face, whether the eyes are closed: ``eye_openness`` under ``threshold`` of its median over
    the series (one person's faces; the openness of open eyes differs between people)."""
    openness = np.asarray(openness, np.float64)
    finite = openness[np.isfinite(openness)]
    if not len(finite):
        return np.zeros(openness.shape, bool)
    with np.errstate(invalid="ignore"):
        return openness < threshold * np.median(finite)


def blinks_followed(input_openness: np.ndarray, output_openness: np.ndarray,
                    margin: float = FOLLOWED_MARGIN) -> tuple[float, int]:
    """Of the input faces with closed eyes (``closed_eyes``), the share whose output face has closed
    eyes too, judged against its own median with ``margin`` more room (``CLOSED_EYES`` + ``margin``:
    a face measured again after being redrawn reads a few per cent more open or less, and a frame
    picked for reading just under the threshold would otherwise fail as often as not), and how many
    closed-eye input faces there were; NaN share when none."""
    input_openness, output_openness = np.asarray(input_openness, np.float64), np.asarray(output_openness, np.float64)
    closed = closed_eyes(input_openness) & np.isfinite(output_openness)
    if not closed.any():
        return math.nan, 0
    return float(closed_eyes(output_openness, CLOSED_EYES + margin)[closed].mean()), int(closed.sum())


def widest_mouth_ratio(input_mouth: np.ndarray, output_mouth: np.ndarray, widest: float = WIDEST_MOUTH,
                       resting: float = RESTING_MOUTH) -> float:
    """How far the output's widest mouths open against the input's, each measured from its own
    resting gap: (the ``widest`` percentile − the ``resting`` percentile) of the output's mouth-open
    ratios over the same of the input's. People's lips part by different amounts at rest, so the
    plain percentiles would compare the faces, not the openings. 1: as wide; NaN when the input's
    mouth never opens beyond its rest."""
    input_mouth, output_mouth = np.asarray(input_mouth, np.float64), np.asarray(output_mouth, np.float64)
    both = np.isfinite(input_mouth) & np.isfinite(output_mouth)
    if not both.any():
        return math.nan
    input_opening, output_opening = (float(np.percentile(series[both], widest) - np.percentile(series[both], resting))
                                     for series in (input_mouth, output_mouth))
    return output_opening / input_opening if input_opening > 0 else math.nan


def jaw_band(landmarks: np.ndarray, shape: tuple[int, ...], width: float = JAW_BAND) -> np.ndarray:
    """H×W bool: the pixels inside the face outline (jaw line and brows of 68 landmarks) within
    ``width`` eye-corner distances of the jaw line, cheeks and chin, where hair from the sides of
    another face would land. Only the jaw line's stretches at least ``width`` inside the picture
    count (with the chin at or past its edge, the jaw line is guessed, and runs past the mouth), and
    nothing within ``FEATURE_MARGIN`` of an eye or the lips (the jaw line's top ends beside the outer
    eye corners): another face's darker eye corners or lips are not hair."""
    points = np.asarray(landmarks, np.float64)
    unit = float(eye_distance(points))
    outline = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(outline, cv2.convexHull(np.round(points[:27]).astype(np.int32)), 1)
    jaw = np.zeros(shape[:2], np.uint8)
    margin = width * unit
    inside = (points[:17] >= margin).all(axis=1) & (points[:17] < np.subtract((shape[1], shape[0]), margin)).all(axis=1)
    stretches = [np.round(points[k:k + 2]).astype(np.int32) for k in range(16) if inside[k] and inside[k + 1]]
    cv2.polylines(jaw, stretches, False, 1, max(1, round(2 * width * unit)))
    features = np.zeros(shape[:2], np.uint8)
    for feature in (*EYES, LIPS):
        hull = cv2.convexHull(np.round(points[list(feature)]).astype(np.int32))
        cv2.fillConvexPoly(features, hull, 1)
        cv2.polylines(features, [hull], True, 1, max(1, round(2 * FEATURE_MARGIN * unit)))
    return (outline & jaw & (1 - features)).astype(bool)


def forehead_band(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """H×W bool: the forehead of the input face's outline, where another face's fringe would land:
    the part of the landmark mask (``faces.face_mask``, the brows raised onto the forehead) outside
    ``faces.skin.inner_face`` with ``FEATURE_MARGIN`` around each brow (another face's brows drawn a
    little higher are not hair)."""
    points = np.asarray(landmarks, np.float64)
    return (face_mask(points, shape[:2]) > 127) & ~inner_face(shape[:2], points, 0.0, FEATURE_MARGIN)


def darkened(image: np.ndarray, output: np.ndarray, band: np.ndarray, skin: float, darker: int = HAIR_DARKER) -> float:
    """Share of ``band`` (H×W bool) that the output made dark: its grey level at least ``darker``
    below both the input pixel and ``skin`` (a grey level) — strands of hair, not shading; NaN for an
    empty band."""
    if not band.any():
        return math.nan
    grey_in = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.int16)[band]
    grey_out = cv2.cvtColor(output, cv2.COLOR_RGB2GRAY).astype(np.int16)[band]
    return float(((grey_out <= grey_in - darker) & (grey_out <= skin - darker)).mean())


def hair_added(image: np.ndarray, output: np.ndarray, landmarks: np.ndarray, darker: int = HAIR_DARKER) -> float:
    """Share of the input face's ``jaw_band`` that the output made dark (``darkened``, the skin
    being the band's median); 0 for an untouched frame, NaN without landmarks."""
    if not np.isfinite(landmarks).all():
        return math.nan
    band = jaw_band(landmarks, image.shape)
    skin = float(np.median(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[band])) if band.any() else math.nan
    return darkened(image, output, band, skin, darker)


def forehead_hair_added(image: np.ndarray, output: np.ndarray, landmarks: np.ndarray, darker: int = HAIR_DARKER) -> float:
    """Share of the input face's ``forehead_band`` that the output made dark (``darkened``, the skin
    being the median of the input's cheeks and nose bridge, ``faces.skin.skin_reference``: the
    forehead may hold the input's own fringe); 0 for an untouched frame, NaN without landmarks."""
    if not np.isfinite(landmarks).all():
        return math.nan
    points = np.asarray(landmarks, np.float32)
    reference = skin_reference(image.shape[:2], points)
    skin = float(np.median(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[reference])) if reference.any() else math.nan
    return darkened(image, output, forehead_band(points, image.shape), skin, darker)
