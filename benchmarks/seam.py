"""The seam where A's own skin meets the new face: convert's output against its input along the
edge of the drawn face, where ``--drawn-face-only`` hands the footage back (the model drew hair).

    python benchmarks/seam.py WS CLIP... [--every 5] [--crops OUT.jpg --frames 10 40]

It swaps every frame of each clip as ``convert`` does and, on every ``--every``-th, measures in the
aligned crop the band within 8 px of the drawn face's edge (``FaceReplacer.drawn_face`` ∩
``forehead_skin``, at 0.5)
that lies on A's skin:

- *edge detail*: the mean absolute luma of the band's high frequencies (the picture minus its blur
  over 6 px), the output's less the input's. A seam or a jagged patch adds to it; 0 means the edge
  is no busier than the footage was;
- *flicker*: the mean absolute change of the band's luma from the frame before (both frames warped
  with this frame's alignment), the output's less the input's. An edge that jumps from frame to
  frame adds to it; 0 means it changes no more than the footage does.

Prints each one's median, mean, 90th percentile and largest value over the frames. ``--crops``
writes the input | the output of ``--frames`` of the first clip, a row each, labelled and
watermarked as synthetic (docs/seam.jpg joins two such pictures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from deepswap.convert import Converter, ReplaceSettings
from deepswap.convert.replace import forehead_skin
from deepswap.faces import face_mask, skin_mask, transform_points, warp_face
from deepswap.video import read_frames, write_image
from quality import face_row

BAND = 8  # pixels of the crop on either side of the drawn face's edge
DETAIL_BLUR = 6.0  # pixels: the blur whose residual counts as an edge


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def edge_detail(image: np.ndarray, band: np.ndarray) -> float:
    """The mean absolute high-frequency luma of an RGB crop over ``band`` (grey levels)."""
    picture = luma(image)
    return float(np.abs(picture - cv2.GaussianBlur(picture, (0, 0), DETAIL_BLUR))[band].mean())


def luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)


def change(before: np.ndarray, after: np.ndarray, band: np.ndarray) -> float:
    """The mean absolute luma change from one RGB crop to the next over ``band`` (grey levels)."""
    return float(np.abs(luma(after) - luma(before))[band].mean())


def summary(name: str, values: list[float]) -> str:
    values = np.array(values)
    return (f"{name}: median {np.median(values):.2f}, mean {values.mean():.2f}, "
            f"90th percentile {np.percentile(values, 90):.2f}, largest {values.max():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, help="a trained workspace")
    parser.add_argument("clips", type=Path, nargs="+", help="clips of A")
    parser.add_argument("--every", type=int, default=5, help="measure every N-th frame")
    parser.add_argument("--crops", type=Path, help="write input | output crops of the first clip here")
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 40], help="the frames --crops shows")
    args = parser.parse_args()
    converter = Converter(args.workspace)
    excess, flicker, rows = [], [], []
    for number, clip in enumerate(args.clips):
        replacer = converter.replacer("a2b", ReplaceSettings())
        previous = None
        for frame in read_frames(clip):
            where = replacer.locate(frame)
            if where is None:
                previous = None
                continue
            output = replacer.render([frame.image], [where])[0]
            before, previous = previous, (frame.image, output)
            if number == 0 and frame.index in args.frames:
                rows.append(face_row([frame.image, output], where.face.box))
            if frame.index % args.every:
                continue
            crop = warp_face(frame.image, where.matrix, replacer.size)
            points = transform_points(where.landmarks, where.matrix)
            drawn, _ = replacer.swapper.swap(crop[None], to="b")
            drawn = replacer.follow_expression(drawn[0], where, points)
            outline = face_mask(points, replacer.size)
            face = np.minimum(replacer.drawn_face(drawn[None])[0], forehead_skin(drawn, points, outline)) > 0.5
            edge = cv2.morphologyEx(face.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            inside = cv2.erode(outline, disc(BAND)) > 0
            band = (cv2.dilate(edge.astype(np.uint8), disc(BAND)) > 0) & (skin_mask(crop, points, outline) > 0) & inside
            if band.sum() < 50:
                continue
            swapped = warp_face(output, where.matrix, replacer.size)
            excess.append(edge_detail(swapped, band) - edge_detail(crop, band))
            if before is not None:
                earlier = [warp_face(image, where.matrix, replacer.size) for image in before]
                flicker.append(change(earlier[1], swapped, band) - change(earlier[0], crop, band))
    if not excess:
        raise SystemExit("no frame has A's skin along the drawn face's edge")
    print(f"{len(excess)} frames; along the drawn face's edge, in grey levels")
    print(summary("edge detail added", excess))
    if flicker:
        print(summary("flicker added", flicker))
    if args.crops and rows:
        write_image(args.crops, np.vstack(rows), replaced_person="A", model=converter.swapper.name)


if __name__ == "__main__":
    main()
