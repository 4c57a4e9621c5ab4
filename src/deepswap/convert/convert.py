"""Convert: swap a face through a whole video (or photos), keep the audio, label the output synthetic.

A ``Converter`` holds what every conversion with a workspace's model needs (the model, the face
pipeline, who is replaced by whom); ``convert`` builds one and converts one input. Decoding and
encoding run in their own threads (PyAV releases the GIL), overlapping the face pipeline and the
model, which run batched in the calling thread.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from .. import _io
from ..coverage import faceset_landmarks
from ..errors import DeepswapError
from ..faces import FaceAnalyzer, Identity, IdentityTracker, load_faceset
from ..progress import ProgressCallback, Reporter
from ..provenance import new_output_id
from ..train import Swapper, load_swapper
from ..userconfig import signing_identity
from ..video import Frame, VideoInfo, in_background, join_videos, prefetch, probe_video, read_frames, read_photos
from ..video.writer import VideoWriter, write_image
from ..workspace import CONFIG_NAME, PersonKey, Workspace, WorkspaceLike, as_workspace, other_person
from .cluster import SwapKit, run_chunks_on_ray
from .chunks import Chunk, convert_chunk, fingerprint, frame_total, open_chunks, part_counts, part_path, plan_chunks
from .eyelids import EyelidFollower, usual_openness
from .mouth import widest_opening
from .outputs import OutputPlan, plan_outputs
from .workers import ChunkTask, default_workers, run_chunks
from .options import ConvertOptions, Direction, ReplaceSettings, replaced_person
from .replace import FaceReplacer, Located



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


class Converter:
    """A workspace's trained swap, ready to replace either person's face in any number of inputs.

    Built once (it loads the model and the face pipeline); ``convert`` writes one output,
    ``replacer`` gives the per-frame pipeline to callers that handle frames themselves (evaluate).
    """

    def __init__(self, workspace: WorkspaceLike, swapper: Swapper | None = None) -> None:
        self.workspace: Workspace = as_workspace(workspace)
        self.swapper = swapper or load_swapper(self.workspace)
        self.analyzer = FaceAnalyzer(face_size=self.workspace.face_size)
        self._identities: dict[PersonKey, Identity] = {}
        self._landmarks: dict[PersonKey, np.ndarray] = {}

    def identity(self, person: PersonKey) -> Identity:
        """The identity of a person, as extract stored it (convert swaps only them)."""
        if person not in self._identities:
            self._identities[person] = load_faceset(self.workspace.faces_dir(person)).identity()
        return self._identities[person]

    def replacer(self, direction: Direction = "a2b", settings: ReplaceSettings = ReplaceSettings()) -> FaceReplacer:
        """A fresh per-frame pipeline (its own tracking and smoothing) replacing a2b or b2a."""
        replaced = replaced_person(direction)
        other = other_person(replaced)
        widest = self.widest_mouth(other) if settings.mouth_interior == "wide" else math.inf
        return FaceReplacer(self.analyzer, IdentityTracker(self.identity(replaced), self.analyzer.encoder),
                            self.swapper, other, settings, widest, self.eyelid_follower(replaced))

    def extracted_landmarks(self, person: PersonKey) -> np.ndarray:
        """The landmarks of a person's extracted faces (N×68×2), read once per converter like the
        identity (a batch makes a replacer per input)."""
        if person not in self._landmarks:
            self._landmarks[person] = faceset_landmarks(load_faceset(self.workspace.faces_dir(person)))[0]
        return self._landmarks[person]

    def widest_mouth(self, person: PersonKey) -> float:
        """The widest mouth opening among a person's extracted faces (what the model learned to draw)."""
        return widest_opening(self.extracted_landmarks(person))

    def eyelid_follower(self, replaced: PersonKey) -> EyelidFollower:
        """Both persons' usual eye openness, for closing the drawn eyes as far as ``replaced``'s are."""
        return EyelidFollower(usual_openness(self.extracted_landmarks(replaced)),
                              usual_openness(self.extracted_landmarks(other_person(replaced))))

    def convert(self, input_path: str | Path, output: str | Path, options: ConvertOptions | None = None,
                on_progress: ProgressCallback | None = None) -> ConvertReport:
        """Replace the face of ``options.replaced`` with the other person's in a video, photo or photo folder.

        The output (video, photo, photo folder, GIF or preview PNGs) always carries the synthetic
        label, the invisible watermark and Content Credentials naming the model and the input.
        Progress: one ``task`` counted in frames (videos), a ``file`` event per file written.
        """
        options = options or ConvertOptions()
        input_path, output = Path(input_path), Path(output)
        if not input_path.exists():
            raise DeepswapError(f"{input_path}: no such file or folder")
        if not (output.parent if output.parent != Path("") else Path(".")).is_dir():
            raise DeepswapError(f"{output}: the folder {output.parent} does not exist")
        plan = plan_outputs(input_path, output, gif=options.gif, preview=options.preview is not None,
                            force=options.force or self.began_before(input_path, output, options))
        signing = signing_identity(options.sign_cert, options.sign_key, options.tsa_url,
                                   (self.workspace.root / CONFIG_NAME, self.workspace.settings))
        replacer = self.replacer(options.direction, options.replace)
        reporter = Reporter("convert", on_progress)
        report = ConvertReport(output, output_id=new_output_id())
        label = {"replaced_person": self.workspace.persons[options.replaced].name, "output_id": report.output_id,
                 "model": self.swapper.name, "signing": signing}
        started = time.perf_counter()
        info = probe_video(input_path) if plan.kind != "photos" else None
        chunks = plan_chunks(input_path, info, options) if info is not None and plan.kind == "video" else None
        record = {"input": str(input_path.resolve()), "direction": options.direction}
        self._record(output, {**record, "pending": True}, reporter)  # a run stopped from here on leaves it ours
        if plan.kind == "photos":
            _convert_photos(input_path, plan, options, replacer, label, report)
        elif chunks:
            self._convert_in_chunks(input_path, plan.target, chunks, info, options, label, report, reporter)
        else:
            _convert_video(input_path, plan, options, replacer, label, report, reporter)
        report.seconds = time.perf_counter() - started
        record.update(frames=report.frames, swapped=report.swapped, output_id=report.output_id)
        if plan.target.is_file():
            record["sha256"] = _io.sha256_file(plan.target)
        self._record(output, record, reporter)
        for path in report.files:
            reporter.file(path, "output")
        return report

    def began_before(self, input_path: Path, output: Path, options: ConvertOptions) -> bool:
        """Whether a convert of ``input_path`` in ``options``' direction began ``output`` and was
        stopped before it recorded it finished (outputs.json holds its ``pending`` entry): what
        stands there is its own unfinished work, replaced without ``force``."""
        resolved = str(output.resolve())
        try:
            entries = self.workspace.outputs(unfinished=True)
        except DeepswapError:  # a damaged list is set aside when this output is recorded
            return False
        return any(entry["path"] == resolved and entry.get("pending") and entry.get("input") == str(input_path.resolve())
                   and entry.get("direction") == options.direction for entry in entries)

    def _record(self, output: Path, record: dict[str, Any], reporter: Reporter) -> None:
        kept = self.workspace.record_output(output, record)
        if kept is not None:
            reporter.note(f"{self.workspace.outputs_path} was damaged; kept it as {kept} and started a new list")

    def _convert_in_chunks(self, input_path: Path, target: Path, chunks: list[Chunk], info: VideoInfo,
                           options: ConvertOptions, label: dict[str, Any], report: ConvertReport,
                           reporter: Reporter) -> None:
        """Convert the chunks not finished before, then join them into ``target`` (see ``chunks``)."""
        folder, report.output_id = open_chunks(
            target, fingerprint(input_path, self.swapper.name, self.swapper.iteration, options), report.output_id)
        label = {**label, "output_id": report.output_id}
        parts = [part_path(folder, chunk) for chunk in chunks]
        finished = [part_counts(part) for part in parts]
        reporter.task(f"convert {input_path.name}", total=frame_total(chunks, info), unit="frames",
                      done=sum(counts["frames"] for counts in finished if counts))
        size = output_size(info.width, info.height, options)
        tasks = [ChunkTask(input_path, chunk, part, info, size, options, label)
                 for chunk, part, counts in zip(chunks, parts, finished) if counts is None]
        self._run_chunk_tasks(tasks, options, reporter)
        for counts in map(part_counts, parts):
            report.frames += counts["frames"]  # type: ignore[index]
            report.swapped += counts["swapped"]  # type: ignore[index]
        report.passed_through = report.frames - report.swapped
        join_videos(parts, target, fps=info.fps, output_id=report.output_id, replaced_person=label["replaced_person"],
                    audio_source=input_path if info.has_audio else None, audio_start=options.start or 0.0,
                    audio_duration=options.duration, model=label["model"], source=input_path, signing=label["signing"])
        shutil.rmtree(folder)
        report.files.append(target)
        reporter.finish()

    def _run_chunk_tasks(self, tasks: list[ChunkTask], options: ConvertOptions, reporter: Reporter) -> None:
        """Convert chunks on the Ray cluster (``options.ray``), in worker processes, or here one after another."""
        if not tasks:
            return
        if options.ray:
            kit = SwapKit.of(self.swapper, self.identity(options.replaced), options.replaced, self.workspace.face_size,
                             self.widest_mouth(other_person(options.replaced)), self.eyelid_follower(options.replaced))
            run_chunks_on_ray(options.ray, kit, tasks, reporter.advance)
            return
        workers = min(options.workers or default_workers(len(tasks)), len(tasks))
        if workers > 1:
            run_chunks(self.workspace.root, tasks, workers, reporter.advance)
            return
        for task in tasks:
            convert_chunk(task.input_path, task.chunk, task.part, self.replacer(options.direction, options.replace),
                          task.info, task.size, options, task.label, lambda swapped: reporter.advance())


def convert(workspace: WorkspaceLike, input_path: str | Path, output: str | Path, options: ConvertOptions | None = None,
            on_progress: ProgressCallback | None = None) -> ConvertReport:
    """Replace one workspace person's face with the other's in a video, photo or photo folder
    (``Converter(workspace).convert(...)``; build a ``Converter`` to convert several inputs)."""
    options = options or ConvertOptions()
    return Converter(workspace).convert(input_path, output, options, on_progress)


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
                   label: dict[str, str], report: ConvertReport, reporter: Reporter) -> None:
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
    reporter.task(f"convert {input_path.name}", total=total, unit="frames")

    def counted(frame: Frame, swapped: np.ndarray, where: Located | None, side_by_side: bool):
        report.count(where is not None)
        reporter.advance()
        return compose(frame.image, swapped, where, side_by_side)

    if plan.kind == "preview":
        plan.target.mkdir(parents=True, exist_ok=True)
        plan.remove_replaced_previews()

        def save_preview(frame: Frame, swapped: np.ndarray, where: Located | None) -> None:
            image, region = counted(frame, swapped, where, True)
            path = plan.preview_path(frame.index)
            write_image(path, image, region=region, source=input_path, **label)
            report.files.append(path)

        swap_frames(prefetch(frames), replacer, options.batch_size, save_preview)
    else:
        target = plan.target
        with VideoWriter(target, fps=info.fps, size=size, crf=options.crf, preset="fast",
                         audio_source=input_path if info.has_audio else None, audio_start=begin,
                         audio_duration=options.duration, source=input_path, **label) as writer, \
                in_background(lambda item: writer.write(*item)) as encode:
            swap_frames(prefetch(frames), replacer, options.batch_size,
                        lambda frame, swapped, where: encode(counted(frame, swapped, where, options.side_by_side)))
        report.files.append(target)
    reporter.finish()


def _convert_photos(input_path: Path, plan: OutputPlan, options: ConvertOptions, replacer: FaceReplacer,
                    label: dict[str, str], report: ConvertReport) -> None:
    folder = input_path.is_dir()
    if folder:
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
        write_image(target, image, region=region, source=input_path / frame.name if folder else input_path, **label)
        report.files.append(target)
        report.count(where is not None)
