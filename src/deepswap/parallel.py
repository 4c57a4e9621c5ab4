"""Running a stage's tasks side by side: in local worker processes, or on a Ray cluster.

Convert (a long video's chunks, a batch's inputs) and extract (a person's sources) hand their
tasks here; what a task is and does is theirs, how tasks are spread, retried and heard from is this.

Local (``run_in_processes``): a spawn-context process pool. Each worker process builds its state
once (``Job.start``: a model, a face pipeline) and runs tasks with it (``Job.run``); PyTorch's
and OpenCV's threads are shared out so that N workers do not oversubscribe the cores. A task
sends messages (progress events, frame counts) that reach ``on_message`` in this process. A
worker that dies (killed, out of memory) breaks the pool; the unfinished tasks then go to a fresh
pool, up to ``RETRIES`` times.

Ray (``connect``, ``run_on_ray``; the ``cluster`` extra): one Ray task per task, each asking for
one CPU and, when the cluster has GPUs, one GPU. Nothing is assumed shared: what a task needs
travels as its arguments (Ray's object store) and what it makes comes back as its result. Its
messages travel over a ``ray.util.queue.Queue``. A task whose worker dies is retried on another
(Ray's ``max_retries``); a task that fails for a reason of its own (a ``DeepswapError``) is not.

Either way ``on_result(task, result)`` gets each task's result, or its ``DeepswapError``, as the
task ends; without ``on_result`` a failed task stops the run with its error.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import DeepswapError

RETRIES = 2
_worker: dict[str, Any] = {}
Send = Callable[[Any], None]
ResultCallback = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Job:
    """What worker processes run. ``start(*start_args)`` builds a worker's state once;
    ``run(state, task, send)`` runs one task and returns its result, ``send``-ing messages on the
    way. Both are module-level functions (a spawned process finds them by name)."""

    stage: str
    start: Callable[..., Any]
    start_args: tuple[Any, ...]
    run: Callable[[Any, Any, Send], Any]


def default_workers(memory_gib: float, tasks: int = 1 << 30) -> int:
    """Worker processes that fit this machine: one per core this process may use, as many as the
    available memory holds at ``memory_gib`` each, and no more than there are tasks."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, int(available_gib() // memory_gib), tasks))


def available_gib() -> float:
    """Memory available to new processes (/proc/meminfo's MemAvailable); unlimited where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            fields = dict(line.split(":", 1) for line in info)
        return int(fields["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return float("inf")


def run_in_processes(job: Job, tasks: Sequence[Any], workers: int, on_message: Send,
                     on_result: ResultCallback | None = None) -> None:
    """Run every task in ``workers`` local processes (see the module docstring)."""
    context = multiprocessing.get_context("spawn")  # torch and threads do not survive fork
    messages = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    remaining = list(tasks)
    for attempt in range(RETRIES + 1):
        try:
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                     initargs=(job, messages, threads)) as pool:
                pending = {pool.submit(_run_task, task): task for task in remaining}
                while pending:
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _relay(messages, on_message)
                    for future in finished:
                        task = pending.pop(future)
                        _settle(task, _outcome(future), on_result)
                        remaining.remove(task)
            _relay(messages, on_message)
            return
        except BrokenProcessPool:  # a worker died: its tasks (and those queued) go to a fresh pool
            if attempt == RETRIES:
                raise DeepswapError(f"{job.stage}: worker processes died {RETRIES + 1} times (out of memory?); "
                                    "run again with fewer --workers") from None


def _outcome(future: Future[Any]) -> Any:
    try:
        return future.result()
    except DeepswapError as error:
        return error


def _settle(task: Any, result: Any, on_result: ResultCallback | None) -> None:
    """Hand a finished task's result (or its DeepswapError) to ``on_result``; without one, raise the error."""
    if on_result is None:
        if isinstance(result, DeepswapError):
            raise result
        return
    on_result(task, result)


def _relay(messages: Any, on_message: Send) -> None:
    while True:
        try:
            message = messages.get_nowait()
        except queue.Empty:
            return
        on_message(message)


def _start_worker(job: Job, messages: Any, threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)  # the face detector runs on OpenCV's own pool
    _worker["job"] = job
    _worker["state"] = job.start(*job.start_args)
    _worker["send"] = messages.put


def _run_task(task: Any) -> Any:
    return _worker["job"].run(_worker["state"], task, _worker["send"])


def connect(address: str) -> Any:
    """Ray, connected to the cluster at ``address`` ('auto': the one this machine belongs to, else
    a new one here; 'local': a new one here), or to the one this process has already joined."""
    try:
        import ray
    except ImportError:
        raise DeepswapError('--ray needs the cluster extra: pip install "deepswap[cluster]"') from None
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "auto" else address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise DeepswapError(f"--ray {address}: cannot join the Ray cluster ({error})") from None
    return ray


def run_on_ray(ray: Any, function: Callable[..., Any], calls: Sequence[tuple[Any, tuple[Any, ...]]], on_message: Send,
               on_result: ResultCallback | None = None, describe: Callable[[Any], str] = str) -> None:
    """Run ``function(*arguments, messages)`` as a Ray task for each (task, arguments) of ``calls``
    (``messages``: a Ray queue whose ``put`` reaches ``on_message``); ``describe(task)`` names a
    task in an error. See the module docstring."""
    from ray.util.queue import Queue

    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=RETRIES)(function)
    messages = Queue(actor_options={"num_cpus": 0})
    try:
        pending = {remote.remote(*arguments, messages): task for task, arguments in calls}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            _relay_ray(messages, on_message)
            for reference in ready:
                task = pending.pop(reference)
                _settle(task, _ray_outcome(ray, reference, describe(task)), on_result)
        _relay_ray(messages, on_message)
    finally:
        messages.shutdown()


def _relay_ray(messages: Any, on_message: Send) -> None:
    count = messages.qsize()
    if count:
        for message in messages.get_nowait_batch(count):
            on_message(message)


def _ray_outcome(ray: Any, reference: Any, name: str) -> Any:
    """A Ray task's result, or the DeepswapError that says why there is none."""
    try:
        return ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, DeepswapError):
            return DeepswapError(str(cause))
        return DeepswapError(f"{name}: a Ray task failed ({' '.join(str(cause or error).split())[:300]})")
    except ray.exceptions.RayError as error:
        return DeepswapError(f"{name}: Ray gave up after {RETRIES} retries ({type(error).__name__})")
