"""Looking at and curating a face set: a numbered contact sheet, and dropping faces by number or id.

Numbers are positions in ``FaceSet.ids()`` (source, then frame order). They shift after a
removal, so write a fresh sheet before removing more.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .. import _io
from ..errors import DeepswapError
from ..faces import FaceSet, load_faceset
from ..workspace import WorkspaceLike, as_workspace, parse_person
from ..writers import writes_workspace

SheetOrder = Literal["time", "blur", "distance"]


def _faceset(workspace: WorkspaceLike, person: str) -> FaceSet:
    return load_faceset(as_workspace(workspace).faces_dir(parse_person(person)))


def pick_faces(faceset: FaceSet, count: int, order: SheetOrder = "time") -> list[int]:
    """Numbers of the faces a sheet shows: ``count`` spread evenly over the set (``time``), the
    blurriest first (``blur``), or the least like the person first (``distance``)."""
    ids = faceset.ids()
    if order == "time":
        if len(ids) <= count:
            return list(range(len(ids)))
        return sorted({round(i * (len(ids) - 1) / max(1, count - 1)) for i in range(count)})
    key = {"blur": lambda i: faceset.faces[ids[i]]["blur"],
           "distance": lambda i: -faceset.faces[ids[i]]["identity_distance"]}.get(order)
    if key is None:
        raise DeepswapError(f"sheet order must be time, blur or distance, not {order!r}")
    return sorted(range(len(ids)), key=key)[:count]


def contact_sheet(workspace: WorkspaceLike, person: str, out: str | Path, count: int = 100,
                  order: SheetOrder = "time", thumb: int = 128, columns: int = 10) -> Path:
    """Write a PNG/JPEG grid of a person's aligned faces, each labelled with its number."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise DeepswapError(f"{out}: contact sheet must be .png, .jpg or .webp")
    faceset = _faceset(workspace, person)
    if not faceset.faces:
        raise DeepswapError(f"{faceset.folder}: no faces to show; run `deepswap extract` first")
    if count < 1:
        raise DeepswapError(f"--count must be ≥ 1, not {count}")
    ids = faceset.ids()
    numbers = pick_faces(faceset, count, order)
    columns = min(columns, len(numbers))
    rows = math.ceil(len(numbers) / columns)
    sheet = np.full((rows * thumb, columns * thumb, 3), 32, np.uint8)
    for slot, number in enumerate(numbers):
        tile = cv2.resize(faceset.load_crop(ids[number]), (thumb, thumb), interpolation=cv2.INTER_AREA)
        _label(tile, str(number))
        row, column = divmod(slot, columns)
        sheet[row * thumb:(row + 1) * thumb, column * thumb:(column + 1) * thumb] = tile
    _io.write_image(out, sheet)
    return out


def _label(tile: np.ndarray, text: str) -> None:
    scale = tile.shape[0] / 256
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(tile, (0, tile.shape[0] - height - 8), (width + 8, tile.shape[0]), (0, 0, 0), -1)
    cv2.putText(tile, text, (4, tile.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def parse_selection(text: str, ids: list[str]) -> list[str]:
    """Face ids named by ``"3,7,12"``, ranges ``"20-25"`` or face ids, checked against the set."""
    chosen: list[str] = []
    known = set(ids)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part in known:
            chosen.append(part)
            continue
        first, _, last = part.partition("-")
        if not (first.isdigit() and (not last or last.isdigit())):
            raise DeepswapError(f"{part!r}: not a face number, range (20-25) or face id")
        low, high = int(first), int(last or first)
        if low > high or high >= len(ids):
            raise DeepswapError(f"{part!r}: face numbers go from 0 to {len(ids) - 1}")
        chosen.extend(ids[low:high + 1])
    return list(dict.fromkeys(chosen))


@writes_workspace("faces --remove", wait=True)
def remove_faces(workspace: WorkspaceLike, person: str, selection: str) -> list[str]:
    """Drop faces (by number, range or id) from a person's set for good; returns their ids."""
    faceset = _faceset(workspace, person)
    faceset.forget_deleted()
    chosen = parse_selection(selection, faceset.ids())
    faceset.remove(chosen)
    faceset.save()
    return chosen


def faces_summary(workspace: WorkspaceLike, person: str) -> dict[str, int]:
    """How many faces a person's set holds, from how many sources, how many were removed and how
    many have a mask corrected by hand."""
    faceset = _faceset(workspace, person)
    faceset.forget_deleted()
    return {"faces": len(faceset), "sources": len(faceset.sources), "removed": len(faceset.removed),
            "corrected": len(faceset.corrected)}
