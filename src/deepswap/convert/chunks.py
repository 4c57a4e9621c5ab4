"""Converting a long video in chunks that survive a crash and can run in parallel.

The range to convert is cut at the input's keyframes into chunks of about ``chunk_seconds``.
Each chunk is converted on its own into ``.OUTPUT.chunks/part_NNNNN.mp4`` beside the output,
starting ``LEAD_FRAMES`` frames early so that face tracking and landmark smoothing have seen the
same recent frames as in one pass (those frames are not written). A part appears only when
complete (``VideoWriter``), so a stopped run redoes only the parts that are missing, as long as
the input, the model and the options are unchanged (``manifest.json``). Every part is
watermarked with the output's one id; the parts are then joined without re-encoding, the audio
muxed once and the Content Credentials signed once (``join_videos``), and the folder removed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict, dataclass, replace
from itertools import takewhile
from pathlib import Path
from typing import Any, Callable

from .. import _io
from ..errors import DeepswapError
from ..video import Frame, VideoInfo, in_background, keyframe_times, prefetch, read_frames
from ..video.writer import VideoWriter
from .options import ConvertOptions
from .replace import FaceReplacer, Located

LEAD_FRAMES = 8
MANIFEST = "manifest.json"
CHUNK_FILE = re.compile(r"manifest\.json|part_\d{5}\.(mp4|json)|\..*\.part\.(mp4|json)")  # ours, and their temporaries


@dataclass(frozen=True)
class Chunk:
    """Frames shown in [``start``, ``end``) seconds, written to part ``index``; decoding begins at
    ``lead`` (a few frames earlier) to settle tracking and smoothing."""

    index: int
    start: float
    end: float
    lead: float


def plan_chunks(input_path: Path, info: VideoInfo, options: ConvertOptions) -> list[Chunk] | None:
    """The chunks of a convert of ``input_path``, cut at keyframes about ``options.chunk_seconds``
    apart; None when it runs in one pass (chunks off, too short for two chunks, a GIF or a
    preview). On a Ray cluster a video is never converted here: what would be one pass is one chunk."""
    begin = options.start or 0.0
    end = begin + options.duration if options.duration is not None else info.duration
    seconds = options.chunk_seconds
    if options.gif or options.preview is not None:
        return None
    last = end if options.duration is not None else math.inf  # to the end of the input, however long it really is
    whole = [Chunk(0, begin, last, begin)] if options.ray else None
    if not seconds or end - begin < 2 * seconds:
        return whole
    frame = 1 / float(info.fps)
    keyframes = [time for time in keyframe_times(input_path) if begin + frame < time < end - frame]
    cuts: list[float] = []
    for wanted in (begin + k * seconds for k in range(1, math.ceil((end - begin) / seconds))):
        nearest = min(keyframes, key=lambda time: abs(time - wanted), default=None)
        if nearest is not None and nearest > (cuts[-1] if cuts else begin):
            cuts.append(nearest)
    if not cuts:
        return whole
    starts = [begin, *cuts]
    ends = [*cuts, last]
    return [Chunk(index, start, stop, max(0.0, start - LEAD_FRAMES * frame))
            for index, (start, stop) in enumerate(zip(starts, ends))]


def chunk_folder(target: Path) -> Path:
    """Where the chunks of the output ``target`` are kept until they are joined."""
    return target.with_name(f".{target.name}.chunks")


def open_chunks(target: Path, fingerprint: dict[str, Any], output_id: str) -> tuple[Path, str]:
    """The chunk folder of ``target`` and the output id its parts carry: an earlier run's, when it
    converted the same input with the same model and options (``fingerprint``); else a fresh folder."""
    folder = chunk_folder(target)
    manifest = folder / MANIFEST
    try:
        earlier = json.loads(manifest.read_text("utf-8"))
    except (OSError, ValueError):
        earlier = None
    if isinstance(earlier, dict) and earlier.get("fingerprint") == fingerprint and isinstance(earlier.get("output_id"), str):
        for path in _io.stale_temporaries(folder.iterdir()):
            path.unlink(missing_ok=True)
        return folder, earlier["output_id"]
    if folder.is_dir():
        foreign = [path.name for path in folder.iterdir() if not CHUNK_FILE.fullmatch(path.name)]
        if foreign:
            raise DeepswapError(f"{folder}: holds files that are not chunks of a convert ({', '.join(sorted(foreign)[:3])}); "
                                "move them, or write the output elsewhere")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _io.write_json(manifest, {"fingerprint": fingerprint, "output_id": output_id})
    return folder, output_id


def fingerprint(input_path: Path, model: str, iteration: int, options: ConvertOptions) -> dict[str, Any]:
    """What the parts depend on: the input file (path, size, time), the model and every option that
    changes a frame (not ``force`` nor how the work is spread)."""
    stat = input_path.stat()
    shaping = asdict(replace(options, force=False, sign_cert=None, sign_key=None, tsa_url=None, workers=None, ray=None))
    return {"input": str(input_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "model": model, "iteration": iteration, "options": json.loads(json.dumps(shaping, default=str))}


def part_path(folder: Path, chunk: Chunk) -> Path:
    return folder / f"part_{chunk.index:05d}.mp4"


def part_counts(part: Path) -> dict[str, int] | None:
    """The frames and swapped frames of a finished part (recorded once the part is complete), else None."""
    try:
        counts = json.loads(part.with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return counts if part.is_file() and isinstance(counts, dict) else None


def record_part(part: Path, frames: int, swapped: int) -> None:
    """Mark ``part`` finished, with its counts (after the part itself is in place)."""
    _io.write_json(part.with_suffix(".json"), {"frames": frames, "swapped": swapped})


def convert_chunk(input_path: Path, chunk: Chunk, part: Path, replacer: FaceReplacer, info: VideoInfo,
                  size: tuple[int, int], options: ConvertOptions, label: dict[str, Any],
                  on_frame: Callable[[bool], None]) -> None:
    """Convert one chunk into the video ``part`` (no audio) and record it finished, calling
    ``on_frame(swapped)`` per frame written."""
    counts = {"frames": 0, "swapped": 0}

    def counted(swapped: bool) -> None:
        counts["frames"] += 1
        counts["swapped"] += swapped
        on_frame(swapped)

    _write_chunk(input_path, chunk, part, replacer, info, size, options, label, counted)
    record_part(part, counts["frames"], counts["swapped"])


def _write_chunk(input_path: Path, chunk: Chunk, part: Path, replacer: FaceReplacer, info: VideoInfo,
                 size: tuple[int, int], options: ConvertOptions, label: dict[str, Any],
                 on_frame: Callable[[bool], None]) -> None:
    from .convert import compose, swap_frames

    half_frame = 0.5 / float(info.fps)
    frames = takewhile(lambda frame: frame.time < chunk.end - half_frame, read_frames(input_path, start=chunk.lead))
    with VideoWriter(part, fps=info.fps, size=size, crf=options.crf, preset="fast", source=input_path,
                     **label) as writer, in_background(lambda item: writer.write(*item)) as encode:

        def write(frame: Frame, swapped: Any, where: Located | None) -> None:
            if frame.time >= chunk.start - half_frame:  # the lead frames only settle the tracking
                on_frame(where is not None)
                encode(compose(frame.image, swapped, where, options.side_by_side))

        swap_frames(prefetch(frames), replacer, options.batch_size, write)


def frame_total(chunks: list[Chunk], info: VideoInfo) -> int:
    """About how many frames the chunks hold (for progress)."""
    end = min(chunks[-1].end, info.duration)
    return max(1, round((end - chunks[0].start) * float(info.fps)))
