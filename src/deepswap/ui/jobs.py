"""Background jobs: each long step runs in a child process the server owns, one per workspace.

The child (``python -m deepswap.ui.worker``, in a session of its own so that a Ctrl-C in the
server's terminal reaches only the server) reads its step as the first line of its stdin, calls one function of
``actions.JOBS`` with an ``on_progress`` callback, and writes each ``ProgressEvent``, then the
result and how it ended, as JSON lines to stdout; a reader thread in the server folds them into the
``Job`` the pages and the event stream show. The job outlives the browser: closing or reloading the
page does not touch it.

Stopping a job sends the child SIGINT, as Ctrl-C would: training saves a checkpoint and returns,
the other steps stop where they are (their finished work is kept). Stopping the server stops every
job that way and waits for it. The server holds the child's stdin open while the job runs: when
the server goes away however it ends (``kill -9`` included), the child reads the end of its stdin
and stops itself the same way, so no job outlives its server holding the workspace lock. A step
that fails shows the same one line the CLI prints.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import DeepswapError

RUNNING, STOPPING, FINISHED, STOPPED, FAILED = "running", "stopping", "finished", "stopped", "failed"
MAX_LOG_LINES = 200
MAX_LOSS_POINTS = 4000
SHUTDOWN_WAIT_SECONDS = 120.0


class Busy(DeepswapError):
    """The workspace already has a job running."""


OPTION_KINDS = ("ConvertOptions", "EvaluateOptions", "ExtractOptions", "ReplaceSettings", "TrainOptions")  # the dataclasses a job may carry


def encode_job(action: str, arguments: dict[str, Any]) -> bytes:
    """A step and its arguments as one JSON line for the child's stdin: paths and the library's option
    dataclasses (``OPTION_KINDS``) tagged so that ``decode_job`` rebuilds them; any other type is
    refused here (TypeError), before a process starts. No pickle crosses the pipe."""
    return json.dumps({"action": action, "arguments": _plain(arguments)}).encode() + b"\n"


def decode_job(data: bytes) -> tuple[str, dict[str, Any]]:
    """What ``encode_job`` wrote: (action, arguments), options rebuilt (and so checked again)."""
    message = json.loads(data)
    return message["action"], _restored(message["arguments"])


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return {"path": str(value)}
    if dataclasses.is_dataclass(value) and type(value).__name__ in OPTION_KINDS:
        return {"options": type(value).__name__,
                "fields": {item.name: _plain(getattr(value, item.name)) for item in dataclasses.fields(value)}}
    if isinstance(value, Mapping):
        return {"mapping": {str(key): _plain(item) for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_plain(item) for item in value]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"a job argument of type {type(value).__name__} cannot be sent to the worker")


def _restored(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "path" in value:
        return Path(value["path"])
    if "options" in value:
        import deepswap

        if value["options"] not in OPTION_KINDS:
            raise ValueError(f"a job may not carry {value['options']!r}")
        return getattr(deepswap, value["options"])(**{name: _restored(item) for name, item in value["fields"].items()})
    if "mapping" in value:
        return {key: _restored(item) for key, item in value["mapping"].items()}
    return [_restored(item) for item in value["list"]]


@dataclass
class Task:
    """The latest state of one task of a job (a download, a source being extracted, training)."""

    name: str
    unit: str = ""
    done: float = 0.0
    total: float | None = None
    rate: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


@dataclass
class Job:
    """One background step of one workspace, as the pages show it."""

    id: str
    workspace: Path
    kind: str
    title: str
    started: float = field(default_factory=time.time)
    state: str = RUNNING
    error: str | None = None
    result: Any = None
    tasks: dict[str, Task] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    loss: list[tuple[float, float, float]] = field(default_factory=list)  # (iteration, loss A, loss B)
    files: dict[str, int] = field(default_factory=dict)  # path → times written
    form: dict[str, str] = field(default_factory=dict)  # what the page sent, to fill the form in again
    version: int = 0
    ended: float | None = None

    @property
    def active(self) -> bool:
        return self.state in (RUNNING, STOPPING)

    @property
    def current(self) -> Task | None:
        return next(reversed(self.tasks.values()), None)

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event from the child into the job's state."""
        kind = event["kind"]
        if kind in ("task", "progress", "done"):
            task = self.tasks.get(event["task"])
            if task is None or kind == "task":
                task = self.tasks[event["task"]] = Task(event["task"], event["unit"])
                self.tasks[task.name] = self.tasks.pop(task.name)  # the newest task last
            task.done, task.finished = event["done"], kind == "done"
            task.total = event["total"] if event["total"] is not None else task.total
            task.rate = event["rate"] if event["rate"] is not None else task.rate
            task.values.update(event["values"])
            if kind == "progress" and "loss_a" in event["values"]:
                self._add_loss(event["done"], event["values"]["loss_a"], event["values"]["loss_b"])
        elif kind == "note":
            self._add_log(event["message"])
        elif kind == "file":
            self.files[event["path"]] = self.files.get(event["path"], 0) + 1
        elif kind == "result":
            self.result = event["result"]
        elif kind == "end":
            self.state, self.error = event["state"], event.get("error")
            self.ended = time.time()
        self.version += 1

    def _add_log(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-MAX_LOG_LINES]

    def _add_loss(self, iteration: float, loss_a: float, loss_b: float) -> None:
        self.loss.append((iteration, loss_a, loss_b))
        if len(self.loss) > MAX_LOSS_POINTS:  # keep the whole run's shape at half the density
            self.loss = self.loss[::2]


class JobManager:
    """The server's jobs: at most one running per workspace, the latest of each kind kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Path, dict[str, Job]] = {}  # workspace → kind → latest job
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, workspace: Path, kind: str, title: str, action: str, arguments: dict[str, Any],
              form: dict[str, str] | None = None) -> Job:
        """Run ``actions.JOBS[action](**arguments, on_progress=…)`` in a child process."""
        with self._lock:
            self.check_idle(workspace)
            job = Job(uuid.uuid4().hex[:12], workspace, kind, title, form=dict(form or {}))
            process = subprocess.Popen([sys.executable, "-m", "deepswap.ui.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, start_new_session=True)
            assert process.stdin is not None
            process.stdin.write(encode_job(action, arguments))
            process.stdin.flush()  # and kept open: its end tells the child the server is gone
            self._jobs.setdefault(workspace, {})[kind] = job
            self._processes[job.id] = process
        threading.Thread(target=self._follow, args=(job, process), daemon=True, name=f"deepswap-{kind}-events").start()
        return job

    def check_idle(self, workspace: Path) -> None:
        """Refuse (``Busy``, one line) while the workspace has a job running."""
        running = self.running(workspace)
        if running is not None:
            raise Busy(f"{workspace.name}: busy with {running.title}; wait for it or stop it first")

    def running(self, workspace: Path) -> Job | None:
        return next((job for job in self._jobs.get(workspace, {}).values() if job.active), None)

    def latest(self, workspace: Path, kind: str | None = None) -> Job | None:
        """The running job of a workspace, else its most recent one (of ``kind`` when given)."""
        jobs = self._jobs.get(workspace, {})
        if kind is not None:
            return jobs.get(kind)
        return self.running(workspace) or max(jobs.values(), key=lambda job: job.started, default=None)

    def stop(self, workspace: Path) -> Job | None:
        """Ask the workspace's running job to stop as Ctrl-C would (training saves first)."""
        job = self.running(workspace)
        process = self._processes.get(job.id) if job else None
        if job is None or process is None or process.poll() is not None:
            return job
        job.state = STOPPING
        job.version += 1
        process.send_signal(signal.SIGINT)
        return job

    def shutdown(self, wait: float = SHUTDOWN_WAIT_SECONDS) -> None:
        """Stop every running job (saving like Ctrl-C) and wait for them; kill what is left after ``wait``."""
        for workspace in list(self._jobs):
            self.stop(workspace)
        deadline = time.monotonic() + wait
        for process in list(self._processes.values()):
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for job in [job for jobs in self._jobs.values() for job in jobs.values()]:
            while job.active:  # the reader threads take the last lines
                time.sleep(0.05)

    def _follow(self, job: Job, process: subprocess.Popen[bytes]) -> None:
        """Read the child's events into the job until its output ends."""
        assert process.stdout is not None
        for line in process.stdout:
            job.apply(json.loads(line))
        code = process.wait()
        assert process.stdin is not None
        process.stdin.close()
        if job.active:
            job.apply({"kind": "end", "state": FAILED, "error": f"the {job.kind} process ended unexpectedly (exit code {code})"})
        with self._lock:
            self._processes.pop(job.id, None)
