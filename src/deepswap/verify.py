"""`deepswap verify`: what evidence an image or video carries of being a deepswap output.

Three pieces of evidence, reported apart because they prove different things:

- the **watermark**, in the pixels: it survives re-encoding, resizing, trimming and screenshots,
  and only it confirms a file (exit code 0);
- the **label**, one line of metadata: anyone can copy it onto any file, so alone it confirms
  nothing (exit code 1, "label only, unconfirmed");
- **Content Credentials** (a C2PA manifest, from deepswap or any other tool): signed and bound to
  the file's bytes by a hash, so any change to the file breaks the binding, and re-encoding or
  stripping the metadata removes it.

An output id on the label or in the manifest that differs from the watermark's is flagged; a confirmed
watermark whose id is not clearly read says "id unreadable", never a guessed id. A
damaged file gives what could be read of it; a file whose pictures could not be read at all, or
that is not an image or video, gives exit code 2 — never 1, which means "read, and not confirmed".
"""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import av
import numpy as np
from PIL import Image, ImageSequence

from .errors import DeepswapError
from .provenance.credentials import CredentialsReport, read_credentials
from .provenance.metadata import ProvenanceLabel, read_container_label, read_image_label
from .provenance.watermark import ID_MARGIN, WatermarkDetector, WatermarkResult
from .video.reader import read_frames

MAX_FRAMES = 250
MAX_PIXELS = 8192 * 8192
"""Largest picture verify decodes (67 megapixels): bigger ones are refused, as decompression bombs."""
EXIT_CONFIRMED, EXIT_UNCONFIRMED, EXIT_UNREADABLE = 0, 1, 2
LABEL_ONLY = "label only, unconfirmed — labels can be copied"
# What the image and video decoders raise on damaged or hostile bytes.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, av.FFmpegError,
                  UnicodeDecodeError, DeepswapError)


@dataclass(frozen=True)
class VerifyReport:
    """The evidence ``verify_file`` found in one file.

    ``watermark.frames`` is 0 when no picture of the file could be decoded; ``problems`` says
    what could not be read.
    """

    path: Path
    label: ProvenanceLabel | None
    watermark: WatermarkResult
    credentials: CredentialsReport
    problems: tuple[str, ...] = ()

    @property
    def synthetic(self) -> bool:
        """True when the watermark confirms the file as a deepswap output."""
        return self.watermark.found

    @property
    def exit_code(self) -> int:
        """0: confirmed by the watermark; 1: pictures read, not confirmed; 2: pictures unreadable."""
        if self.synthetic:
            return EXIT_CONFIRMED
        return EXIT_UNREADABLE if self.watermark.frames == 0 else EXIT_UNCONFIRMED

    @property
    def id_mismatches(self) -> tuple[str, ...]:
        """Output ids on the label or in the manifest that differ from the watermark's (or each other's)."""
        claimed = [(name, output_id) for name, output_id in
                   (("label", self.label.output_id if self.label else None),
                    ("Content Credentials", self.credentials.output_id)) if output_id]
        if self.watermark.output_id:
            return tuple(f"{name} id {output_id} differs from the watermark's id {self.watermark.output_id}"
                         for name, output_id in claimed if output_id != self.watermark.output_id)
        if len(claimed) == 2 and claimed[0][1] != claimed[1][1]:
            return (f"label id {claimed[0][1]} differs from the Content Credentials id {claimed[1][1]}",)
        return ()

    @property
    def verdict(self) -> str:
        """One phrase: what the evidence adds up to."""
        if self.synthetic:
            verdict = f"SYNTHETIC (deepswap output: watermark confirmed, id {self.watermark.output_id or 'unreadable'})"
        elif self.watermark.frames == 0:
            verdict = "could not be checked: no picture could be decoded"
            if self.label:
                verdict += f"; {LABEL_ONLY}"
        elif self.label:
            verdict = LABEL_ONLY
        elif self.credentials.output_id:
            verdict = "Content Credentials name deepswap, but no watermark confirms it"
        else:
            verdict = "no deepswap mark"
        if self.id_mismatches:
            verdict += "; ids differ, the metadata was not written with these pictures"
        return verdict

    def summary(self) -> str:
        """The verdict, then one line per piece of evidence."""
        label = f"found ({self.label.describe()})" if self.label else "none"
        lines = [f"{self.path}: {self.verdict}",
                 f"  watermark: {_describe_watermark(self.watermark)}",
                 f"  label: {label}",
                 f"  Content Credentials: {self.credentials.describe()}"]
        lines += [f"  mismatch: {text}" for text in self.id_mismatches]
        lines += [f"  problem: {text}" for text in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every piece of evidence, JSON-ready."""
        mark = self.watermark
        label = self.label
        return {
            "path": str(self.path),
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "synthetic": self.synthetic,
            "watermark": {"found": mark.found, "confidence": round(mark.confidence, 3), "output_id": mark.output_id,
                          "id_confidence": round(mark.id_confidence, 3),
                          "frames": mark.frames, "false_alarm_bound": mark.false_alarm_bound},
            "label": None if label is None else {"version": label.version, "date": label.date,
                                                 "replaced_person": label.replaced_person,
                                                 "output_id": label.output_id},
            "content_credentials": self.credentials.to_dict(),
            "id_mismatches": list(self.id_mismatches),
            "problems": list(self.problems),
        }


def _describe_watermark(mark: WatermarkResult) -> str:
    if mark.frames == 0:
        return "not checked (no picture could be decoded)"
    if mark.found:
        chance = max(mark.false_alarm_bound, 1e-12)
        if mark.output_id is None:
            read = (f"id unreadable (its weakest code block is decoded {mark.id_confidence:.1f} noise std clear, "
                    f"under {ID_MARGIN:.1f})")
        else:
            read = f"id {mark.output_id}"
        return (f"found, confidence z = {mark.confidence:.1f} (false-alarm chance < {chance:.0e}), "
                f"{read}, {mark.frames} frame(s) checked")
    return f"not found (z = {mark.confidence:.1f}, {mark.frames} frame(s) checked)"


def verify_file(path: str | Path, max_frames: int = MAX_FRAMES) -> VerifyReport:
    """Read the label, the watermark (over up to ``max_frames`` frames, streamed) and the C2PA manifest.

    Raises ``DeepswapError`` for a missing or empty file, one that is neither an image nor a
    video, and a picture over ``MAX_PIXELS``.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepswapError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DeepswapError(f"{path}: file is empty")
    image = _open_image(path)
    if image is not None:
        with image:
            label = read_image_label(image)
            watermark, problems = _scan(path, _image_frames(image), max_frames)
    else:
        label = _video_label(path)
        watermark, problems = _scan(path, (frame.image for frame in read_frames(path)), max_frames)
    return VerifyReport(path, label, watermark, read_credentials(path), problems)


def _open_image(path: Path) -> Image.Image | None:
    """The file opened as an image (header only), or None when it is not one."""
    try:
        image = Image.open(path)
    except Image.UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        raise DeepswapError(f"{path}: the image is over verify's limit of {MAX_PIXELS / 1e6:.0f} megapixels "
                            "(a decompression bomb?)") from None
    except _DECODE_ERRORS as error:
        raise DeepswapError(f"{path}: not a readable image ({_reason(error)})") from None
    if image.width * image.height > MAX_PIXELS:
        image.close()
        raise DeepswapError(f"{path}: the image is {image.width}×{image.height} pixels, over verify's limit of "
                            f"{MAX_PIXELS / 1e6:.0f} megapixels (a decompression bomb?)")
    return image


def _image_frames(image: Image.Image) -> Iterator[np.ndarray]:
    for frame in ImageSequence.Iterator(image):
        yield np.asarray(frame.convert("RGB"))


def _video_label(path: Path) -> ProvenanceLabel | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DeepswapError(f"{path}: neither an image nor a video")
            codec = container.streams.video[0].codec_context
            if codec.width * codec.height > MAX_PIXELS:
                raise DeepswapError(f"{path}: video frames of {codec.width}×{codec.height} pixels are over verify's "
                                    f"limit of {MAX_PIXELS / 1e6:.0f} megapixels")
            return read_container_label(container)
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise DeepswapError(f"{path}: not a readable image or video ({error.__class__.__name__})") from None


def _scan(path: Path, frames: Iterable[np.ndarray], max_frames: int) -> tuple[WatermarkResult, tuple[str, ...]]:
    """Feed frames to the watermark detector one at a time; a decoding failure ends the scan."""
    detector = WatermarkDetector()
    problems: tuple[str, ...] = ()
    try:
        for frame in itertools.islice(frames, max_frames):
            detector.add(frame)
    except _DECODE_ERRORS as error:
        where = f"pictures stop after {detector.frames} frame(s)" if detector.frames else "no picture decodes"
        problems = (f"{where}: {_reason(error, path)}",)
    return detector.result(), problems


def _reason(error: BaseException, path: Path | None = None) -> str:
    text = " ".join(str(error).split()) or error.__class__.__name__
    return text.removeprefix(f"{path}: ") if path is not None else text
