"""The extract step: every source of a person → aligned crops, masks and alignments of that person only.

For each person: fetch missing downloads, settle who the person is (their reference photo, or
the face seen most often in a sample of their footage), then stream every source's frames
through the face pipeline, keeping the one face per frame that is them. Progress is saved every
few seconds and whenever the run stops, so a re-run only does what is left.
"""

from __future__ import annotations

import hashlib
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import _io
from ..errors import DeepswapError
from ..video import Frame, list_photos, prefetch, probe_video, read_frames
from ..workspace import PERSON_KEYS, PersonKey, Source, Workspace, parse_person, writes_workspace
from .analyzer import FaceAnalyzer, blur_score
from .faceset import MASKS, FaceSet, face_id
from .identity import DEFAULT_THRESHOLD, Identity, IdentityTracker, dominant_identity

SAVE_EVERY_S = 15.0
SAMPLE_FRAMES = 60
SAMPLE_SOURCES = 20
SAMPLES_PER_SECOND = 2.0
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
STEPS = ("setup", "decode", "detect", "identity", "landmarks", "align", "write")


@dataclass
class PersonReport:
    """What one extract run did for one person. ``times`` are seconds spent per step (``setup``:
    loading earlier results and settling the identity, which may sample the footage)."""

    person: PersonKey
    faces: int = 0
    new_faces: int = 0
    frames: int = 0
    skipped_no_face: int = 0
    skipped_other_person: int = 0
    embedded: int = 0
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    notes: list[str] = field(default_factory=list)


@writes_workspace("extract")
def extract(
    root: str | Path,
    person: str | None = None,
    fps: float | None = None,
    force: bool = False,
    progress: bool = True,
    detect_size: int = 320,
    identity_every: int = 25,
) -> dict[PersonKey, PersonReport]:
    """Extract the aligned faces of person ``a``, ``b`` or both (``person=None``) from their sources.

    ``fps`` samples videos at that rate (default: every frame). Finished sources are skipped and
    interrupted ones resumed; ``force`` discards earlier results of the person and redoes all.
    ``detect_size`` is the longest side frames are scaled to for detection; a face followed from
    frame to frame has its identity embedded every ``identity_every`` frames (1 = every frame).
    """
    workspace = Workspace.open(root)
    keys = [parse_person(person)] if person else list(PERSON_KEYS)
    if fps is not None and not fps > 0:
        raise DeepswapError(f"--fps must be > 0, not {fps}")
    wanted = [key for key in keys if workspace.persons[key].sources]
    if not wanted:
        who = f"person {keys[0]}" if person else "either person"
        raise DeepswapError(f"{workspace.root}: no sources for {who}; add footage with `deepswap add`")
    console = Console(quiet=not progress)
    if any(source.kind == "url" and not workspace.is_available(key, source)
           for key in wanted for source in workspace.persons[key].sources):
        from ..sources import fetch_sources

        try:
            fetch_sources(workspace.root, progress=progress)
        except DeepswapError as error:  # extract what is there; the failed URLs are named and skipped
            console.print(f"[yellow]note:[/] {escape(str(error))}")
    analyzer = FaceAnalyzer(face_size=workspace.face_size, detect_size=detect_size)
    reports: dict[PersonKey, PersonReport] = {}
    failures: list[str] = []
    for key in keys:
        if key not in wanted:
            console.print(f"{key} ({escape(workspace.persons[key].name)}): no sources yet, skipped")
            continue
        try:
            reports[key] = _PersonExtraction(workspace, key, analyzer, fps, force, identity_every, console).run()
        except DeepswapError as error:  # the other person is still extracted; the error is raised after
            failures.append(str(error))
    if progress and reports:
        print_summary(workspace, reports, console)
    if failures:
        raise DeepswapError("; ".join(failures))
    return reports


class _PersonExtraction:
    """Extraction of one person's sources into their faces folder."""

    def __init__(self, workspace: Workspace, key: PersonKey, analyzer: FaceAnalyzer, fps: float | None,
                 force: bool, identity_every: int, console: Console) -> None:
        self.workspace = workspace
        self.key = key
        self.name = workspace.persons[key].name
        self.analyzer = analyzer
        self.fps = fps
        self.console = console
        self.folder = workspace.faces_dir(key)
        self.report = PersonReport(key)
        self.force = force
        self.identity_every = identity_every
        self.faceset = FaceSet.empty(self.folder, workspace.face_size)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepswap-write")
        self._pending: list[Future[None]] = []
        self._saved_at = time.monotonic()

    def run(self) -> PersonReport:
        with self._timed("setup"):
            identity = self._open()
        tracker = IdentityTracker(identity, self.analyzer.encoder, recheck_every=self.identity_every)
        sources = self.workspace.persons[self.key].sources
        todo = [source for source in sources if self._needs_work(source)]
        try:
            with _progress(self.console) if todo else nullcontext() as bar:
                for source in todo:
                    self._extract_source(source, tracker, bar)
        finally:
            self._flush()
            self._writer.shutdown()
            self.faceset.save()
        self.report.embedded = tracker.embedded
        self.report.faces = len(self.faceset)
        self.report.sources = {s.id: dict(self.faceset.sources[s.id]) for s in sources if s.id in self.faceset.sources}
        if self.report.faces == 0:
            raise DeepswapError(f"{self.folder}: no faces of {self.name} found in any of their {len(sources)} source(s); "
                                "add footage that shows the face clearly" + ("" if identity.origin == "footage"
                                                                             else " or check the --reference photo"))
        return self.report

    def _open(self) -> Identity:
        """Load the earlier extraction and settle the identity to keep.

        The earlier faces are discarded (only once the new identity is known to be valid) when
        ``force`` is set, or the face size, reference photo or identity threshold changed.
        """
        threshold = float(self.workspace.settings.get("identity_threshold", DEFAULT_THRESHOLD))
        reference = self.workspace.reference_path(self.key)
        digest = hashlib.sha1(reference.read_bytes()).hexdigest() if reference and reference.is_file() else None
        wanted = {"origin": "reference" if reference else "footage", "reference_sha1": digest, "threshold": threshold}
        earlier = None if self.force else FaceSet.load(self.folder)
        if earlier is not None and earlier.face_size != self.workspace.face_size:
            self._note(f"face size changed from {earlier.face_size} to {self.workspace.face_size}: extracting again")
            earlier = None
        if earlier is not None and earlier.data["identity"] == wanted and earlier.identity_path.is_file():
            self.faceset = earlier
            deleted = earlier.forget_deleted()
            if deleted:
                self._note(f"{len(deleted)} face(s) whose crops were deleted are left out for good")
                earlier.save()
            return Identity.load(earlier.identity_path, threshold, wanted["origin"])
        if earlier is not None and (earlier.faces or earlier.sources):
            self._note("the reference photo or identity threshold changed: extracting again")
        if reference is not None:
            identity = reference_identity(reference, self.analyzer, threshold, self.name)
        else:
            identity = self._identity_from_footage(threshold)
        _clear_faces(self.folder)
        identity.save(self.faceset.identity_path)
        self.faceset.data["identity"] = wanted
        self.faceset.save()
        return identity

    def _identity_from_footage(self, threshold: float) -> Identity:
        sources = self.workspace.persons[self.key].sources
        embeddings = []
        frames = 0
        for image in sample_images(self.workspace, self.key, sources):
            frames += 1
            detections = sorted(self.analyzer.detect(image), key=lambda d: -d.area)[:5]
            embeddings.extend(self.analyzer.embed(image, detection) for detection in detections)
        if not embeddings:
            where = sources[0].uri if len(sources) == 1 else f"{len(sources)} sources of {self.name}"
            raise DeepswapError(f"{where}: no face found in {frames} sampled frames; add footage that shows "
                                f"{self.name}'s face, or a --reference photo")
        first, second = dominant_identity(np.stack(embeddings), threshold)
        if second is not None and len(second.members) >= 0.5 * len(first.members):
            self._note(f"two people appear about equally often in {self.name}'s footage; kept the more frequent one "
                       f"({len(first.members)} vs {len(second.members)} sampled faces); add --reference to choose")
        return Identity(first.centre, threshold, "footage")

    # extracting
    def _needs_work(self, source: Source) -> bool:
        """Whether a source is available and not finished yet (at this frame rate); says why not."""
        if not self.workspace.is_available(self.key, source):
            hint = "run `deepswap fetch`" if source.kind == "url" else "it was moved or deleted"
            self._note(f"{source.uri}: footage not available ({hint}); skipped")
            return False
        state = self.faceset.sources.get(source.id)
        if state is not None and state["complete"] and state.get("fps") == self._fps(source):
            self.console.print(f"{self.key}: {escape(_short(source.uri))} done before ({state['faces']} faces)")
            return False
        return True

    def _fps(self, source: Source) -> float | None:
        return None if source.kind == "photos" else self.fps

    def _extract_source(self, source: Source, tracker: IdentityTracker, bar: Progress | None) -> None:
        fps = self._fps(source)
        state = self.faceset.sources.get(source.id)
        if state is None or state.get("fps") != fps:
            state = {"uri": source.uri, "complete": False, "frames": 0, "faces": 0, "skipped_no_face": 0,
                     "skipped_other_person": 0, "fps": fps, "last_frame": -1}
            self.faceset.sources[source.id] = state
        state["faces"] = sum(1 for record in self.faceset.faces.values() if record["source"] == source.id)
        self._delete_unrecorded(source.id)
        done = set(self.faceset.faces) | set(self.faceset.removed)
        task = bar.add_task(f"{self.key}: {escape(_short(source.uri))}", total=_frame_estimate(self.workspace, self.key, source, fps),
                            found=state["faces"], skipped=state["skipped_no_face"] + state["skipped_other_person"]) if bar else None
        tracker.reset()
        for frame in self._timed_frames(source, fps):
            if frame.index <= state["last_frame"]:
                continue
            name = face_id(source.id, frame.index)
            if name not in done:
                if source.kind == "photos":
                    tracker.reset()
                outcome, record, images = self._extract_frame(frame, tracker)
                if record is not None:  # written before it is recorded: a listed face always has its files
                    self._write(name, *images)
                    self.faceset.faces[name] = {"source": source.id, **record}
                state[outcome] += 1
                self.report.new_faces += outcome == "faces"
                self.report.skipped_no_face += outcome == "skipped_no_face"
                self.report.skipped_other_person += outcome == "skipped_other_person"
            state["frames"] += 1
            state["last_frame"] = frame.index
            if bar is not None:
                bar.update(task, advance=1, found=state["faces"],
                           skipped=state["skipped_no_face"] + state["skipped_other_person"])
            if time.monotonic() - self._saved_at > SAVE_EVERY_S:
                self._flush()
                self.faceset.save()
                self._saved_at = time.monotonic()
        state["complete"] = True
        if bar is not None:
            bar.update(task, total=state["frames"], completed=state["frames"])
        if state["faces"] == 0:
            self._note(f"{source.uri}: no faces of {self.name} in {state['frames']} frames "
                       f"({state['skipped_no_face']} without any face)")

    def _timed_frames(self, source: Source, fps: float | None) -> Iterator[Frame]:
        """The source's frames, decoded ahead on a thread; ``decode`` times the waits for them.
        Unreadable photos are reported and skipped."""
        frames = prefetch(_source_frames(self.workspace, self.key, source, fps))
        while True:
            with self._timed("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            if frame.image.size == 0:
                self._note(f"{frame.name}: not a readable image; skipped (fix or remove it)")
                continue
            yield frame

    def _extract_frame(self, frame: Frame, tracker: IdentityTracker
                       ) -> tuple[str, dict[str, Any] | None, tuple[np.ndarray, np.ndarray] | None]:
        """Find the person in one frame: the outcome (the counter to raise: ``faces``,
        ``skipped_no_face`` or ``skipped_other_person``), and the face's record, crop and mask."""
        self.report.frames += 1
        with self._timed("detect"):
            detections = self.analyzer.detect(frame.image)
        if not detections:
            tracker.reset()
            return "skipped_no_face", None, None
        with self._timed("identity"):
            detection, distance = tracker.select(frame.image, detections)
        if detection is None:
            return "skipped_other_person", None, None
        with self._timed("landmarks"):
            face = self.analyzer.describe(frame.image, detection)
        with self._timed("align"):
            crop, mask = face.crop(frame.image), face.mask()
            blur = blur_score(crop)
        record = {
            "frame": frame.index, "time": round(frame.time, 4),
            "box": np.round(face.box.astype(np.float64), 2).tolist(), "score": round(face.score, 4),
            "landmarks": np.round(face.landmarks.astype(np.float64), 2).tolist(),
            "matrix": np.round(face.matrix, 6).tolist(), "identity_distance": round(distance, 4), "blur": round(blur, 2),
        }
        if frame.name:
            record["name"] = frame.name
        return "faces", record, (crop, mask)

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.report.times[step] += time.perf_counter() - start

    # files
    def _write(self, name: str, crop: np.ndarray, mask: np.ndarray) -> None:
        """Encode and write a crop and its mask on the writer thread (PNG, fast compression)."""
        with self._timed("write"):
            if len(self._pending) > 32:
                self._pending.pop(0).result()
        self._pending.append(self._writer.submit(_write_pngs, self.faceset.crop_path(name), crop,
                                                 self.faceset.mask_path(name), mask))

    def _flush(self) -> None:
        """Wait until every crop handed to the writer is on disk (before alignments.json names it)."""
        with self._timed("write"):
            while self._pending:
                self._pending.pop(0).result()

    def _delete_unrecorded(self, source_id: str) -> None:
        """Remove crops of an unfinished source that alignments.json does not list (an interrupted run's)."""
        for path in self.folder.glob(f"{source_id}_*.png"):
            if path.stem not in self.faceset.faces:
                path.unlink(missing_ok=True)
                (self.folder / MASKS / path.name).unlink(missing_ok=True)

    def _note(self, message: str) -> None:
        self.report.notes.append(message)
        self.console.print(f"[yellow]note:[/] {self.key}: {escape(message)}")


def _write_pngs(crop_path: Path, crop: np.ndarray, mask_path: Path, mask: np.ndarray) -> None:
    for path, image in ((mask_path, mask), (crop_path, crop)):
        pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", pixels, PNG_OPTIONS)
        if not ok:
            raise OSError(f"{path}: could not encode image")
        _io.write_bytes(path, encoded.tobytes(), durable=False)  # bulk: no fsync per crop (see _io)


def _clear_faces(folder: Path) -> None:
    """Delete a person's earlier extraction (crops, masks, alignments, identity)."""
    for pattern in ("*.png", f"{MASKS}/*.png", "alignments.json", "identity.npy"):
        for path in folder.glob(pattern):
            path.unlink()


def reference_identity(path: Path, analyzer: FaceAnalyzer, threshold: float = DEFAULT_THRESHOLD,
                       name: str = "the person") -> Identity:
    """The identity shown in a reference photo, which must show exactly one face."""
    image = _io.read_image(path) if path.is_file() else None
    if image is None:
        raise DeepswapError(f"{path}: reference photo missing or unreadable; add it again with `deepswap add --reference`")
    detections = analyzer.detect(image)
    if not detections:
        raise DeepswapError(f"{path}: no face found in the reference photo; use a clear, frontal photo of {name}")
    if len(detections) > 1:
        raise DeepswapError(f"{path}: {len(detections)} faces in the reference photo; use one that shows only {name}")
    return Identity(analyzer.embed(image, detections[0]), threshold, "reference")


def _source_frames(workspace: Workspace, key: PersonKey, source: Source, fps: float | None) -> Iterator[Frame]:
    """Frames of a source; photos are read one by one so an unreadable one is yielded empty, not fatal."""
    if source.kind != "photos":
        from ..sources import source_frames

        yield from source_frames(workspace, key, source, fps)
        return
    path = workspace.local_path(key, source)
    if not path.exists():
        raise DeepswapError(f"{source.uri}: footage not available (it was moved or deleted)")
    for index, photo in enumerate(list_photos(path)):
        image = _io.read_image(photo)
        yield Frame(index=index, time=0.0, image=np.zeros((0, 0, 3), np.uint8) if image is None else image, name=photo.name)


def sample_images(workspace: Workspace, key: PersonKey, sources: list[Source],
                  total: int = SAMPLE_FRAMES, max_sources: int = SAMPLE_SOURCES) -> Iterator[np.ndarray]:
    """A spread-out sample of a person's footage: up to ``total`` images from up to ``max_sources``
    sources, at most two per second of video."""
    available = [s for s in sources if workspace.is_available(key, s)]
    chosen = [available[round(i * len(available) / max_sources)] for i in range(max_sources)] \
        if len(available) > max_sources else available
    per_source = max(2, math.ceil(total / max(1, len(chosen))))
    for source in chosen:
        path = workspace.local_path(key, source)
        if source.kind == "photos":
            photos = list_photos(path)
            for photo in photos[:: max(1, len(photos) // per_source)][:per_source]:
                image = _io.read_image(photo)
                if image is not None:
                    yield image
            continue
        try:
            end = probe_video(path).duration
        except DeepswapError:
            continue  # the main pass reports it
        begin = source.start or 0.0
        if source.duration is not None:
            end = min(end, begin + source.duration)
        count = min(per_source, max(1, int(SAMPLES_PER_SECOND * (end - begin))))
        for i in range(count):
            at = begin + (i + 0.5) * max(0.0, end - begin) / count
            try:
                frame = next(iter(read_frames(path, start=at, duration=0.01)), None)
            except DeepswapError:
                continue
            if frame is not None:
                yield frame.image


def _frame_estimate(workspace: Workspace, key: PersonKey, source: Source, fps: float | None) -> int | None:
    path = workspace.local_path(key, source)
    if source.kind == "photos":
        return len(list_photos(path))
    info = probe_video(path)
    length = max(0.0, info.duration - (source.start or 0.0))
    if source.duration is not None:
        length = min(length, source.duration)
    return max(1, round(length * (fps or float(info.fps))))


def _progress(console: Console) -> Progress | nullcontext[None]:
    if console.quiet:
        return nullcontext()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                    TextColumn("[green]{task.fields[found]} faces[/] · {task.fields[skipped]} skipped"),
                    TimeElapsedColumn(), console=console)


def _short(uri: str, width: int = 40) -> str:
    name = Path(uri).name or uri
    return name if len(name) <= width else name[: width - 1] + "…"


def print_summary(workspace: Workspace, reports: dict[PersonKey, PersonReport], console: Console, rows: int = 12) -> None:
    """A table per run: each person's sources with frames, faces and skips, and the step timings."""
    table = Table(title="extract")
    for column in ("person", "source", "frames", "faces", "no face", "other person"):
        table.add_column(column, justify="left" if column in ("person", "source") else "right")
    for key, report in reports.items():
        label = f"{key}: {workspace.persons[key].name}"
        states = list(report.sources.values())
        for state in states[:rows]:
            table.add_row(label, escape(_short(state["uri"])), str(state["frames"]), str(state["faces"]),
                          str(state["skipped_no_face"]), str(state["skipped_other_person"]))
        if len(states) > rows:
            rest = states[rows:]
            table.add_row(label, f"… {len(rest)} more", *(str(sum(s[k] for s in rest)) for k in
                                                        ("frames", "faces", "skipped_no_face", "skipped_other_person")))
        table.add_row(f"[bold]{label}[/]", "[bold]all[/]", *(f"[bold]{sum(s[k] for s in states)}[/]" for k in
                                                          ("frames", "faces", "skipped_no_face", "skipped_other_person")),
                      end_section=True)
    console.print(table)
    for report in reports.values():
        spent = sum(report.times.values())
        if report.frames and spent > 0:
            steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in report.times.items())
            console.print(f"{report.person}: {report.frames} new frames at {report.frames / spent:.0f} frames/s ({steps}); "
                          f"{report.faces} faces in {workspace.faces_dir(report.person)}")
