"""Converting chunks and batch inputs in local worker processes (``concurrent.futures``).

Each worker process loads the model and the face pipeline once (a ``Converter``) and takes tasks
from the pool: a chunk of a long video (``ChunkTask``) or a whole batch input (``InputTask``).
Torch's threads are shared out so N workers do not oversubscribe the cores. Workers send their
progress back over a queue: a frame count per chunk frame, or the ``ProgressEvent``s of an input.
A worker that dies (killed, out of memory) breaks the pool; the tasks not finished are then given
to a fresh pool, up to ``RETRIES`` times.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DeepswapError
from ..progress import ProgressCallback, ProgressEvent
from ..video import VideoInfo
from .chunks import Chunk, convert_chunk
from .options import ConvertOptions

RETRIES = 2
# Peak resident memory of one worker converting 720p chunks (1.8 GiB measured by benchmarks/scale.py), rounded up.
MEMORY_PER_WORKER_GIB = 2.0
_worker: dict[str, Any] = {}


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
    """Worker processes that fit this machine: one per core this process may use, as many as the
    available memory holds at ``MEMORY_PER_WORKER_GIB`` each, and no more than there are tasks."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, int(_available_gib() // MEMORY_PER_WORKER_GIB), tasks))


def _available_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            fields = dict(line.split(":", 1) for line in info)
        return int(fields["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return float("inf")


def run_chunks(workspace: Path, tasks: Sequence[ChunkTask], workers: int, on_frame: Callable[[int], None]) -> None:
    """Convert every chunk task in ``workers`` processes; ``on_frame(n)`` as frames are written."""
    _run(workspace, list(tasks), workers, on_frame, None)


def run_inputs(workspace: Path, tasks: Sequence[InputTask], workers: int, on_progress: ProgressCallback | None,
               on_result: Callable[[InputTask, Any], None]) -> None:
    """Convert every batch input in ``workers`` processes; ``on_result(task, report or DeepswapError)``
    as each ends; their progress events reach ``on_progress``."""
    _run(workspace, list(tasks), workers, lambda _: None, on_progress, on_result)


def _run(workspace: Path, tasks: list[Any], workers: int, on_frame: Callable[[int], None],
         on_progress: ProgressCallback | None, on_result: Callable[[Any, Any], None] | None = None) -> None:
    context = multiprocessing.get_context("spawn")  # torch and threads do not survive fork
    messages = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    remaining = list(tasks)
    for attempt in range(RETRIES + 1):
        try:
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                     initargs=(workspace, messages, threads)) as pool:
                pending = {pool.submit(_run_task, task): task for task in remaining}
                while pending:
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _relay(messages, on_frame, on_progress)
                    for future in finished:
                        task = pending.pop(future)
                        _settle(task, future, on_result)
                        remaining.remove(task)
            _relay(messages, on_frame, on_progress)
            return
        except BrokenProcessPool:  # a worker died: its tasks (and those queued) go to a fresh pool
            if attempt == RETRIES:
                raise DeepswapError(f"{workspace}: a convert worker died {RETRIES + 1} times (out of memory?); "
                                    "run again with fewer --workers") from None


def _settle(task: Any, future: Future[Any], on_result: Callable[[Any, Any], None] | None) -> None:
    """Hand a finished task's report (or its DeepswapError, for a batch input) to ``on_result``."""
    try:
        result = future.result()
    except DeepswapError as error:
        if on_result is None:
            raise
        result = error
    if on_result is not None:
        on_result(task, result)


def _relay(messages: Any, on_frame: Callable[[int], None], on_progress: ProgressCallback | None) -> None:
    while True:
        try:
            message = messages.get_nowait()
        except queue.Empty:
            return
        if isinstance(message, ProgressEvent):
            if on_progress is not None:
                on_progress(message)
        else:
            on_frame(message)


def _start_worker(workspace: Path, messages: Any, threads: int) -> None:
    import torch

    from .convert import Converter

    torch.set_num_threads(threads)
    _worker["converter"] = Converter(workspace)
    _worker["messages"] = messages


def _run_task(task: ChunkTask | InputTask) -> Any:
    converter, messages = _worker["converter"], _worker["messages"]
    if isinstance(task, InputTask):
        return converter.convert(task.input_path, task.output, replace(task.options, workers=1), messages.put)
    replacer = converter.replacer(task.options.direction, task.options.replace)
    convert_chunk(task.input_path, task.chunk, task.part, replacer, task.info, task.size, task.options, task.label,
                  lambda swapped: messages.put(1))
    return None
