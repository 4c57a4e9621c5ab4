"""A before/after picture from the face crops of two `quality.py --crops` runs of one model.

    python benchmarks/before_after.py BEFORE_DIR AFTER_DIR OUT.jpg [--footage held_out occluded_mic two_people]

Each row is one footage's first crop row: the input | the face convert wrote in the first run | in
the second. Written like the crops: labelled and watermarked as a synthetic image (docs/hair.jpg).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepswap._io import read_image
from deepswap.video import write_image
from quality import CROP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="--crops folder of the first run")
    parser.add_argument("after", type=Path, help="--crops folder of the second run")
    parser.add_argument("out", type=Path, help="the picture to write (.jpg or .png)")
    parser.add_argument("--footage", nargs="+", default=["held_out", "occluded_mic", "two_people"],
                        help="the crops' names, one row each")
    args = parser.parse_args()
    rows = []
    for name in args.footage:
        before, after = (read_image(folder / f"{name}.png") for folder in (args.before, args.after))
        if before is None or after is None:
            parser.error(f"{name}.png: missing or unreadable in {args.before} or {args.after}")
        rows.append(np.hstack([before[:CROP, :CROP], before[:CROP, 2 * CROP:3 * CROP], after[:CROP, 2 * CROP:3 * CROP]]))
    write_image(args.out, np.vstack(rows), replaced_person="s1", model="lite")


if __name__ == "__main__":
    main()
