"""Extracting a person's sources side by side: in local worker processes, or on a Ray cluster
(``deepswap.parallel`` runs the tasks).

The identity is settled first, here; then each source is a task. A worker builds the face
pipeline once, scans the source's frames as ``extract`` does in one process (``FrameScan``) and
returns its faces as PNG bytes with the source's state and counts (a ``SourceResult``). Only this
process writes the faces folder and alignments.json: it merges each source as it returns, so a
stopped run keeps every finished source and redoes only the others, and the faces have the same
names as in one process (a face is named by its source and frame). A source that fails is listed
in the person's report, alone; the others go on. On a Ray cluster nothing is shared: a task gets
the source's bytes (the video file, or a photo folder's photos) with the identity and options.
Each task sends the progress events of its source, as ``extract`` in one process does.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _io, parallel
from ..errors import DeepswapError
from ..faces import FaceAnalyzer, Identity, IdentityTracker
from ..progress import Reporter
from ..video import list_photos
from ..workspace import Source
from .extract import PNG_OPTIONS, FrameScan, PersonReport, SourceResult, source_frames, timed
from .options import ExtractOptions

if TYPE_CHECKING:
    from .extract import _PersonExtraction

# Peak resident memory of an extract worker (0.6 GiB measured by benchmarks/scale.py), rounded up.
MEMORY_PER_WORKER_GIB = 1.0
# Measured by benchmarks/scale.py on 2 cores (8 and 32 GRID clips): 2 workers get going about 11 s
# later than one process (spawning, imports, models) and then extract about 1.5 times as fast, so
# they finish first above about 1,400 frames; below this many frames per worker, fewer finish sooner.
FRAMES_PER_WORKER = 700


@dataclass(frozen=True)
class SourceTask:
    """One source of a person to extract: where to read it (``path``, the ``span`` within it, at
    ``fps``), where an earlier run stopped (``state``, ``known`` faces), whom to keep
    (``identity``) and how (``options``); ``task`` and ``total`` name and size its progress."""

    person: str
    name: str
    source: Source
    path: Path
    span: tuple[float | None, float | None]
    fps: float | None
    state: dict[str, Any]
    known: frozenset[str]
    identity: Identity
    face_size: int
    options: ExtractOptions
    task: str
    total: int | None


def default_workers(tasks: int, frames: int) -> int:
    """Extract worker processes that fit this machine (``parallel.default_workers`` at
    ``MEMORY_PER_WORKER_GIB`` each) and that ``frames`` of footage keep busy."""
    return max(1, min(parallel.default_workers(MEMORY_PER_WORKER_GIB, tasks), frames // FRAMES_PER_WORKER))


def extract_elsewhere(extraction: _PersonExtraction, todo: list[Source], identity: Identity, workers: int) -> None:
    """Extract the sources ``todo`` of a person in ``workers`` local processes, or on the Ray
    cluster at ``options.ray``, merging each into the person's faces as it returns."""
    workspace, key = extraction.workspace, extraction.key
    tasks = [SourceTask(key, extraction.name, source, workspace.local_path(key, source),
                        workspace.local_span(key, source), extraction.fps(source), dict(extraction.source_state(source)),
                        frozenset(extraction.known_faces(source)), identity, workspace.face_size,
                        replace(extraction.options, workers=1, ray=None), extraction.task_name(source),
                        extraction.frame_estimate(source)) for source in todo]

    def settle(task: SourceTask, result: SourceResult | DeepswapError) -> None:
        if isinstance(result, DeepswapError):
            extraction.report.failed[task.source.uri] = str(result)
        else:
            extraction.merge(task.source, result)

    relay = extraction.reporter.relay
    if extraction.options.ray:
        ray = parallel.connect(extraction.options.ray)
        calls = [(task, (task, _payload(task))) for task in tasks]
        parallel.run_on_ray(ray, _extract_remote_source, calls, relay, settle, lambda task: task.source.uri)
    else:
        job = parallel.Job("extract", _analyzer, (workspace.face_size, extraction.options.detect_size), _run_task)
        parallel.run_in_processes(job, tasks, workers, relay, settle)


@functools.lru_cache(maxsize=2)
def _analyzer(face_size: int, detect_size: int) -> FaceAnalyzer:
    """The face pipeline of a worker process (built once, kept for its next tasks)."""
    return FaceAnalyzer(face_size=face_size, detect_size=detect_size)


def _run_task(analyzer: FaceAnalyzer, task: SourceTask, send: parallel.Send) -> SourceResult:
    return scan_source(analyzer, task, task.path, send)


def scan_source(analyzer: FaceAnalyzer, task: SourceTask, path: Path, send: parallel.Send) -> SourceResult:
    """Extract one source read from ``path``, its faces kept as PNG bytes; ``send`` gets the progress events."""
    report = PersonReport(task.person)  # type: ignore[arg-type]
    reporter = Reporter("extract", send)
    reporter.task(task.task, total=task.total, unit="frames", done=task.state["frames"])
    tracker = IdentityTracker(task.identity, analyzer.encoder, recheck_every=task.options.identity_every)
    state = dict(task.state)
    faces: list[tuple[str, dict[str, Any], bytes, bytes]] = []

    def keep(name: str, record: dict[str, Any], crop: Any, mask: Any) -> None:
        with timed(report.times, "write"):
            faces.append((name, record, _io.encode_image(crop, ".png", PNG_OPTIONS),
                          _io.encode_image(mask, ".png", PNG_OPTIONS)))

    scan = FrameScan(task.name, analyzer, tracker, report, reporter, report.notes.append)
    scan.source(task.source, source_frames(path, task.source, *task.span, task.fps), state, set(task.known), keep)
    report.embedded = tracker.embedded
    return SourceResult(state, faces, report)


def _payload(task: SourceTask) -> bytes | dict[str, bytes]:
    """What a worker without this file system needs of a source: the video file's bytes, or a
    photo folder's photos by name."""
    if not task.path.exists():
        raise DeepswapError(f"{task.source.uri}: footage not available (it was moved or deleted)")
    if task.source.kind == "photos":
        return {photo.name: photo.read_bytes() for photo in list_photos(task.path)}
    return task.path.read_bytes()


def _extract_remote_source(task: SourceTask, payload: bytes | dict[str, bytes], messages: Any) -> SourceResult:
    """A Ray task: extract one source handed over as bytes; its progress events go on ``messages``."""
    with tempfile.TemporaryDirectory(prefix="deepswap-source-") as folder:
        if isinstance(payload, dict):
            path = Path(folder) / "photos"
            path.mkdir()
            for name, data in payload.items():
                (path / name).write_bytes(data)
        else:
            path = Path(folder) / f"source{task.path.suffix}"
            path.write_bytes(payload)
        return scan_source(_analyzer(task.face_size, task.options.detect_size), task, path, messages.put)
