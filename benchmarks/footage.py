"""Harder footage for the quality benchmark, built from GRID clips (CC BY 4.0) that training never sees.

    python benchmarks/footage.py [--out DIR] [--first 60]

Writes four H.264 clips (crf 12, no label, no watermark: they stand for camera footage) into
``DIR`` (default ``~/.cache/deepswap/footage``), each from s1 clips ``--first`` onward:

- ``zoom_pan_roll.mp4``: 1280×720, three s1 clips played in a moving virtual camera that zooms
  (the face from 1.6× to 2.8× its size in the 360×288 clip), pans across the frame and rolls ±20°;
  zoomed in, the chin passes below the frame (142 of its 225 faces reach within 0.2 eye widths of an edge);
- ``small_corner.mp4``: the s1 clip at 40 % of its size in the top-left corner of a 640×512 frame
  (the rest a blurred, dimmed enlargement of the same clip, so no second face);
- ``two_people.mp4``: s1 (left) beside GRID speaker swiz3n (right), 720×288: only A may change;
- ``cut.mp4``: s1, a cut to GRID speaker lbbc2a, and back to s1 (three clips, 225 frames).

Existing files are kept (delete ``DIR`` to rebuild). ``quality.py`` builds and evaluates them.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable, Iterator

import av
import cv2
import numpy as np

from deepswap._io import atomic_path
from deepswap.video import read_frames

REPO = Path(__file__).resolve().parents[1]
GRID = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid"
DEFAULT_OUT = Path.home() / ".cache" / "deepswap" / "footage"
FPS = 25
CLIP_FRAMES = 75  # every GRID clip: 3 s at 25 frames/s
FIRST_CLIP = 60  # the s1 clips used start here: after quality.py's 40 trained and 4 evaluated ones
BYSTANDER = "swiz3n"  # SFace cosine to s1 0.04 and to lrwp9a 0.16: neither A nor B
CUT_TO = "lbbc2a"  # cosine to s1 0.14, to lrwp9a 0.10
EDGE = 4  # pixels cut from each side of a GRID frame before moving it (the top row is dark)


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


def build_footage(out: Path = DEFAULT_OUT, first: int = FIRST_CLIP) -> list[Footage]:
    """Build (or keep, when present) the four clips in ``out`` from s1 clips ``first`` onward."""
    s1 = sorted((GRID / "s1").glob("*.mp4"))[first:first + 5]
    speakers = GRID / "speakers"
    recipes: list[tuple[str, str, Callable[[], Iterable[np.ndarray]]]] = [
        ("zoom_pan_roll", "720p, zoom 1.6–2.8×, pan, roll ±20°",
         lambda: virtual_camera(list(chain.from_iterable(frames_of(clip) for clip in s1[:3])))),
        ("small_corner", "face at 40 % size in a corner of 640×512", lambda: small_in_corner(frames_of(s1[3]))),
        ("two_people", f"s1 beside {BYSTANDER} (only s1 may change)",
         lambda: side_by_side(frames_of(s1[4]), frames_of(speakers / f"{BYSTANDER}.mp4"))),
        ("cut", f"s1, cut to {CUT_TO}, back to s1",
         lambda: chain(frames_of(s1[0]), frames_of(speakers / f"{CUT_TO}.mp4"), frames_of(s1[1]))),
    ]
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for name, description, make in recipes:
        path = out / f"{name}.mp4"
        if not path.is_file():
            write_clip(path, make())
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
