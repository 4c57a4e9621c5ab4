"""A sheet of the learned mask's labels on a workspace's faces: the landmark mask against the skin-only one.

    python benchmarks/skin_labels.py WORKSPACE OUT.png [--faces 6] [--seed 0]

Per row, one face of A or B (spread over each person's faces, drawn with ``--seed``): the crop, the
landmark mask as stored, the skin-only label the segmenter trains on (``deepswap.faces.skin_mask``),
and the pixels the skin-only label leaves out (red). Also prints, per person, the share of the
landmark mask the skin-only label leaves out (mean and largest over the faces drawn).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from deepswap import _io
from deepswap.faces import load_faceset
from deepswap.faces.skin import skin_mask
from deepswap.workspace import PERSON_KEYS, as_workspace

SIDE = 256  # pixels of each tile


def tinted(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """``image`` with the pixels outside ``mask`` darkened and those inside tinted ``colour``."""
    weight = (mask.astype(np.float32) / 255)[..., None]
    shown = image * (0.35 + 0.65 * weight) + np.asarray(colour, np.float32) * 0.25 * weight
    return np.clip(shown, 0, 255).astype(np.uint8)


def row(image: np.ndarray, mask: np.ndarray, label: np.ndarray) -> np.ndarray:
    removed = image.copy()
    removed[(mask > 127) & (label <= 127)] = (255, 0, 0)
    tiles = [image, tinted(image, mask, (0, 255, 0)), tinted(image, label, (0, 255, 0)), removed]
    return np.hstack([cv2.resize(tile, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for tile in tiles])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--faces", type=int, default=6, help="faces of each person")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workspace, rows = as_workspace(args.workspace), []
    for key in PERSON_KEYS:
        faceset = load_faceset(workspace.faces_dir(key))
        ids = faceset.ids()
        picked = np.random.default_rng(args.seed).choice(len(ids), min(args.faces, len(ids)), replace=False)
        left_out = []
        for index in sorted(picked):
            image = _io.read_image(faceset.crop_path(ids[index]))
            mask = _io.read_image(faceset.mask_path(ids[index]), grayscale=True)
            label = skin_mask(image, faceset.crop_landmarks(ids[index]), mask)
            left_out.append(1 - label.sum() / max(mask.sum(), 1))
            rows.append(row(image, mask, label))
        print(f"{key}: the skin-only label leaves out {np.mean(left_out):.1%} of the landmark mask "
              f"(largest {np.max(left_out):.1%}) over {len(left_out)} faces")
    _io.write_image(args.out, np.vstack(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
