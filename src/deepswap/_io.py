"""Atomic file writing: everything deepswap writes goes to a temp file first, then is renamed."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's own is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix); rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write an RGB (or single-channel) uint8 image; the format follows the suffix (``params``: OpenCV's
    encoder flags, e.g. PNG compression)."""
    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(Path(path).suffix or ".png", image, list(params))
    if not ok:
        raise OSError(f"{path}: could not encode image")
    write_bytes(path, encoded.tobytes())


def read_image(path: str | os.PathLike[str], grayscale: bool = False) -> np.ndarray | None:
    """Read an image as RGB (or grayscale) uint8, or None if it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    if image is None or grayscale:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
