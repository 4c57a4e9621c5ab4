"""A job's child process (``python -m deepswap.ui.worker``, started by ``jobs.JobManager``).

It reads ``(action, arguments)`` as a JSON line on stdin (``jobs.encode_job``), runs ``actions.JOBS[action](**arguments,
on_progress=…)`` and writes JSON lines to stdout: one per progress event, then the result, then
how it ended (finished, stopped by SIGINT/SIGTERM, or failed with the CLI's one-line error).
Anything else the step prints goes to stderr, so stdout carries only those lines. The end of stdin
means the server is gone: the step is then stopped as by SIGINT (training saves first).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from typing import IO, Any

from ..errors import DeepswapError
from ..progress import ProgressEvent
from .jobs import FAILED, FINISHED, STOPPED, decode_job


def event_message(event: ProgressEvent) -> dict[str, Any]:
    """A progress event as plain data."""
    return {"stage": event.stage, "kind": event.kind, "task": event.task, "done": event.done, "total": event.total,
            "unit": event.unit, "rate": event.rate, "message": event.message,
            "path": str(event.path) if event.path is not None else None, "values": dict(event.values)}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(action: str, arguments: dict[str, Any], send: Any) -> dict[str, Any]:
    """Run one action, sending its events and result; returns the closing message."""
    from . import actions

    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops a step the way Ctrl-C does
    try:
        result = actions.JOBS[action](**arguments, on_progress=lambda event: send(event_message(event)))
    except KeyboardInterrupt:
        return {"kind": "end", "state": STOPPED, "error": "stopped; finished work is kept, run it again to resume"}
    except DeepswapError as error:
        return {"kind": "end", "state": FAILED, "error": str(error)}
    except Exception as error:  # shown as one line; the traceback goes to the server's terminal
        traceback.print_exc()
        return {"kind": "end", "state": FAILED, "error": f"unexpected error: {error.__class__.__name__}: {error}"}
    send({"kind": "result", "result": result})
    return {"kind": "end", "state": STOPPED if isinstance(result, dict) and result.get("stopped") else FINISHED}


def _stop_when_server_goes(stdin: int) -> None:
    """Wait for the end of the file descriptor ``stdin`` (the server closed it, or died), then
    interrupt the step. Read unbuffered: a thread blocked in ``sys.stdin`` would hold its lock
    when the interpreter shuts down."""
    while os.read(stdin, 4096):
        pass
    os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    action, arguments = decode_job(sys.stdin.buffer.readline())
    threading.Thread(target=_stop_when_server_goes, args=(sys.stdin.fileno(),), daemon=True,
                     name="deepswap-server-watch").start()
    channel: IO[str] = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not break the channel

    def send(message: dict[str, Any]) -> None:
        try:
            channel.write(json.dumps(message) + "\n")
            channel.flush()
        except BrokenPipeError:  # the server is gone: no one to tell, the step stops (see above)
            pass

    send(run(action, arguments, send))


if __name__ == "__main__":
    main()
