"""Writing videos and images: the one place deepswap writes pictures, so every output is labelled.

Every frame written goes through the invisible watermark, and every file gets the provenance label
and signed Content Credentials (see :mod:`deepswap.provenance`); none of them can be switched off.
Files are written and signed under a temp name and renamed only when complete, so an output
appears signed or not at all, and an error or interruption never leaves a partial one.
"""

from __future__ import annotations

from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterable, Iterator, Sequence

import av
import cv2
import numpy as np
from PIL import Image

from .. import _io, userconfig
from ..errors import DeepswapError
from ..filetypes import VIDEO_OUTPUT_SUFFIXES
from ..provenance.credentials import Claim, SigningIdentity, sign
from ..provenance.metadata import IMAGE_SUFFIXES, encode_image, provenance_label, provenance_metadata
from ..provenance.watermark import Region, Watermarker, new_output_id

AUDIO_COPYABLE = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
}
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class VideoWriter:
    """Encode RGB frames to H.264 (yuv420p), optionally with the audio of a source time range.

    ``audio_source`` is a media file whose audio in [``audio_start``, ``audio_start`` +
    ``audio_duration``) plays with the frames: the first frame written corresponds to
    ``audio_start`` (seconds from the source's first video frame, as in
    :func:`deepswap.video.read_frames`); the audio stops with the last frame. AAC (and other codecs
    the container takes) is copied; anything else is re-encoded to AAC. A ``.gif`` path writes an
    animated GIF instead (no audio). ``size`` (width, height) resizes every frame to it; otherwise
    the first frame sets the size. Odd sizes lose their last row/column (H.264 needs even ones).
    The file's Content Credentials name the model kind ``model`` and the input file ``source``
    (recorded by hash, never copied), signed by ``signing`` (default: :func:`deepswap.userconfig.signing_identity`).

    Use as a context manager; the file appears only when the ``with`` block ends without error::

        with VideoWriter("out.mp4", fps=25, replaced_person="alice", audio_source="in.mp4") as writer:
            for frame in frames:
                writer.write(frame)
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        *,
        replaced_person: str | None = None,
        output_id: str | None = None,
        size: tuple[int, int] | None = None,
        crf: int = 18,
        preset: str = "medium",
        audio_source: str | Path | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        model: str | None = None,
        source: str | Path | None = None,
        signing: SigningIdentity | None = None,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_OUTPUT_SUFFIXES:
            raise DeepswapError(f"{self.path}: cannot write {suffix or 'suffix-less'} videos; "
                                f"use one of {', '.join(VIDEO_OUTPUT_SUFFIXES)}")
        if fps <= 0:
            raise DeepswapError(f"{self.path}: frame rate must be > 0, not {fps}")
        if not 0 <= crf <= 51:
            raise DeepswapError(f"{self.path}: crf must be within 0..51, not {crf}")
        self.fps = Fraction(fps).limit_denominator(1001 * 1000)
        self.output_id = output_id or new_output_id()
        self.replaced_person = replaced_person
        self.frames_written = 0
        self._watermarker = Watermarker(self.output_id)
        self._claim = Claim(self.output_id, self.path.name, model, Path(source) if source is not None else None)
        self._signing = signing or userconfig.signing_identity()
        self._crf, self._preset = crf, preset
        self._audio_source = Path(audio_source) if audio_source is not None else None
        if self._audio_source is not None:
            _open_audio(self._audio_source).close()  # a bad audio source fails before any work is done
        self._audio_start, self._audio_duration = audio_start, audio_duration
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.VideoStream | None = None
        self._audio: _AudioTrack | None = None
        self._gif_frames: list[Image.Image] = []
        self._size = (size[0] // 2 * 2, size[1] // 2 * 2) if size is not None else None
        self._stack = ExitStack()
        try:
            self._tmp = self._stack.enter_context(_io.temp_path(self.path))
        except OSError as error:
            raise DeepswapError(f"{self.path}: cannot write here ({error.strerror or error})") from None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.close()
        else:
            self._abort(kind, error, trace)

    def write(self, frame_rgb: np.ndarray, region: Region = None) -> None:
        """Watermark (``region``: the swapped area as a box or mask; None = whole frame) and encode."""
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError("VideoWriter.write expects H×W×3 uint8 RGB frames")
        if self._size is None:
            self._size = (frame_rgb.shape[1] // 2 * 2, frame_rgb.shape[0] // 2 * 2)
        width, height = self._size
        if width == 0 or height == 0:
            raise DeepswapError(f"{self.path}: frame of {frame_rgb.shape[1]}×{frame_rgb.shape[0]} is too small")
        if self.frames_written == 0 and self._container is None:
            self._open()
        frame, region = _fit(frame_rgb, region, width, height)
        self._watermarker.embed(frame, region)
        if self._container is None:
            self._gif_frames.append(Image.fromarray(frame))
        else:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = self.frames_written
            self._container.mux(self._stream.encode(video_frame))
            if self._audio is not None:
                self._audio.write_until((self.frames_written + 1) / self.fps)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (flush the encoder, the rest of the audio), sign it and move it into place."""
        try:
            if self.frames_written == 0:
                raise DeepswapError(f"{self.path}: no frames were written")
            if self._container is None:
                self._save_gif()
            else:
                self._container.mux(self._stream.encode())
                if self._audio is not None:
                    self._audio.finish(self.frames_written / self.fps)
                self._container.close()
                self._container = None
            with _io.atomic_path(self.path) as signed:
                sign(self._tmp, signed, self._claim, self._signing)
        except BaseException as error:
            self._abort(type(error), error, error.__traceback__)
            raise
        self._stack.close()

    def _abort(self, kind: type[BaseException] | None, error: BaseException | None,
               trace: TracebackType | None) -> None:
        """Drop everything written so far; the temp file is removed, the target left untouched."""
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass
            self._container = None
        self._stack.__exit__(kind, error, trace)

    def _open(self) -> None:
        if self.path.suffix.lower() == ".gif":
            return
        width, height = self._size
        self._container = av.open(str(self._tmp), "w", options={"movflags": "+faststart"})
        self._container.metadata.update(provenance_metadata(self.replaced_person, self.output_id))
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / self.fps
        stream.options = {"crf": str(self._crf), "preset": self._preset}
        self._stream = stream
        if self._audio_source is not None:
            self._audio = _AudioTrack(self._container, self._audio_source, self._audio_start,
                                      self._audio_duration, self.path.suffix.lower())

    def _save_gif(self) -> None:
        label = provenance_label(self.replaced_person, self.output_id).text().encode("utf-8")
        first, *rest = self._gif_frames
        first.save(self._tmp, "GIF", save_all=True, append_images=rest, loop=0,
                   duration=round(1000 / float(self.fps)), comment=label)


def _fit(frame: np.ndarray, region: Region, width: int, height: int) -> tuple[np.ndarray, Region]:
    """A copy of the frame (and its region) at the output size: resized, or cropped by one pixel."""
    if frame.shape[1] // 2 * 2 == width and frame.shape[0] // 2 * 2 == height:
        if isinstance(region, np.ndarray):
            region = region[:height, :width]
        return frame[:height, :width].copy(), region
    scale_x, scale_y = width / frame.shape[1], height / frame.shape[0]
    shrinking = scale_x * scale_y < 1
    resized = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if isinstance(region, np.ndarray):
        weight = region.astype(np.float32) / (255.0 if region.dtype == np.uint8 else 1.0)
        region = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
    elif region is not None:
        x0, y0, x1, y1 = region
        region = (x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y)
    return resized, region


class _AudioTrack:
    """The audio of a source time range, copied or re-encoded into an output, in step with its video."""

    def __init__(self, output: av.container.OutputContainer, source: Path, start: float,
                 duration: float | None, suffix: str) -> None:
        self.source = source
        self._input = _open_audio(source)
        self._in_stream = self._input.streams.audio[0]
        video = self._input.streams.video[0] if self._input.streams.video else None
        origin = float(video.start_time * video.time_base) if video is not None and video.start_time else 0.0
        self._begin = origin + start
        self._end = self._begin + duration if duration is not None else float("inf")
        codec = self._in_stream.codec_context
        self._copy = codec.name in AUDIO_COPYABLE[suffix]
        if self._copy:
            self._out_stream = output.add_stream_from_template(self._in_stream)
        else:
            rate = codec.sample_rate if codec.sample_rate in AAC_RATES else 48000
            layout = "stereo" if codec.channels >= 2 else "mono"
            self._out_stream = output.add_stream("aac", rate=rate, layout=layout)
            self._out_stream.bit_rate = 192000 if layout == "stereo" else 128000
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self._rate = rate
            self._samples_out = 0
        self._output = output
        self._packets = self._demux_from(self._begin)
        self._pending: av.Packet | None = None

    def write_until(self, until: float) -> None:
        """Mux audio covering output time [.., ``until``) (seconds from the first video frame)."""
        end = min(self._begin + until, self._end)
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            start = float(packet.pts * packet.time_base)
            if start >= end:
                self._pending = packet
                return
            packet_end = start + float((packet.duration or 0) * packet.time_base)
            if self._copy:
                self._copy_packet(packet, start, packet_end)
            else:
                self._encode_packet(packet)

    def finish(self, video_duration: float) -> None:
        """Mux the audio up to the end of the video, flush the encoder and close the source."""
        self._end = min(self._end, self._begin + video_duration)
        self.write_until(video_duration)
        if not self._copy:
            self._output.mux(self._out_stream.encode(None))
        self.close()

    def close(self) -> None:
        self._input.close()

    def _copy_packet(self, packet: av.Packet, start: float, end: float) -> None:
        # One packet before the range is kept: it primes the decoder, and the edit list that the
        # mp4 muxer writes for the negative timestamp hides it, so playback starts exactly at begin.
        packet_length = end - start
        if end <= self._begin - packet_length or start >= self._end:
            return
        offset = round(self._begin / packet.time_base)
        packet.pts -= offset
        packet.dts = packet.pts
        packet.stream = self._out_stream
        self._output.mux(packet)

    def _encode_packet(self, packet: av.Packet) -> None:
        try:
            frames = packet.decode()
        except av.FFmpegError:
            return
        for frame in frames:
            for resampled in self._resampler.resample(frame):
                self._encode_samples(resampled)

    def _encode_samples(self, frame: av.AudioFrame) -> None:
        """Encode the part of a resampled frame inside [begin, end), sample-exactly."""
        if frame.pts is None:
            return
        first = float(frame.pts * frame.time_base)
        begin = max(0, round((self._begin - first) * self._rate))
        stop = frame.samples
        if self._end != float("inf"):
            stop = min(stop, round((self._end - first) * self._rate))
        if stop <= begin:
            return
        samples = frame.to_ndarray()[:, begin:stop]
        trimmed = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=frame.layout.name)
        trimmed.sample_rate = self._rate
        trimmed.pts = self._samples_out
        trimmed.time_base = Fraction(1, self._rate)
        self._samples_out += trimmed.samples
        self._output.mux(self._out_stream.encode(trimmed))

    def _demux_from(self, begin: float) -> Iterator[av.Packet]:
        """Audio packets from at or before ``begin`` (seeking a little early, as the reader does)."""
        stream = self._in_stream
        try:
            if begin > 2.0:
                self._input.seek(int((begin - 2.0) / stream.time_base) + (stream.start_time or 0),
                                 stream=stream, backward=True)
                packets = (p for p in self._input.demux(stream) if p.pts is not None)
                first = next(packets, None)
                if first is not None and float(first.pts * first.time_base) <= begin - 0.1:
                    yield first
                    yield from packets
                    return
                self._input.seek(stream.start_time or 0, stream=stream, backward=True)
            yield from (p for p in self._input.demux(stream) if p.pts is not None)
        except av.FFmpegError as error:
            raise DeepswapError(f"{self.source}: audio is corrupt or truncated ({error.__class__.__name__})") from None


def join_videos(parts: Sequence[Path], path: str | Path, *, fps: float | Fraction, output_id: str,
                replaced_person: str | None = None, audio_source: str | Path | None = None, audio_start: float = 0.0,
                audio_duration: float | None = None, model: str | None = None, source: str | Path | None = None,
                signing: SigningIdentity | None = None) -> int:
    """Join videos that ``VideoWriter`` wrote for one output (its chunks, watermarked with
    ``output_id``) into ``path`` without re-encoding: their packets one after another, timed as
    one video at ``fps``; the audio of a source range muxed once (as ``VideoWriter`` does), the
    label, and Content Credentials signed once. Returns the frames joined. The file appears only
    when complete."""
    path = Path(path)
    claim = Claim(output_id, path.name, model, Path(source) if source is not None else None)
    with _io.temp_path(path) as tmp, ExitStack() as opened:
        inputs = [opened.enter_context(av.open(str(part))) for part in parts]
        _check_joinable(inputs, parts)
        output = opened.enter_context(av.open(str(tmp), "w", options={"movflags": "+faststart"}))
        output.metadata.update(provenance_metadata(replaced_person, output_id))
        stream = output.add_stream_from_template(inputs[0].streams.video[0])
        audio = None
        if audio_source is not None:
            audio = _AudioTrack(output, Path(audio_source), audio_start, audio_duration, path.suffix.lower())
            opened.callback(audio.close)
        frames = 0
        for container in inputs:
            part = container.streams.video[0]
            offset = round(frames / Fraction(fps) / part.time_base)  # this part's start, in its own time base
            for packet in container.demux(part):
                if packet.dts is None:  # the demuxer's empty packet at the end
                    continue
                packet.pts += offset
                packet.dts += offset
                packet.stream = stream
                output.mux(packet)
                frames += 1
            if audio is not None:
                audio.write_until(frames / Fraction(fps))
        if audio is not None:
            audio.finish(frames / Fraction(fps))
        output.close()
        with _io.atomic_path(path) as signed:
            sign(tmp, signed, claim, signing or userconfig.signing_identity())
    return frames


def _check_joinable(inputs: Sequence[av.container.InputContainer], parts: Sequence[Path]) -> None:
    """Every part must be encoded like the first (codec, size, parameters) to be joined without re-encoding."""
    if not inputs:
        raise DeepswapError("no videos to join")
    first = inputs[0].streams.video[0].codec_context
    for container, part in zip(inputs, parts):
        codec = container.streams.video[0].codec_context
        if (codec.name, codec.width, codec.height, codec.extradata) != (first.name, first.width, first.height,
                                                                      first.extradata):
            raise DeepswapError(f"{part}: encoded unlike {parts[0].name}; cannot join them without re-encoding")


def _open_audio(source: Path) -> av.container.InputContainer:
    if not source.is_file():
        raise DeepswapError(f"{source}: no such file to take the audio from")
    try:
        container = av.open(str(source))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise DeepswapError(f"{source}: not a readable media file ({error.__class__.__name__})") from None
    if not container.streams.audio:
        container.close()
        raise DeepswapError(f"{source}: has no audio stream")
    return container


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    **options: object,
) -> str:
    """Write RGB frames to a labelled, watermarked video (options as for :class:`VideoWriter`);
    returns the output id."""
    with VideoWriter(path, fps, **options) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.output_id


def write_image(
    path: str | Path,
    rgb: np.ndarray,
    *,
    replaced_person: str | None = None,
    output_id: str | None = None,
    region: Region = None,
    quality: int = 95,
    model: str | None = None,
    source: str | Path | None = None,
    signing: SigningIdentity | None = None,
) -> str:
    """Write a labelled, watermarked, signed PNG / JPEG / GIF image atomically; returns the output id.

    ``model``, ``source`` and ``signing`` are as for :class:`VideoWriter`.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DeepswapError(f"{path}: cannot write {path.suffix or 'suffix-less'} images; "
                            f"use one of {', '.join(IMAGE_SUFFIXES)}")
    output_id = output_id or new_output_id()
    signing = signing or userconfig.signing_identity()
    marked = Watermarker(output_id).embed(np.array(rgb, dtype=np.uint8, copy=True), region)
    data = encode_image(marked, path.suffix, provenance_label(replaced_person, output_id), quality)
    claim = Claim(output_id, path.name, model, Path(source) if source is not None else None)
    try:
        with _io.atomic_path(path) as tmp:
            sign(data, tmp, claim, signing)
    except OSError as error:
        raise DeepswapError(f"{path}: cannot write here ({error.strerror or error})") from None
    return output_id
