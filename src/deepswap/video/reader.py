"""Streaming frame readers: videos through PyAV, photo folders through OpenCV, one interface."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from .. import _io
from ..errors import DeepswapError
from ..filetypes import PHOTO_SUFFIXES


@dataclass(frozen=True)
class Frame:
    """One RGB frame (H×W×3 uint8); ``index`` is the frame number in its video (or photo order)."""

    index: int
    time: float
    image: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    has_audio: bool


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise DeepswapError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise DeepswapError(f"{path}: file is empty")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise DeepswapError(f"{path}: not a readable video ({exc.strerror}); is it complete?") from None
    except UnicodeDecodeError:
        raise DeepswapError(f"{path}: not a readable video (garbled metadata)") from None
    if not container.streams.video:
        container.close()
        raise DeepswapError(f"{path}: has no video stream")
    codec = container.streams.video[0].codec_context
    if codec is None:
        container.close()
        raise DeepswapError(f"{path}: not a readable video (no decoder for its video stream); is it complete?")
    if codec.width * codec.height > _io.MAX_IMAGE_PIXELS:
        container.close()
        raise DeepswapError(f"{path}: frames of {codec.width}×{codec.height} are over the "
                            f"{_io.MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit; scale the video down first")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate, frame count, duration and audio presence of a video file."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = _frame_rate(stream)
        duration = _declared_duration(container, stream)
        frames = stream.frames or round(duration * fps)
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(fps),
                         int(frames), duration, bool(container.streams.audio))


def read_frames(
    path: str | Path,
    fps: float | None = None,
    start: float | None = None,
    duration: float | None = None,
) -> Iterator[Frame]:
    """Yield RGB frames of a video, streaming, at its own rate or sampled down to ``fps``.

    ``start``/``duration`` (seconds, from the first frame) select a range: the frames shown
    during it, at least the one shown at ``start``. Times are relative to the video's first
    frame, so a frame's ``time`` is where it plays in the file. A video that cannot be
    decoded, stops well before its stated length, or has nothing at ``start`` raises
    ``DeepswapError``.
    """
    path = Path(path)
    if fps is not None and not fps > 0:
        raise DeepswapError(f"fps must be > 0, not {fps}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(_frame_rate(stream))
        half_frame = 0.5 / rate
        time_base = stream.time_base
        origin = stream.start_time or 0
        begin = start or 0.0
        end = begin + duration if duration is not None else float("inf")
        next_sample = begin
        yielded = 0
        index = -1
        time = -1 / rate
        for frame in _decode_from(container, stream, path, begin, origin):
            time = float((frame.pts - origin) * time_base) if frame.pts is not None else time + 1 / rate
            if time < begin - half_frame:
                continue
            if yielded and time >= end - half_frame:
                break
            if fps is not None:
                if time < next_sample - half_frame:
                    continue
                next_sample += 1.0 / fps
            yielded += 1
            index = max(round(time * rate), index + 1)  # unique and increasing, even with a variable rate
            yield Frame(index=index, time=time, image=frame.to_ndarray(format="rgb24"))
        else:
            _check_complete(path, container, stream, last_time=time + 1 / rate, begin=begin, yielded=yielded)
    finally:
        container.close()


def keyframe_times(path: str | Path) -> list[float]:
    """The times (seconds from the first frame) of a video's keyframes, where decoding can start:
    read from the container's packets, without decoding."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        try:
            return sorted(float((packet.pts - origin) * stream.time_base) for packet in container.demux(stream)
                          if packet.is_keyframe and packet.pts is not None)
        except av.FFmpegError as exc:
            raise DeepswapError(f"{path}: video is corrupt or truncated ({exc.strerror})") from None


def _frame_rate(stream: av.video.VideoStream) -> Fraction:
    """The stream's frame rate (FFmpeg's best guess, which copes with odd average rates)."""
    return Fraction(stream.guessed_rate or stream.average_rate or 25)


def _declared_duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float:
    """Length of the video stream as its container states it (0 when unknown)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def _check_complete(path: Path, container: av.container.InputContainer, stream: av.video.VideoStream,
                    last_time: float, begin: float, yielded: int) -> None:
    """Raise if decoding ran out early: nothing decodable, nothing at ``begin``, or a cut-off file.

    Only containers with a frame index (mp4, mov) state their length exactly enough to tell
    a cut-off file; elsewhere the stated length may be an estimate, so it is not checked.
    """
    stated = _declared_duration(container, stream)
    if yielded == 0 and begin == 0:
        raise DeepswapError(f"{path}: no decodable video frames (truncated or corrupt?)")
    if stream.frames and stated - last_time > max(1.0, 0.02 * stated):
        raise DeepswapError(f"{path}: video is truncated: frames stop at {last_time:.1f} s of {stated:.1f} s; "
                            "re-download or re-export it")
    if yielded == 0:
        raise DeepswapError(f"{path}: no frames at or after {begin:g} s (the video is {stated:.1f} s long); "
                            "check --start")


def _decode_from(
    container: av.container.InputContainer, stream: av.video.VideoStream, path: Path, begin: float, origin: int
) -> Iterator[av.VideoFrame]:
    """Decode frames from at or before ``begin`` seconds.

    Seeks a second early (some containers, e.g. MPEG-PS, land after the target) and, if the
    seek still overshoots, decodes from the start instead. A decoder failure part-way (a
    truncated file) becomes a clear error.
    """
    try:
        if begin > 1.0:
            container.seek(origin + int((begin - 1.0) / stream.time_base), stream=stream, backward=True)
            frames = container.decode(stream)
            first = next(frames, None)
            if first is not None and first.pts is not None and (first.pts - origin) * stream.time_base <= begin:
                yield first
                yield from frames
                return
            container.seek(origin, stream=stream, backward=True)
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        raise DeepswapError(f"{path}: video is corrupt or truncated ({exc.strerror})") from None


def list_photos(folder: str | Path) -> list[Path]:
    """The photos of a folder (or the one photo a path names), in name order."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DeepswapError(f"{folder}: no such photo folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def read_photos(folder: str | Path) -> Iterator[Frame]:
    """Yield the photos of a folder as frames, in name order; ``name`` is the file name."""
    for index, photo in enumerate(list_photos(folder)):
        image = _io.read_image(photo)
        if image is None:
            raise DeepswapError(f"{photo}: not a readable image; fix or remove it")
        yield Frame(index=index, time=0.0, image=image, name=photo.name)
