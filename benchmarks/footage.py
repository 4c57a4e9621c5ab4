"""Harder footage for the quality benchmark, built from GRID clips (CC BY 4.0) that training never sees.

    python benchmarks/footage.py [--out DIR] [--first 60]

Writes eight H.264 clips (crf 12, no label, no watermark: they stand for camera footage) into
``DIR`` (default ``~/.cache/deepswap/footage``), each from s1 clips ``--first`` onward:

- ``zoom_pan_roll.mp4``: 1280×720, three s1 clips played in a moving virtual camera that zooms
  (the face from 1.6× to 2.8× its size in the 360×288 clip), pans across the frame and rolls ±20°;
  zoomed in, the chin passes below the frame (142 of its 225 faces reach within 0.2 eye widths of an edge);
- ``small_corner.mp4``: the s1 clip at 40 % of its size in the top-left corner of a 640×512 frame
  (the rest a blurred, dimmed enlargement of the same clip, so no second face);
- ``two_people.mp4``: s1 (left) beside GRID speaker swiz3n (right), 720×288: only A may change;
- ``cut.mp4``: s1, a cut to GRID speaker lbbc2a, and back to s1 (three clips, 225 frames);
- ``occluded_mic.mp4``: two s1 clips (``--first`` + 5, + 6) with a microphone on a stand (a dark metallic head with a
  grille, drawn by ``occluders.microphone``) in front of the chin and lower lip;
- ``occluded_hand.mp4``: two s1 clips (+ 7, + 8) with a skin-toned hand (palm, fingers, thumb; shaded) passing
  from the left cheek across the mouth to the right cheek;
- ``blinks.mp4``: the first five s1 clips from ``--first`` + 11 on in which s1 closes his eyes (eye
  openness under 0.6 of the clip's median on at least three frames), one after another;
- ``expressive.mp4``: two s1 clips (+ 9, + 10) warped from their landmarks (``occluders.warp_to``) into a wide-open
  mouth, raised brows, wide-eyed looks and three blinks, rolled ±12°, lit by a window from the left,
  the face ~50 px wide in a 640×360 frame.

The two occluded clips come with ``NAME.occluder.npz`` (``masks``: frames × height × width bool, the
occluder's pixels in front of the face: the drawn shape ∩ the landmark hull of the face behind it),
which ``deepswap evaluate`` reads to say how much of the occluder the swap kept. Existing files are kept
(delete ``DIR`` to rebuild). ``quality.py`` builds and evaluates them.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

import av
import cv2
import numpy as np

from deepswap._io import atomic_path
from deepswap.evaluate import closed_eyes, eye_openness
from deepswap.faces import FaceAnalyzer
from deepswap.video import read_frames
from occluders import expression, face_region, hand, microphone, mouth_interior, unit, warp_to, window_light

REPO = Path(__file__).resolve().parents[1]
GRID = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid"
DEFAULT_OUT = Path.home() / ".cache" / "deepswap" / "footage"
FPS = 25
CLIP_FRAMES = 75  # every GRID clip: 3 s at 25 frames/s
FIRST_CLIP = 60  # the s1 clips used start here: after quality.py's 40 trained and 4 evaluated ones
BYSTANDER = "swiz3n"  # SFace cosine to s1 0.04 and to lrwp9a 0.16: neither A nor B
CUT_TO = "lbbc2a"  # cosine to s1 0.14, to lrwp9a 0.10
EDGE = 4  # pixels cut from each side of a GRID frame before moving it (the top row is dark)
BLINK_CLIPS = 5
EXPRESSIVE_FACE = 50  # pixels: the face's width (jaw end to jaw end) in expressive.mp4


@dataclass(frozen=True)
class Footage:
    """One built clip: its file and what is in it."""

    name: str
    path: Path
    description: str


def frames_of(clip: Path) -> list[np.ndarray]:
    return [frame.image for frame in read_frames(clip)]


def write_clip(path: Path, frames: Iterable[np.ndarray]) -> None:
    """Encode RGB frames as a near-lossless H.264 clip at 25 frames/s, written atomically."""
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = None
            for image in frames:
                if stream is None:
                    stream = container.add_stream("libx264", rate=FPS)
                    stream.height, stream.width = image.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "12", "preset": "medium"}
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
            container.mux(stream.encode())


def virtual_camera(frames: list[np.ndarray], size: tuple[int, int] = (1280, 720)) -> Iterator[np.ndarray]:
    """The frames seen by a camera that zooms in and out, pans and rolls ±20° over the clip (cubic
    resampling; beyond the clip its edge pixels are repeated, so no black corners and no mirrored
    second face)."""
    width, height = size
    frames = [image[EDGE:-EDGE, EDGE:-EDGE] for image in frames]
    source_height, source_width = frames[0].shape[:2]
    centre = np.array([source_width / 2, source_height * 0.45])  # about where GRID faces are
    for index, image in enumerate(frames):
        phase = index / max(1, len(frames) - 1)
        zoom = (height / source_height) * (0.8 + 0.6 * (0.5 - 0.5 * math.cos(2 * math.pi * phase)))
        roll = 20 * math.sin(2 * math.pi * 1.5 * phase)
        pan = np.array([0.22 * width * math.sin(2 * math.pi * phase), 0.12 * height * math.sin(4 * math.pi * phase)])
        matrix = cv2.getRotationMatrix2D(tuple(centre), roll, zoom)
        matrix[:, 2] += np.array([width / 2, height / 2]) + pan - centre
        yield cv2.warpAffine(image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def small_in_corner(frames: list[np.ndarray], scale: float = 0.4, size: tuple[int, int] = (640, 512)) -> Iterator[np.ndarray]:
    """Each frame shrunk to ``scale`` in the top-left corner (16 px in) of a ``size`` frame whose
    background is the clip's studio wall (its top-left corner) enlarged and dimmed: no second face."""
    for image in frames:
        wall = image[EDGE:EDGE + 48, EDGE:EDGE + 48]
        canvas = (cv2.resize(wall, size, interpolation=cv2.INTER_CUBIC) * 0.8).astype(np.uint8)
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[16:16 + small.shape[0], 16:16 + small.shape[1]] = small
        yield canvas


def side_by_side(left: list[np.ndarray], right: list[np.ndarray]) -> Iterator[np.ndarray]:
    for a, b in zip(left, right):
        yield np.hstack([a, b])


def landmarks_of(frames: list[np.ndarray], analyzer: FaceAnalyzer) -> np.ndarray:
    """The 68 landmarks (T×68×2) of the largest face of each frame (every GRID frame has one)."""
    return np.stack([analyzer.describe(image, max(analyzer.detect(image), key=lambda d: d.area)).landmarks
                     for image in frames])


def with_microphone(frames: list[np.ndarray], analyzer: FaceAnalyzer) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames with a microphone on a stand in front of the chin and lower lip (where the face is
    on average: the stand does not follow the head), and the occluder masks."""
    landmarks = landmarks_of(frames, analyzer)
    typical = np.median(landmarks, axis=0)
    size = unit(typical)
    centre = np.array([typical[57, 0] + 0.12 * size, (typical[57, 1] + typical[8, 1]) / 2])
    rng = np.random.default_rng(34)
    drawn = [microphone(image, centre, 0.45 * size, rng) for image in frames]
    masks = np.stack([covered & face_region(points, image.shape) for (image, covered), points in zip(drawn, landmarks)])
    return [image for image, _ in drawn], masks


def with_hand(frames: list[np.ndarray], analyzer: FaceAnalyzer) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames with a hand passing from the left cheek across the mouth to the right cheek, and the occluder masks."""
    landmarks = landmarks_of(frames, analyzer)
    rng = np.random.default_rng(35)
    images, masks = [], []
    for index, (image, points) in enumerate(zip(frames, landmarks)):
        size, phase = unit(points), index / max(1, len(frames) - 1)
        x = (1 - phase) * (points[2, 0] - 0.9 * size) + phase * (points[14, 0] + 0.5 * size)
        y = points[33, 1] + 0.35 * size + 0.1 * size * math.sin(4 * math.pi * phase)
        drawn, covered = hand(image, np.array([x, y]), 0.95 * size, -20 + 25 * phase, rng)
        images.append(drawn)
        masks.append(covered & face_region(points, image.shape))
    return images, np.stack(masks)


def blink_clips(candidates: list[Path], analyzer: FaceAnalyzer, count: int = BLINK_CLIPS, least: int = 3) -> list[Path]:
    """The first ``count`` clips in which the eyes are closed on at least ``least`` frames."""
    chosen = []
    for clip in candidates:
        if closed_eyes(eye_openness(landmarks_of(frames_of(clip), analyzer))).sum() >= least:
            chosen.append(clip)
        if len(chosen) == count:
            break
    return chosen


def _bump(phase: float, start: float, end: float) -> float:
    """0 outside [start, end], rising to 1 in the middle along half a sine."""
    return math.sin(math.pi * (phase - start) / (end - start)) if start < phase < end else 0.0


def expressive(frames: list[np.ndarray], analyzer: FaceAnalyzer, size: tuple[int, int] = (640, 360)) -> Iterator[np.ndarray]:
    """The frames with expressions the studio clips lack (wide-open mouth, raised brows, wide eyes,
    blinks) warped in from their landmarks, rolled, lit from a window and made small (``EXPRESSIVE_FACE``)."""
    width, height = size
    for index, (image, points) in enumerate(zip(frames, landmarks_of(frames, analyzer))):
        phase = index / max(1, len(frames) - 1)
        mouth = 0.38 * _bump(phase, 0.05, 0.3) + 0.3 * _bump(phase, 0.6, 0.82)
        brows = 0.16 * _bump(phase, 0.2, 0.5) + 0.1 * _bump(phase, 0.6, 0.82)
        blink = max(_bump(phase, b, b + 0.035) for b in (0.12, 0.52, 0.88))
        eyes = -blink if blink > 0 else 0.09 * _bump(phase, 0.3, 0.45)
        target = expression(points, mouth, brows, eyes)
        face = warp_to(image, points, target)
        if mouth > 0.05:
            face = mouth_interior(face, target)
        scale = EXPRESSIVE_FACE / float(np.linalg.norm(points[16] - points[0]))
        small = cv2.resize(face[EDGE:-EDGE, EDGE:-EDGE], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        centre = (target[27:36].mean(axis=0) - EDGE) * scale
        matrix = cv2.getRotationMatrix2D(tuple(centre), 12 * math.sin(2 * math.pi * phase), 1.0)
        matrix[:, 2] += np.array([0.58 * width, 0.45 * height]) - centre
        yield window_light(cv2.warpAffine(small, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))


def write_occluded(path: Path, make: Callable[[], tuple[list[np.ndarray], np.ndarray]]) -> None:
    """Write an occluded clip and its ``.occluder.npz`` sidecar (masks first: the clip marks it done)."""
    images, masks = make()
    with atomic_path(path.with_name(path.stem + ".occluder.npz")) as tmp:
        with open(tmp, "wb") as file:
            np.savez_compressed(file, masks=masks)
    write_clip(path, images)


def build_footage(out: Path = DEFAULT_OUT, first: int = FIRST_CLIP, names: Collection[str] | None = None) -> list[Footage]:
    """Build (or keep, when present) the clips in ``out`` from s1 clips ``first`` onward (only those
    named ``names`` when given)."""
    every = sorted((GRID / "s1").glob("*.mp4"))
    s1 = every[first:first + 5]
    analyzer = FaceAnalyzer()
    speakers = GRID / "speakers"
    recipes: list[tuple[str, str, Callable[[], Iterable[np.ndarray]]]] = [
        ("zoom_pan_roll", "720p, zoom 1.6–2.8×, pan, roll ±20°",
         lambda: virtual_camera(list(chain.from_iterable(frames_of(clip) for clip in s1[:3])))),
        ("small_corner", "face at 40 % size in a corner of 640×512", lambda: small_in_corner(frames_of(s1[3]))),
        ("two_people", f"s1 beside {BYSTANDER} (only s1 may change)",
         lambda: side_by_side(frames_of(s1[4]), frames_of(speakers / f"{BYSTANDER}.mp4"))),
        ("cut", f"s1, cut to {CUT_TO}, back to s1",
         lambda: chain(frames_of(s1[0]), frames_of(speakers / f"{CUT_TO}.mp4"), frames_of(s1[1]))),
        ("blinks", f"{BLINK_CLIPS} s1 clips with natural blinks",
         lambda: chain.from_iterable(frames_of(clip) for clip in blink_clips(every[first + 11:], analyzer))),
        ("expressive", f"warped expressions, roll ±12°, window light, face ~{EXPRESSIVE_FACE} px wide",
         lambda: expressive(frames_of(every[first + 9]) + frames_of(every[first + 10]), analyzer)),
    ]
    occluded: list[tuple[str, str, Callable[[], tuple[list[np.ndarray], np.ndarray]]]] = [
        ("occluded_mic", "a microphone in front of the chin (occluder masks)",
         lambda: with_microphone(frames_of(every[first + 5]) + frames_of(every[first + 6]), analyzer)),
        ("occluded_hand", "a hand across cheek and mouth (occluder masks)",
         lambda: with_hand(frames_of(every[first + 7]) + frames_of(every[first + 8]), analyzer)),
    ]
    if names is not None:
        recipes, occluded = ([recipe for recipe in kind if recipe[0] in names] for kind in (recipes, occluded))
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for name, description, make in recipes:
        path = out / f"{name}.mp4"
        if not path.is_file():
            write_clip(path, make())
        built.append(Footage(name, path, description))
    for name, description, make in occluded:
        path = out / f"{name}.mp4"
        if not path.is_file():
            write_occluded(path, make)
        built.append(Footage(name, path, description))
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the clips")
    parser.add_argument("--first", type=int, default=FIRST_CLIP, help="index of the first s1 clip used (after the trained ones)")
    args = parser.parse_args()
    for footage in build_footage(args.out, args.first):
        print(f"{footage.path}: {footage.description}")


if __name__ == "__main__":
    main()
