"""Atomic file writing: everything deepswap writes goes to a temp file first, then is renamed.

A temp file is named ``.<stem>.<pid>.<random>.part<suffix>`` beside its target: the writer's
process id tells a later run whether it is a write in progress or one that a killed process left
(``stale_temporaries``). State is durable: the file is fsynced before the rename and its folder
after it, so a power cut leaves the old version or the new one; bulk writes (face crops) may skip
that (``durable=False``). A full disk (or a file-size limit) while writing is a one-line
``DeepswapError`` naming the file, and the final name is left as it was.

Images are read only up to ``MAX_IMAGE_PIXELS``: their size is read from the header before
anything is decoded. OpenCV, NumPy and Pillow are imported by the image functions that use them,
so the modules that only write text and JSON (``deepswap.workspace``) stay light.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .errors import DeepswapError

if TYPE_CHECKING:
    import numpy as np

# The largest photo deepswap decodes (40 megapixels, e.g. 7728 × 5152: more than most cameras
# make); decoding one takes about 120 MB, and a larger picture is refused before it is decoded.
MAX_IMAGE_PIXELS = 40_000_000
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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
    except OSError as error:
        if error.errno in DISK_FULL:
            raise disk_full(target, error) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def disk_full(path: str | os.PathLike[str], error: OSError) -> DeepswapError:
    """The one-line error for a write that ran out of space (or hit a file-size limit)."""
    return DeepswapError(f"{path}: could not write it, the disk is full or the file too large "
                         f"({error.strerror or error}); nothing was left under this name")


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


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, as hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, params: Sequence[int] = (), durable: bool = True) -> None:
    """Write an RGB (or single-channel) uint8 image; the format follows the suffix (``params``: OpenCV's
    encoder flags, e.g. PNG compression; ``durable``: see ``atomic_path``)."""
    write_bytes(path, encode_image(rgb, Path(path).suffix or ".png", params, str(path)), durable)


def encode_image(rgb: np.ndarray, suffix: str = ".png", params: Sequence[int] = (), name: str = "image") -> bytes:
    """An RGB (or single-channel) uint8 image encoded as a ``suffix`` file's bytes (``name``: for the error)."""
    import cv2

    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(suffix, image, list(params))
    if not ok:
        raise OSError(f"{name}: could not encode image")
    return encoded.tobytes()


def check_image_size(path: str | os.PathLike[str], data: bytes | None = None) -> None:
    """Refuse an image over ``MAX_IMAGE_PIXELS``, from its header (nothing is decoded); ``data``
    is the file's content when it was read already. Images whose header cannot be read are left
    to the decoder to reject."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data is not None else path) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:  # over PIL's own limit, 4.5 times ours
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "the size"
    except (OSError, ValueError, SyntaxError):
        return
    else:
        if width * height <= MAX_IMAGE_PIXELS:
            return
        size = f"{width}×{height} = {width * height / 1e6:.0f} megapixels"
    raise DeepswapError(f"{path}: {size} is over the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit for photos; "
                        "scale it down first")


def read_image(path: str | os.PathLike[str], grayscale: bool = False) -> np.ndarray | None:
    """Read an image as RGB (or grayscale) uint8, or None if it cannot be decoded; one over
    ``MAX_IMAGE_PIXELS`` is a ``DeepswapError``."""
    import cv2
    import numpy as np

    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    check_image_size(path, data.tobytes())
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    if image is None or grayscale:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def unused_path(folder: Path, name: str) -> Path:
    """``folder / name``, or with ``-2``, ``-3``… before the suffix when that name is taken."""
    candidate = folder / name
    stem, suffix = candidate.stem, candidate.suffix
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}{suffix}"
        number += 1
    return candidate
