"""`deepswap verify`: is this image or video marked as a deepswap output (label and/or watermark)?"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image, ImageSequence

from .errors import DeepswapError
from .provenance.metadata import ProvenanceLabel, read_container_label, read_image_label
from .provenance.watermark import WatermarkResult, detect_watermark
from .video.reader import read_frames

MAX_FRAMES = 250


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_file`` found in one file."""

    path: Path
    label: ProvenanceLabel | None
    watermark: WatermarkResult

    @property
    def synthetic(self) -> bool:
        """True when the file carries the deepswap label or watermark."""
        return self.label is not None or self.watermark.found

    def summary(self) -> str:
        """One line: verdict, label, watermark (confidence z and decoded id)."""
        verdict = "SYNTHETIC (deepswap output)" if self.synthetic else "no deepswap mark"
        label = f"found ({self.label.describe()})" if self.label else "none"
        mark = self.watermark
        if mark.found:
            chance = max(mark.false_alarm_bound, 1e-12)
            watermark = (f"found, confidence z = {mark.confidence:.1f} (false-alarm chance < {chance:.0e}), "
                         f"id {mark.output_id}")
        else:
            watermark = f"not found (z = {mark.confidence:.1f}, {mark.frames} frame(s) checked)"
        return f"{self.path}: {verdict} — label: {label}; watermark: {watermark}"


def verify_file(path: str | Path, max_frames: int = MAX_FRAMES) -> VerifyReport:
    """Look for the provenance label and the watermark (over up to ``max_frames`` frames)."""
    path = Path(path)
    if not path.is_file():
        raise DeepswapError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DeepswapError(f"{path}: file is empty")
    try:
        image = Image.open(path)
    except Image.UnidentifiedImageError:
        image = None
    except OSError as error:
        raise DeepswapError(f"{path}: not readable ({error})") from None
    if image is not None:
        with image:
            label = read_image_label(image)
            try:
                frames = [np.asarray(frame.convert("RGB")) for frame in
                          itertools.islice(ImageSequence.Iterator(image), max_frames)]
            except OSError as error:
                raise DeepswapError(f"{path}: image is corrupt or truncated ({error})") from None
        return VerifyReport(path, label, detect_watermark(frames))
    label = _video_label(path)
    return VerifyReport(path, label, detect_watermark(itertools.islice(_video_frames(path), max_frames)))


def _video_label(path: Path) -> ProvenanceLabel | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DeepswapError(f"{path}: neither an image nor a video")
            return read_container_label(container)
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise DeepswapError(f"{path}: not a readable image or video ({error.__class__.__name__})") from None


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    for frame in read_frames(path):
        yield frame.image
