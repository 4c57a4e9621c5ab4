"""The machine-readable "synthetic" label every deepswap output carries, and reading it back.

One line of text, the same in every format: the fixed label followed by a JSON object::

    synthetic: face swapped by deepswap {"tool": "deepswap", "version": "0.1.0",
    "date": "2026-11-26T09:30:00+00:00", "replaced_person": "alice", "output_id": "3fa2c1d9"}

It is stored as the ``comment`` and ``description`` tags of a video container (mp4/mov/mkv), a PNG
``Comment`` and ``Description`` text chunk, a JPEG COM segment and a GIF comment extension.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
from PIL import Image, PngImagePlugin

LABEL = "synthetic: face swapped by deepswap"
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}


@dataclass(frozen=True)
class ProvenanceLabel:
    """The provenance fields of one output (fields unknown to an older reader are ignored)."""

    version: str | None
    date: str | None
    replaced_person: str | None
    output_id: str | None

    def text(self) -> str:
        """The one-line label: ``LABEL`` followed by the fields as JSON."""
        fields = {"tool": "deepswap", "version": self.version, "date": self.date,
                  "replaced_person": self.replaced_person, "output_id": self.output_id}
        return f"{LABEL} {json.dumps(fields, ensure_ascii=False)}"

    def describe(self) -> str:
        """Short human-readable summary."""
        parts = [f"deepswap {self.version or '?'}", (self.date or "?")[:10]]
        if self.replaced_person:
            parts.append(f"replaced {self.replaced_person}")
        if self.output_id:
            parts.append(f"id {self.output_id}")
        return ", ".join(parts)


def provenance_label(replaced_person: str | None = None, output_id: str | None = None,
                     date: datetime | None = None) -> ProvenanceLabel:
    """The label for a new output, stamped with this deepswap version and the time (UTC)."""
    from .. import __version__

    when = (date or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return ProvenanceLabel(__version__, when, replaced_person, output_id)


def provenance_metadata(replaced_person: str | None = None, output_id: str | None = None) -> dict[str, str]:
    """Container tags (``comment`` and ``description``) carrying a fresh label."""
    text = provenance_label(replaced_person, output_id).text()
    return {"comment": text, "description": text}


def parse_label(text: str | bytes | None) -> ProvenanceLabel | None:
    """The label in a tag's text, or None when the text does not carry one. Never raises: a label
    whose fields are damaged still counts as a label, with the unreadable fields None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str) or LABEL not in text:
        return None
    try:
        fields = json.loads(text.split(LABEL, 1)[1].strip() or "{}")
    except (ValueError, RecursionError):
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    return ProvenanceLabel(*(_field(fields, key) for key in ("version", "date", "replaced_person", "output_id")))


def _field(fields: dict, key: str) -> str | None:
    """A field as text: strings as they are, numbers written out, anything else (lists, tables) None."""
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def encode_image(rgb: np.ndarray, suffix: str, label: ProvenanceLabel, quality: int = 95) -> bytes:
    """Encode an RGB image as PNG / JPEG / GIF with the label in the format's text field."""
    kind = IMAGE_SUFFIXES.get(suffix.lower())
    if kind is None:
        raise ValueError(f"cannot write {suffix or 'suffix-less'} images; use one of {', '.join(IMAGE_SUFFIXES)}")
    text = label.text()
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if kind == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("Comment", text)
        info.add_itxt("Description", text)
        image.save(buffer, "PNG", pnginfo=info)
    elif kind == "JPEG":
        image.save(buffer, "JPEG", quality=quality, comment=text.encode("utf-8"))
    else:
        image.save(buffer, "GIF", comment=text.encode("utf-8"))
    return buffer.getvalue()


def read_image_label(image: Image.Image) -> ProvenanceLabel | None:
    """The label in an opened image's text chunks / comment, if any."""
    for key, value in image.info.items():
        if isinstance(key, str) and key.lower() in ("comment", "description"):
            label = parse_label(value)
            if label:
                return label
    return None


def read_container_label(container: av.container.InputContainer) -> ProvenanceLabel | None:
    """The label in an opened video's container or stream tags, if any."""
    tag_sets = [container.metadata] + [stream.metadata for stream in container.streams]
    for tags in tag_sets:
        for key, value in tags.items():
            if key.lower() in ("comment", "description"):
                label = parse_label(value)
                if label:
                    return label
    return None


def read_label(path: str | Path) -> ProvenanceLabel | None:
    """The label of an image or video file, or None. Raises OSError / av.FFmpegError if unreadable."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return read_image_label(image)
    except Image.UnidentifiedImageError:
        pass
    with av.open(str(path)) as container:
        return read_container_label(container)
