"""Masks corrected by hand: the user's own mask of a face replaces the one extract drew from the
landmarks, and the face set records that it was corrected (``FaceSet.corrected``).

The swap's loss and the learned mask's labels read the stored mask, so a correction is used by
the next training run; ``train --mask-steps N`` trains the learned mask alone, drawing the
corrected faces more often (``deepswap.train.mask_training``). A resumed extract never rewrites
the mask of a face it has (``--force`` redoes every face from the footage, corrections included).
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import _io
from ..errors import DeepswapError
from ..faces import FaceSet, load_faceset
from ..workspace import WorkspaceLike, as_workspace, parse_person
from ..writers import writes_workspace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MASK_BYTES = 16 * 2 ** 20  # a 1024-px RGBA PNG is at most ~4 MiB


def mask_from_png(data: bytes, size: int, shown_name: str = "mask") -> np.ndarray:
    """A PNG's pixels as a face mask of a ``size``-px crop: uint8, 255 where the image is light
    (grey, RGB or RGBA; the alpha channel is ignored), 0 elsewhere. Anything else is refused in one
    line naming ``shown_name``: not a PNG, unreadable, too large, or not ``size``×``size``."""
    if len(data) > MAX_MASK_BYTES:
        raise DeepswapError(f"{shown_name}: over the {MAX_MASK_BYTES // 2 ** 20} MiB a face mask may take")
    if not data.startswith(PNG_SIGNATURE):
        raise DeepswapError(f"{shown_name}: not a PNG image")
    _io.check_image_size(shown_name, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DeepswapError(f"{shown_name}: an unreadable PNG image")
    if image.shape[:2] != (size, size):
        raise DeepswapError(f"{shown_name}: a {image.shape[1]}×{image.shape[0]} image; "
                            f"the face's mask must be {size}×{size} like its crop")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    colours = image[..., :3] if image.ndim == 3 and image.shape[2] >= 3 else image.reshape(size, size, -1)[..., :1]
    return np.where(colours.mean(axis=2) >= 128, 255, 0).astype(np.uint8)


@writes_workspace("faces --mask", wait=True)
def correct_mask(workspace: WorkspaceLike, person: str, face: str, png: bytes) -> int:
    """Store ``png`` (see ``mask_from_png``) as the mask of ``face`` of ``person``, atomically, and
    record that it was corrected by hand; returns how many of the person's faces are corrected."""
    faceset = load_faceset(as_workspace(workspace).faces_dir(parse_person(person)))
    if face not in faceset.faces:
        raise DeepswapError(f"{faceset.folder}: no face {face!r} of person {person}")
    mask = mask_from_png(png, faceset.face_size, f"the mask of face {face}")
    _io.write_image(faceset.mask_path(face), mask)
    if face not in faceset.corrected:
        faceset.corrected.append(face)
        faceset.save()
    return len(faceset.corrected)


def corrected_faces(faceset: FaceSet) -> list[str]:
    """The faces of a set whose mask was corrected by hand and is still there, in id order."""
    listed = set(faceset.corrected)
    return [face for face in faceset.ids() if face in listed]
