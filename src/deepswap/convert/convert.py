"""Convert: swap a face through a whole video (or photos), keep the audio, label the output synthetic.

Decoding and encoding run in their own threads (PyAV releases the GIL), overlapping the face
pipeline and the model, which run batched in the calling thread.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

import cv2
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from ..errors import DeepswapError
from ..faces import FaceAnalyzer, IdentityTracker, load_faceset
from ..provenance import new_output_id
from ..train import load_swapper
from ..video import Frame, prefetch, probe_video, read_frames, read_photos
from ..video.writer import VideoWriter, write_image
from ..workspace import PersonKey, Workspace
from .blend import BlendMode
from .color import ColorMode
from .outputs import OutputPlan, plan_outputs
from .replace import FaceReplacer, Located, ReplaceSettings

Direction = Literal["a2b", "b2a"]


@dataclass
class ConvertOptions:
    """Everything `deepswap convert` can be told (defaults: replace A with B, whole video)."""

    direction: Direction = "a2b"
    side_by_side: bool = False
    start: float | None = None
    duration: float | None = None
    scale: float | None = None
    width: int | None = None
    color: ColorMode = "reinhard"
    blend: BlendMode = "feather"
    mask_erode: float = 0.03
    mask_blur: float = 0.08
    smooth: bool = True
    crf: int = 18
    gif: bool = False
    preview: int | None = None
    batch_size: int = 16
    force: bool = False  # replace existing outputs (never the input)


@dataclass
class ConvertReport:
    output: Path
    frames: int = 0
    swapped: int = 0
    passed_through: int = 0
    seconds: float = 0.0
    output_id: str = ""
    files: list[Path] = field(default_factory=list)

    def count(self, swapped: bool) -> None:
        """Count one frame written, with or without a swapped face."""
        self.frames += 1
        self.swapped += swapped
        self.passed_through += not swapped

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def convert(root: str | Path, input_path: str | Path, output: str | Path, options: ConvertOptions | None = None,
            progress: bool = True) -> ConvertReport:
    """Replace one workspace person's face with the other's in a video, photo or photo folder.

    The output (video, photo, photo folder, GIF or preview PNGs) always carries the synthetic label
    and the invisible watermark.
    """
    options = options or ConvertOptions()
    workspace = Workspace.open(root)
    input_path, output = Path(input_path), Path(output)
    _check_options(options)
    replaced: PersonKey = "a" if options.direction == "a2b" else "b"
    if not input_path.exists():
        raise DeepswapError(f"{input_path}: no such file or folder")
    if not (output.parent if output.parent != Path("") else Path(".")).is_dir():
        raise DeepswapError(f"{output}: the folder {output.parent} does not exist")
    plan = plan_outputs(input_path, output, gif=options.gif, preview=options.preview is not None, force=options.force)
    swapper = load_swapper(workspace.root)
    analyzer = FaceAnalyzer(face_size=workspace.face_size)
    replacer = FaceReplacer(
        analyzer, IdentityTracker(load_faceset(workspace.faces_dir(replaced)).identity(), analyzer.encoder),
        swapper.swap, workspace.other(replaced),
        ReplaceSettings(options.color, options.blend, options.mask_erode, options.mask_blur, options.smooth),
    )
    report = ConvertReport(output, output_id=new_output_id())
    label = {"replaced_person": workspace.persons[replaced].name, "output_id": report.output_id}
    started = time.perf_counter()
    if plan.kind == "photos":
        _convert_photos(input_path, plan, options, replacer, label, report)
    else:
        _convert_video(input_path, plan, options, replacer, label, report, progress)
    report.seconds = time.perf_counter() - started
    workspace.record_output(output, {"input": str(input_path.resolve()), "direction": options.direction,
                                     "frames": report.frames, "swapped": report.swapped, "output_id": report.output_id})
    if progress:
        Console(stderr=True).print(
            f"{report.frames} frames: {report.swapped} swapped, {report.passed_through} passed through "
            f"({report.fps:.1f} frames/s) → {output}")
    return report


def _check_options(options: ConvertOptions) -> None:
    if options.scale is not None and options.width is not None:
        raise DeepswapError("give --scale or --width, not both")
    if options.scale is not None and not 0 < options.scale <= 8:
        raise DeepswapError(f"--scale must be in (0, 8], not {options.scale}")
    if options.width is not None and not 16 <= options.width <= 16384:
        raise DeepswapError(f"--width must be 16..16384 pixels, not {options.width}")
    if options.preview is not None and options.preview < 1:
        raise DeepswapError(f"--preview must be ≥ 1, not {options.preview}")
    if not 0 <= options.crf <= 51:
        raise DeepswapError(f"--crf must be 0..51, not {options.crf}")


def output_size(width: int, height: int, options: ConvertOptions) -> tuple[int, int]:
    """The size of an output frame (even, for H.264), after --scale/--width and --side-by-side."""
    factor = options.scale if options.scale is not None else (options.width / width / (2 if options.side_by_side else 1)
                                                             if options.width is not None else 1.0)
    panel_width = max(2, round(width * factor / 2) * 2)
    panel_height = max(2, round(height * factor / 2) * 2)
    return (panel_width * (2 if options.side_by_side else 1), panel_height)


NOTHING_SWAPPED = (0.0, 0.0, 0.0, 0.0)


def compose(original: np.ndarray, swapped: np.ndarray, where: Located | None,
            side_by_side: bool) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """The output frame at input resolution (the writer resizes it) and the area to watermark.

    Side by side, the frame is original | swapped, each labelled, and only the swapped panel is
    watermarked (a crop of the original panel is not a deepswap output). A frame with a swapped
    face is otherwise watermarked whole (None); one without has an empty area: nothing in it was
    generated, so it passes through unchanged.
    """
    if not side_by_side:
        return swapped, None if where is not None else NOTHING_SWAPPED
    height, width = original.shape[:2]
    original, swapped = original.copy(), swapped.copy()
    _caption(original, "original")
    _caption(swapped, "swapped (synthetic)")
    region = (float(width), 0.0, float(2 * width), float(height)) if where is not None else NOTHING_SWAPPED
    return np.hstack([original, swapped]), region


def _caption(image: np.ndarray, text: str) -> None:
    scale = max(0.35, image.shape[0] / 720)
    origin = (int(8 * scale), int(24 * scale))
    thickness = max(1, round(scale * 2))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.7, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.7, (255, 255, 255), thickness, cv2.LINE_AA)


def swap_frames(frames: Iterable[Frame], replacer: FaceReplacer, batch_size: int,
                on_frame: Callable[[Frame, np.ndarray, Located | None], None]) -> None:
    """Run the face replacement over frames in order, batched; call ``on_frame`` with each result."""
    batch: list[tuple[Frame, Located | None]] = []

    def flush() -> None:
        rendered = replacer.render([frame.image for frame, _ in batch], [where for _, where in batch])
        for (frame, where), image in zip(batch, rendered):
            on_frame(frame, image, where)
        batch.clear()

    for frame in frames:
        batch.append((frame, replacer.locate(frame)))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()


def _convert_video(input_path: Path, plan: OutputPlan, options: ConvertOptions, replacer: FaceReplacer,
                   label: dict[str, str], report: ConvertReport, show_progress: bool) -> None:
    info = probe_video(input_path)
    size = output_size(info.width, info.height, options)
    begin = options.start or 0.0
    span = options.duration if options.duration is not None else max(info.duration - begin, 0.0)
    total = max(1, round(span * float(info.fps)))
    frames = read_frames(input_path, start=options.start, duration=options.duration)
    if options.preview is not None:
        wanted = set(np.linspace(0, total - 1, min(options.preview, total)).round().astype(int).tolist())
        frames = (frame for k, frame in enumerate(frames) if k in wanted)
        total = len(wanted)
    progress = frame_progress(show_progress)
    task = progress.add_task(f"convert {input_path.name}", total=total)

    def counted(frame: Frame, swapped: np.ndarray, where: Located | None, side_by_side: bool):
        report.count(where is not None)
        progress.advance(task)
        return compose(frame.image, swapped, where, side_by_side)

    with progress:
        if plan.kind == "preview":
            plan.target.mkdir(parents=True, exist_ok=True)
            plan.remove_replaced_previews()

            def save_preview(frame: Frame, swapped: np.ndarray, where: Located | None) -> None:
                image, region = counted(frame, swapped, where, True)
                path = plan.preview_path(frame.index)
                write_image(path, image, region=region, **label)
                report.files.append(path)

            swap_frames(prefetch(frames), replacer, options.batch_size, save_preview)
            return
        target = plan.target
        with VideoWriter(target, fps=info.fps, size=size, crf=options.crf, preset="fast", audio_source=input_path if info.has_audio else None,
                         audio_start=begin, audio_duration=options.duration, **label) as writer:
            encoder = _Background(lambda item: writer.write(*item))
            swap_frames(prefetch(frames), replacer, options.batch_size,
                        lambda frame, swapped, where: encoder.put(counted(frame, swapped, where, options.side_by_side)))
            encoder.close()
        report.files.append(target)


def _convert_photos(input_path: Path, plan: OutputPlan, options: ConvertOptions, replacer: FaceReplacer,
                    label: dict[str, str], report: ConvertReport) -> None:
    if input_path.is_dir():
        plan.target.mkdir(parents=True, exist_ok=True)
    for frame in read_photos(input_path):
        replacer.reset()
        where = replacer.locate(frame)
        swapped = replacer.render([frame.image], [where])[0]
        image, region = compose(frame.image, swapped, where, options.side_by_side)
        height, width = frame.image.shape[:2]
        size = output_size(width, height, options)
        if size != (image.shape[1], image.shape[0]):
            factor = size[0] / image.shape[1]
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
            region = tuple(v * factor for v in region)
        target = plan.photos[frame.name]
        write_image(target, image, region=region, **label)
        report.files.append(target)
        report.count(where is not None)


def frame_progress(enabled: bool) -> Progress:
    """A progress bar over frames (count, frames/s, time left) on stderr; silent when not ``enabled``."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(show_speed=True), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


class _Background:
    """Calls ``consume`` on items in a background thread (encoding overlaps the model)."""

    def __init__(self, consume: Callable[[np.ndarray], None], depth: int = 32) -> None:
        self._queue: queue.Queue = queue.Queue(depth)
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(consume,), daemon=True)
        self._thread.start()

    def _run(self, consume: Callable[[np.ndarray], None]) -> None:
        while (item := self._queue.get()) is not None:
            if not self._failure:
                try:
                    consume(item)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._failure.append(exc)

    def put(self, item: np.ndarray) -> None:
        if self._failure:
            raise self._failure[0]
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._failure:
            raise self._failure[0]
