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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from .. import _io
from ..errors import DeepswapError
from ..faces import (DEFAULT_THRESHOLD, MASKS, FaceAnalyzer, FaceSet, Identity, IdentityTracker, blur_score,
                     dominant_identity, face_id)
from ..progress import ProgressCallback, Reporter
from ..video import Frame, list_photos, prefetch, probe_video, read_frames
from ..workspace import PersonKey, Source, Workspace, WorkspaceLike, as_workspace
from ..writers import writes_workspace
from .options import ExtractOptions

SAVE_EVERY_S = 15.0
SAMPLE_FRAMES = 60
SAMPLE_SOURCES = 20
SAMPLES_PER_SECOND = 2.0
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
STEPS = ("setup", "decode", "detect", "identity", "landmarks", "align", "write")


@dataclass
class PersonReport:
    """What one extract run did for one person. ``times`` are seconds spent per step (``setup``:
    loading earlier results and settling the identity, which may sample the footage); ``failed``:
    the sources that failed (uri → the one-line reason), which a re-run tries again."""

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
    failed: dict[str, str] = field(default_factory=dict)


def check_failed(reports: dict[PersonKey, PersonReport]) -> None:
    """Raise one ``DeepswapError`` naming every source that failed (once the others were extracted)."""
    reasons = [reason for report in reports.values() for reason in report.failed.values()]
    if reasons:
        raise DeepswapError("; ".join(reasons))


@writes_workspace("extract")
def extract(workspace: WorkspaceLike, options: ExtractOptions | None = None,
            on_progress: ProgressCallback | None = None) -> dict[PersonKey, PersonReport]:
    """Extract the aligned faces of the person(s) in ``options`` from their sources; returns a report per person.

    Finished sources are skipped and interrupted ones resumed. Missing URL downloads are fetched
    first (a failed one is noted and skipped). A source that fails is noted and listed in its
    person's report (``failed``); the others are still extracted. Each source is a ``task`` counted in frames.
    """
    workspace = as_workspace(workspace)
    options = options or ExtractOptions()
    keys = options.persons
    wanted = [key for key in keys if workspace.persons[key].sources]
    if not wanted:
        who = f"person {keys[0]}" if options.person else "either person"
        raise DeepswapError(f"{workspace.root}: no sources for {who}; add footage with `deepswap add`")
    reporter = Reporter("extract", on_progress)
    if any(source.kind == "url" and not workspace.is_available(key, source)
           for key in wanted for source in workspace.persons[key].sources):
        from ..sources import fetch_sources

        try:
            fetch_sources(workspace, on_progress)
        except DeepswapError as error:  # extract what is there; the failed URLs are named and skipped
            reporter.note(str(error))
    analyzer = FaceAnalyzer(face_size=workspace.face_size, detect_size=options.detect_size)
    reports: dict[PersonKey, PersonReport] = {}
    failures: list[str] = []
    for key in keys:
        if key not in wanted:
            reporter.note(f"{key} ({workspace.persons[key].name}): no sources yet, skipped")
            continue
        try:
            reports[key] = _PersonExtraction(workspace, key, analyzer, options, reporter).run()
        except DeepswapError as error:  # the other person is still extracted; the error is raised after
            failures.append(str(error))
    if failures:
        raise DeepswapError("; ".join(failures))
    return reports


class _PersonExtraction:
    """Extraction of one person's sources into their faces folder (the only writer of that folder
    and its alignments.json: sources extracted by workers are merged here)."""

    def __init__(self, workspace: Workspace, key: PersonKey, analyzer: FaceAnalyzer, options: ExtractOptions,
                 reporter: Reporter) -> None:
        self.workspace = workspace
        self.key = key
        self.name = workspace.persons[key].name
        self.analyzer = analyzer
        self.options = options
        self.reporter = reporter
        self.folder = workspace.faces_dir(key)
        self.report = PersonReport(key)
        self.faceset = FaceSet.empty(self.folder, workspace.face_size)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepswap-write")
        self._pending: list[Future[None]] = []
        self._saved_at = time.monotonic()

    def run(self) -> PersonReport:
        with timed(self.report.times, "setup"):
            identity = self._open()
        sources = self.workspace.persons[self.key].sources
        todo = [source for source in sources if self._needs_work(source)]
        for source in todo:
            self._delete_unrecorded(source.id)
        try:
            workers = self._workers(todo)
            if self.options.ray or workers > 1:
                from .workers import extract_elsewhere

                extract_elsewhere(self, todo, identity, workers)
            else:
                self._extract_here(todo, identity)
        finally:
            self._flush()
            self._writer.shutdown()
            self.faceset.save()
        self.report.faces = len(self.faceset)
        self.report.sources = {s.id: dict(self.faceset.sources[s.id]) for s in sources if s.id in self.faceset.sources}
        if self.report.faces == 0:
            raise DeepswapError(f"{self.folder}: no faces of {self.name} found in any of their {len(sources)} source(s); "
                                "add footage that shows the face clearly" + ("" if identity.origin == "footage"
                                                                             else " or check the --reference photo"))
        return self.report

    def _workers(self, todo: list[Source]) -> int:
        """Worker processes for ``todo``: ``--workers``, else as many as fit the machine and as
        the footage pays the start of (``workers.default_workers``)."""
        if self.options.workers is not None or len(todo) < 2:
            return min(self.options.workers or 1, max(1, len(todo)))
        from .workers import default_workers

        frames = sum(self.frame_estimate(source) or 0 for source in todo)
        return default_workers(len(todo), frames)

    def _extract_here(self, todo: list[Source], identity: Identity) -> None:
        """Extract ``todo`` in this process, one source after another."""
        tracker = IdentityTracker(identity, self.analyzer.encoder, recheck_every=self.options.identity_every)
        scan = FrameScan(self.name, self.analyzer, tracker, self.report, self.reporter, self._note)
        for source in todo:
            try:
                self._extract_source(source, scan)
            except DeepswapError as error:  # the other sources are still extracted; a re-run retries this one
                self.report.failed[source.uri] = str(error)
        self.report.embedded += tracker.embedded

    def _open(self) -> Identity:
        """Load the earlier extraction and settle the identity to keep.

        The earlier faces are discarded (only once the new identity is known to be valid) when
        ``force`` is set, or the face size, reference photo or identity threshold changed.
        """
        threshold = self.workspace.identity_threshold
        reference = self.workspace.reference_path(self.key)
        digest = hashlib.sha1(reference.read_bytes()).hexdigest() if reference and reference.is_file() else None
        wanted = {"origin": "reference" if reference else "footage", "reference_sha1": digest, "threshold": threshold}
        earlier = None if self.options.force else FaceSet.load(self.folder)
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
        if state is not None and state["complete"] and state.get("fps") == self.fps(source):
            self.reporter.note(f"{self.key}: {_short(source.uri)} done before ({state['faces']} faces)")
            return False
        return True

    def fps(self, source: Source) -> float | None:
        """The frame rate ``source`` is sampled at (None: every frame; photos are all taken)."""
        return None if source.kind == "photos" else self.options.fps

    def frame_estimate(self, source: Source) -> int | None:
        """About how many frames ``source`` holds; None when unknown (an unreadable source fails when read)."""
        try:
            return _frame_estimate(self.workspace, self.key, source, self.fps(source))
        except DeepswapError:
            return None

    def source_state(self, source: Source) -> dict[str, Any]:
        """The extraction state of ``source`` in alignments.json (a fresh one when it has none at
        this frame rate), its face count recounted."""
        state = self.faceset.sources.get(source.id)
        if state is None or state.get("fps") != self.fps(source):
            state = {"uri": source.uri, "complete": False, "frames": 0, "faces": 0, "skipped_no_face": 0,
                     "skipped_other_person": 0, "fps": self.fps(source), "last_frame": -1}
            self.faceset.sources[source.id] = state
        state["faces"] = sum(1 for record in self.faceset.faces.values() if record["source"] == source.id)
        return state

    def known_faces(self, source: Source) -> set[str]:
        """The faces of ``source`` extracted or removed before (a resumed extraction skips them)."""
        prefix = f"{source.id}_"
        return {name for name in (*self.faceset.faces, *self.faceset.removed) if name.startswith(prefix)}

    def task_name(self, source: Source) -> str:
        return f"{self.key}: {_short(source.uri)}"

    def _extract_source(self, source: Source, scan: FrameScan) -> None:
        state = self.source_state(source)
        self.reporter.task(self.task_name(source), total=self.frame_estimate(source), unit="frames",
                           done=state["frames"])

        def record(name: str, record: dict[str, Any], crop: np.ndarray, mask: np.ndarray) -> None:
            self._write(name, crop, mask)  # written before it is recorded: a listed face always has its files
            self.faceset.faces[name] = {"source": source.id, **record}

        def save_now_and_then() -> None:
            if time.monotonic() - self._saved_at > SAVE_EVERY_S:
                self._flush()
                self.faceset.save()
                self._saved_at = time.monotonic()

        start, duration = self.workspace.local_span(self.key, source)
        frames = source_frames(self.workspace.local_path(self.key, source), source, start, duration, self.fps(source))
        scan.source(source, frames, state, self.known_faces(source), record, save_now_and_then)

    def merge(self, source: Source, result: SourceResult) -> None:
        """Write a source extracted elsewhere (a worker's ``result``) into the faces folder and
        alignments.json, as if it had been extracted here."""
        for name, record, crop, mask in result.faces:
            _io.write_bytes(self.faceset.mask_path(name), mask, durable=False)
            _io.write_bytes(self.faceset.crop_path(name), crop, durable=False)
            self.faceset.faces[name] = {"source": source.id, **record}
        self.faceset.sources[source.id] = result.state
        self.faceset.save()
        for name in ("frames", "new_faces", "skipped_no_face", "skipped_other_person", "embedded"):
            setattr(self.report, name, getattr(self.report, name) + getattr(result.report, name))
        for step, seconds in result.report.times.items():
            self.report.times[step] += seconds
        for message in result.report.notes:
            self._note(message)

    # files
    def _write(self, name: str, crop: np.ndarray, mask: np.ndarray) -> None:
        """Encode and write a crop and its mask on the writer thread (PNG, fast compression)."""
        with timed(self.report.times, "write"):
            if len(self._pending) > 32:
                self._pending.pop(0).result()
        self._pending.append(self._writer.submit(_write_pngs, self.faceset.crop_path(name), crop,
                                                 self.faceset.mask_path(name), mask))

    def _flush(self) -> None:
        """Wait until every crop handed to the writer is on disk (before alignments.json names it)."""
        with timed(self.report.times, "write"):
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
        self.reporter.note(f"{self.key}: {message}")


@dataclass
class SourceResult:
    """A source extracted by a worker: its state for alignments.json, its new faces (name, record,
    crop PNG, mask PNG) and the counts, step times and notes of its extraction (``report``)."""

    state: dict[str, Any]
    faces: list[tuple[str, dict[str, Any], bytes, bytes]]
    report: PersonReport


@dataclass
class FrameScan:
    """One source's frames after another through the face pipeline, keeping the person's face in
    each: here (``_PersonExtraction``) and in workers alike. Counts and step times go to ``report``;
    a face found goes to ``on_face(name, record, crop, mask)``."""

    name: str
    analyzer: FaceAnalyzer
    tracker: IdentityTracker
    report: PersonReport
    reporter: Reporter
    note: Callable[[str], None]

    def source(self, source: Source, frames: Iterator[Frame], state: dict[str, Any], known: set[str],
               on_face: Callable[[str, dict[str, Any], np.ndarray, np.ndarray], None],
               on_frame: Callable[[], None] = lambda: None) -> None:
        """Scan the frames of ``source`` after ``state['last_frame']``, skipping ``known`` faces;
        ``state`` is kept up to date (``complete`` at the end), progress reported per frame."""
        self.tracker.reset()
        for frame in self._timed(frames):
            if frame.index <= state["last_frame"]:
                continue
            name = face_id(source.id, frame.index)
            if name not in known:
                if source.kind == "photos":
                    self.tracker.reset()
                outcome, record, images = self._extract_frame(frame)
                if record is not None:
                    on_face(name, record, *images)  # type: ignore[misc]
                state[outcome] += 1
                self.report.new_faces += outcome == "faces"
                self.report.skipped_no_face += outcome == "skipped_no_face"
                self.report.skipped_other_person += outcome == "skipped_other_person"
            state["frames"] += 1
            state["last_frame"] = frame.index
            self.reporter.update(state["frames"], values={
                "faces": state["faces"], "skipped": state["skipped_no_face"] + state["skipped_other_person"]})
            on_frame()
        state["complete"] = True
        self.reporter.finish()
        if state["faces"] == 0:
            self.note(f"{source.uri}: no faces of {self.name} in {state['frames']} frames "
                      f"({state['skipped_no_face']} without any face)")

    def _timed(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """The frames, decoded ahead on a thread; ``decode`` times the waits for them. Unreadable
        photos are reported and skipped."""
        ahead = prefetch(frames)
        while True:
            with timed(self.report.times, "decode"):
                frame = next(ahead, None)
            if frame is None:
                return
            if frame.image.size == 0:
                self.note(f"{frame.name}: not a readable image; skipped (fix or remove it)")
                continue
            yield frame

    def _extract_frame(self, frame: Frame) -> tuple[str, dict[str, Any] | None, tuple[np.ndarray, np.ndarray] | None]:
        """Find the person in one frame: the outcome (the counter to raise: ``faces``,
        ``skipped_no_face`` or ``skipped_other_person``), and the face's record, crop and mask."""
        self.report.frames += 1
        times = self.report.times
        with timed(times, "detect"):
            detections = self.analyzer.detect(frame.image)
        if not detections:
            self.tracker.reset()
            return "skipped_no_face", None, None
        with timed(times, "identity"):
            detection, distance = self.tracker.select(frame.image, detections)
        if detection is None:
            return "skipped_other_person", None, None
        with timed(times, "landmarks"):
            face = self.analyzer.describe(frame.image, detection)
        with timed(times, "align"):
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
def timed(times: dict[str, float], step: str) -> Iterator[None]:
    """Add the seconds the block takes to ``times[step]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times[step] += time.perf_counter() - start


def _write_pngs(crop_path: Path, crop: np.ndarray, mask_path: Path, mask: np.ndarray) -> None:
    for path, image in ((mask_path, mask), (crop_path, crop)):
        _io.write_image(path, image, PNG_OPTIONS, durable=False)  # bulk: no fsync per crop (see _io)


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


def source_frames(path: Path, source: Source, start: float | None, duration: float | None,
                  fps: float | None) -> Iterator[Frame]:
    """The frames of a source read from ``path`` (its span: ``start``, ``duration``); photos are
    read one by one so that an unreadable one is yielded empty, not fatal."""
    if not path.exists():
        hint = "run `deepswap fetch` first" if source.kind == "url" else "it was moved or deleted"
        raise DeepswapError(f"{source.uri}: footage not available ({hint})")
    if source.kind != "photos":
        yield from read_frames(path, fps=fps, start=start, duration=duration)
        return
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
        start, duration = workspace.local_span(key, source)
        begin = start or 0.0
        if duration is not None:
            end = min(end, begin + duration)
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
    start, duration = workspace.local_span(key, source)
    length = max(0.0, info.duration - (start or 0.0))
    if duration is not None:
        length = min(length, duration)
    return max(1, round(length * (fps or float(info.fps))))


def _short(uri: str, width: int = 40) -> str:
    name = Path(uri).name or uri
    return name if len(name) <= width else name[: width - 1] + "…"
