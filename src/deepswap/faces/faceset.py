"""A person's aligned faces on disk: crops, masks and ``alignments.json`` (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

import numpy as np
from pydantic import Field

from .. import _io
from .._schema import Count, FaceId, FileName, FiniteFloat, SourceId, StrictModel, inside, json_array, validate
from ..errors import DeepswapError
from .align import transform_points
from .identity import Identity

ALIGNMENTS = "alignments.json"
IDENTITY = "identity.npy"
MASKS = "masks"
FORMAT_VERSION = 1
HOLDOUT_FRACTION = 0.05
HOLDOUT_MIN_FACES = 20


def face_id(source_id: str, frame_index: int) -> str:
    """The name of the face taken from one frame of a source."""
    return f"{source_id}_{frame_index:06d}"


Box = json_array(FiniteFloat, 4)
Landmarks = json_array(json_array(FiniteFloat, 2), 68)
Matrix = json_array(json_array(FiniteFloat, 3), 2)


class _FaceRecord(StrictModel):
    source: SourceId
    frame: Count
    time: FiniteFloat
    box: Box
    score: FiniteFloat
    landmarks: Landmarks
    matrix: Matrix
    identity_distance: FiniteFloat
    blur: FiniteFloat
    name: FileName | None = None


class _SourceState(StrictModel):
    uri: str
    complete: bool
    frames: Count
    faces: Count
    skipped_no_face: Count
    skipped_other_person: Count
    fps: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None
    last_frame: Annotated[int, Field(ge=-1)]


class _IdentityState(StrictModel):
    origin: Literal["reference", "footage"]
    reference_sha1: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")] | None
    threshold: Annotated[float, Field(gt=0, lt=2)]


class _Alignments(StrictModel):
    """The whole of alignments.json (the package docstring describes each field)."""

    version: Literal[FORMAT_VERSION]  # type: ignore[valid-type]
    face_size: Annotated[int, Field(ge=16, le=4096)]
    identity: _IdentityState | None = None
    sources: dict[SourceId, _SourceState]
    removed: list[FaceId] = []
    corrected: list[FaceId] = []
    faces: dict[FaceId, _FaceRecord]


class FaceSet:
    """The aligned faces of one person, as recorded in ``folder/alignments.json``.

    ``faces`` maps face id → record, ``sources`` source id → extraction state, ``removed`` lists
    face ids the user deleted (so a resumed extraction does not bring them back), ``corrected``
    the faces whose mask the user corrected by hand (``deepswap.extract.masks``).
    """

    def __init__(self, folder: str | Path, data: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.data = data
        self._json_lines: dict[str, tuple[int, str]] = {}  # serialized records (they are not edited in place)

    @classmethod
    def empty(cls, folder: str | Path, face_size: int) -> "FaceSet":
        return cls(folder, {"version": FORMAT_VERSION, "face_size": face_size, "identity": None,
                            "sources": {}, "faces": {}, "removed": []})

    @classmethod
    def load(cls, folder: str | Path) -> "FaceSet | None":
        """The face set stored in ``folder``, or None if nothing was extracted there yet."""
        path = Path(folder) / ALIGNMENTS
        if not path.is_file():
            return None
        advice = "run `deepswap extract --force` to redo it"
        try:
            data = json.loads(path.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DeepswapError(f"{path}: damaged alignments file ({exc}); {advice}") from None
        validate(_Alignments, data, path, "damaged alignments file", advice)
        data.setdefault("removed", [])
        data.setdefault("corrected", [])
        data.setdefault("identity", None)
        return cls(folder, data)

    # contents
    @property
    def face_size(self) -> int:
        return int(self.data["face_size"])

    @property
    def faces(self) -> dict[str, dict[str, Any]]:
        return self.data["faces"]

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        return self.data["sources"]

    @property
    def removed(self) -> list[str]:
        return self.data["removed"]

    @property
    def corrected(self) -> list[str]:
        """The faces whose mask was corrected by hand (their stored mask is the user's, not the landmarks')."""
        return self.data.setdefault("corrected", [])

    def ids(self) -> list[str]:
        """Face ids in a stable order (source, then frame): the numbering `deepswap faces` shows."""
        return sorted(self.faces)

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def holdout_ids(self, fraction: float = HOLDOUT_FRACTION) -> list[str]:
        """The faces kept out of training, so that ``evaluate`` can score reconstruction on faces the
        model never saw: those whose id hashes into the first ``fraction`` of the hash range (at least
        one), when the person has ≥ 20 faces; none otherwise.

        The split depends on each face's id only (SHA-1, the same on every machine and run), so a face
        stays on its side when others are added or removed. Neighbouring video frames of a held-out
        face may still be trained on: scores on held-out faces are "unseen frames", not "unseen footage".
        """
        if len(self.faces) < HOLDOUT_MIN_FACES or fraction <= 0:
            return []
        positions = {face: _hash_position(face) for face in self.faces}
        held_out = sorted(face for face, position in positions.items() if position < fraction)
        return held_out or [min(positions, key=positions.__getitem__)]

    # files
    def crop_path(self, face: str) -> Path:
        return inside(self.folder, f"{face}.png")

    def mask_path(self, face: str) -> Path:
        return inside(self.folder / MASKS, f"{face}.png")

    @property
    def identity_path(self) -> Path:
        return self.folder / IDENTITY

    def identity(self) -> Identity:
        """The person this set keeps (convert uses it to swap only them)."""
        meta = self.data.get("identity")
        if not meta or not self.identity_path.is_file():
            raise DeepswapError(f"{self.identity_path}: no identity stored; run `deepswap extract` again")
        return Identity.load(self.identity_path, meta["threshold"], meta["origin"])

    def load_crop(self, face: str) -> np.ndarray:
        """The aligned RGB crop of a face."""
        image = _io.read_image(self.crop_path(face))
        if image is None:
            raise DeepswapError(f"{self.crop_path(face)}: missing or unreadable face crop; run `deepswap extract` again")
        return image

    def load_mask(self, face: str) -> np.ndarray:
        """The uint8 mask of a face crop."""
        mask = _io.read_image(self.mask_path(face), grayscale=True)
        if mask is None:
            raise DeepswapError(f"{self.mask_path(face)}: missing or unreadable face mask; run `deepswap extract --force`")
        return mask

    def crop_landmarks(self, face: str) -> np.ndarray:
        """68×2 landmarks of a face in crop coordinates (the stored matrix applied to the frame landmarks)."""
        record = self.faces[face]
        return transform_points(np.array(record["landmarks"]), np.array(record["matrix"])).astype(np.float32)

    # changes
    def forget_deleted(self) -> list[str]:
        """Move faces whose crop file the user deleted to ``removed`` (and delete their masks)."""
        present = set(os.listdir(self.folder)) if self.folder.is_dir() else set()
        gone = [face for face in self.faces if f"{face}.png" not in present]
        self.remove(gone)
        return gone

    def remove(self, faces: list[str]) -> None:
        """Drop faces from the set for good: their crop and mask files are deleted (save() to record it)."""
        for face in faces:
            record = self.faces.pop(face, None)
            if record is None:
                continue
            self.crop_path(face).unlink(missing_ok=True)
            self.mask_path(face).unlink(missing_ok=True)
            self.removed.append(face)
            if face in self.corrected:
                self.corrected.remove(face)
            source = self.sources.get(record["source"])
            if source is not None:
                source["faces"] = max(0, source["faces"] - 1)

    def save(self) -> None:
        """Write ``alignments.json`` atomically: one face per line, so it stays readable and diffable."""
        head = {key: value for key, value in self.data.items() if key not in ("sources", "faces", "removed")
                and not (key == "corrected" and not value)}  # a set with no corrections reads as before them
        lines = [json.dumps(head)[:-1] + ","]
        lines.append(' "sources": {' + ",".join(f"\n  {json.dumps(k)}: {json.dumps(v)}" for k, v in self.sources.items())
                     + ("\n }," if self.sources else "},"))
        lines.append(' "removed": ' + json.dumps(sorted(self.removed)) + ",")
        lines.append(' "faces": {' + ",".join(self._face_line(face) for face in self.faces)
                     + ("\n }" if self.faces else "}"))
        _io.write_text(self.folder / ALIGNMENTS, "\n".join(lines) + "\n}\n")

    def _face_line(self, face: str) -> str:
        """One face's line of alignments.json, serialized once: large sets save quickly and often."""
        record = self.faces[face]
        cached = self._json_lines.get(face)
        if cached is None or cached[0] != id(record):
            cached = self._json_lines[face] = (id(record), f"\n  {json.dumps(face)}: {json.dumps(record)}")
        return cached[1]


def _hash_position(face: str) -> float:
    """Where a face id falls in [0, 1): the first 8 bytes of its SHA-1 as a fraction."""
    return int.from_bytes(hashlib.sha1(face.encode("utf-8")).digest()[:8], "big") / 2 ** 64


def load_faceset(folder: str | Path) -> FaceSet:
    """The face set of a faces folder, or a one-line error if nothing was extracted there."""
    faces = FaceSet.load(folder)
    if faces is None:
        raise DeepswapError(f"{folder}: no extracted faces; run `deepswap extract` first")
    return faces
