"""Converting chunks and batch inputs in local worker processes (see ``deepswap.parallel``).

Each worker process loads the model and the face pipeline once (a ``Converter``) and takes tasks:
a chunk of a long video (``ChunkTask``) or a whole batch input (``InputTask``). Workers send
their progress back: a frame count per chunk frame, or the ``ProgressEvent``s of an input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import parallel
from ..progress import ProgressCallback, ProgressEvent
from ..video import VideoInfo
from .chunks import Chunk, convert_chunk
from .options import ConvertOptions

# Peak resident memory of one worker converting 720p chunks (1.8 GiB measured by benchmarks/scale.py), rounded up.
MEMORY_PER_WORKER_GIB = 2.0


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a long video to convert into ``part`` (see ``chunks.convert_chunk``)."""

    input_path: Path
    chunk: Chunk
    part: Path
    info: VideoInfo
    size: tuple[int, int]
    options: ConvertOptions
    label: dict[str, Any]


@dataclass(frozen=True)
class InputTask:
    """One batch input converted whole to ``output``."""

    input_path: Path
    output: Path
    options: ConvertOptions


def default_workers(tasks: int = 1 << 30) -> int:
    """Convert worker processes that fit this machine (``parallel.default_workers`` at
    ``MEMORY_PER_WORKER_GIB`` each), no more than there are tasks."""
    return parallel.default_workers(MEMORY_PER_WORKER_GIB, tasks)


def run_chunks(workspace: Path, tasks: Sequence[ChunkTask], workers: int, on_frame: Callable[[int], None]) -> None:
    """Convert every chunk task in ``workers`` processes; ``on_frame(n)`` as frames are written."""
    parallel.run_in_processes(_job(workspace), tasks, workers, on_frame)


def run_inputs(workspace: Path, tasks: Sequence[InputTask], workers: int, on_progress: ProgressCallback | None,
               on_result: Callable[[InputTask, Any], None]) -> None:
    """Convert every batch input in ``workers`` processes; ``on_result(task, report or DeepswapError)``
    as each ends; their progress events reach ``on_progress``."""

    def relay(event: ProgressEvent) -> None:
        if on_progress is not None:
            on_progress(event)

    parallel.run_in_processes(_job(workspace), tasks, workers, relay, on_result)


def _job(workspace: Path) -> parallel.Job:
    return parallel.Job("convert", _start_converter, (workspace,), _run_task)


def _start_converter(workspace: Path) -> Any:
    from .convert import Converter

    return Converter(workspace)


def _run_task(converter: Any, task: ChunkTask | InputTask, send: parallel.Send) -> Any:
    if isinstance(task, InputTask):
        return converter.convert(task.input_path, task.output, replace(task.options, workers=1), send)
    replacer = converter.replacer(task.options.direction, task.options.replace)
    convert_chunk(task.input_path, task.chunk, task.part, replacer, task.info, task.size, task.options, task.label,
                  lambda swapped: send(1))
    return None
