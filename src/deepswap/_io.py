"""Atomic file writing: everything deepswap writes goes to a temp file first, then is renamed.

A temp file is named ``.<stem>.<pid>.<random>.part<suffix>`` beside its target: the writer's
process id tells a later run whether it is a write in progress or one that a killed process left
(``stale_temporaries``). State is durable: the file is fsynced before the rename and its folder
after it, so a power cut leaves the old version or the new one; bulk writes (face crops) may skip
that (``durable=False``).
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import cv2
import numpy as np


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's own is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()
_TEMPORARY = re.compile(r"\.(?P<stem>.*)\.(?P<pid>\d+)\.[a-z0-9_]+\.part(?P<suffix>\.[^.]*)?")


@contextmanager
def temp_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new empty temp file beside ``path`` (same suffix), removed when the block ends."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.{os.getpid()}.", suffix=f".part{target.suffix}",
                               dir=target.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix); rename it onto ``path`` only on success.

    ``durable``: fsync the file before the rename and the folder after it.
    """
    with temp_path(path) as tmp:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync(Path(path).parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale_temporaries(paths: Iterable[Path]) -> Iterator[Path]:
    """The ones of ``paths`` that are temp files of ``temp_path`` whose writer process has ended."""
    for path in paths:
        match = _TEMPORARY.fullmatch(path.name)
        if match and int(match["pid"]) != os.getpid() and not is_running(int(match["pid"])):
            yield path


def remove_stale_temporaries(target: str | os.PathLike[str]) -> None:
    """Delete the temp files that killed writers of ``target`` left beside it."""
    target = Path(target)
    if target.parent.is_dir():
        pattern = f".{glob.escape(target.stem)}.*.part{glob.escape(target.suffix)}"
        for path in stale_temporaries(target.parent.glob(pattern)):
            if _TEMPORARY.fullmatch(path.name)["stem"] == target.stem:
                path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> None:
    """Write ``data`` atomically (``durable``: see ``atomic_path``)."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, params: Sequence[int] = (), durable: bool = True) -> None:
    """Write an RGB (or single-channel) uint8 image; the format follows the suffix (``params``: OpenCV's
    encoder flags, e.g. PNG compression; ``durable``: see ``atomic_path``)."""
    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(Path(path).suffix or ".png", image, list(params))
    if not ok:
        raise OSError(f"{path}: could not encode image")
    write_bytes(path, encoded.tobytes(), durable)


def read_image(path: str | os.PathLike[str], grayscale: bool = False) -> np.ndarray | None:
    """Read an image as RGB (or grayscale) uint8, or None if it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    if image is None or grayscale:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
