"""Progress events: how every long stage tells its caller what it is doing.

Library code never prints. Each long stage (``fetch_sources``, ``extract``, ``train``,
``convert``, ``evaluate``, ``run_demo``) takes ``on_progress``, a callable that receives
``ProgressEvent`` objects, and returns a result object. The CLI draws the events with rich, the
web UI sends them to the browser, a script may print them or ignore them::

    def show(event: deepswap.ProgressEvent) -> None:
        if event.kind == "progress":
            print(f"{event.stage} {event.task}: {event.done:.0f}/{event.total or '?'} {event.unit}")

    deepswap.extract(workspace, on_progress=show)

Kinds of event, in the order a stage sends them:

- ``task``: a unit of work begins (``task`` names it, ``total`` and ``unit`` say how much there is;
  ``total`` is None when unknown and may be corrected by later events);
- ``progress``: ``done`` of ``total`` so far, ``rate`` in units per second, ``values`` any figures of
  the moment (training: ``loss_a``, ``loss_b``, ``learning_rate``, ``eta_seconds``);
- ``done``: the task finished (``done`` is the final count);
- ``note``: a line of text for the user (``message``), e.g. a source skipped and why;
- ``file``: a file the user may want to look at was written (``path``; ``message`` says what it is:
  a training preview, the loss curve, a contact sheet, an output).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Mapping

EventKind = Literal["task", "progress", "done", "note", "file"]


@dataclass(frozen=True)
class ProgressEvent:
    """One report from a long stage (see the module docstring for the kinds)."""

    stage: str
    kind: EventKind
    task: str = ""
    done: float = 0.0
    total: float | None = None
    unit: str = ""
    rate: float | None = None
    message: str = ""
    path: Path | None = None
    values: Mapping[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


class Reporter:
    """What a stage uses to send events: tracks the current task, its count and its rate.

    With no callback every method does nothing, so stages call it unconditionally.
    """

    def __init__(self, stage: str, on_progress: ProgressCallback | None) -> None:
        self.stage = stage
        self._send = on_progress
        self._task = ""
        self._total: float | None = None
        self._unit = ""
        self._done = 0.0
        self._start_done = 0.0
        self._started = time.monotonic()

    def _emit(self, kind: EventKind, **fields: object) -> None:
        if self._send is not None:
            self._send(ProgressEvent(self.stage, kind, **fields))  # type: ignore[arg-type]

    def task(self, name: str, total: float | None = None, unit: str = "", done: float = 0.0) -> None:
        """Begin a task of ``total`` units (``done`` of them finished before, e.g. when resuming)."""
        self._task, self._total, self._unit, self._done = name, total, unit, done
        self._started = time.monotonic()
        self._start_done = done
        self._emit("task", task=name, done=done, total=total, unit=unit)

    def advance(self, by: float = 1.0, *, total: float | None = None, values: Mapping[str, float] | None = None) -> None:
        """Count ``by`` more units done (``total`` corrects the task's size)."""
        self.update(self._done + by, total=total, values=values)

    def update(self, done: float, *, total: float | None = None, values: Mapping[str, float] | None = None) -> None:
        """Set the count of units done."""
        self._done = done
        if total is not None:
            self._total = total
        if self._send is None:
            return
        elapsed = time.monotonic() - self._started
        rate = (done - self._start_done) / elapsed if elapsed > 0 else None
        self._emit("progress", task=self._task, done=done, total=self._total, unit=self._unit, rate=rate,
                   values=dict(values or {}))

    def finish(self) -> None:
        """The current task is finished."""
        self._emit("done", task=self._task, done=self._done, total=self._done, unit=self._unit)

    def note(self, message: str) -> None:
        """A line of text for the user."""
        self._emit("note", task=self._task, message=message)

    def relay(self, event: ProgressEvent) -> None:
        """Pass on an event another reporter made (a worker process's, for its own task)."""
        if self._send is not None:
            self._send(event)

    def file(self, path: str | Path, message: str) -> None:
        """A file worth looking at was written."""
        self._emit("file", task=self._task, path=Path(path), message=message)
