"""One advisory lock per workspace, so that two commands never write a workspace at once.

``WS/.deepswap.lock`` is locked with ``flock`` (the ``filelock`` package) by every stage that
writes the workspace; the operating system releases it when its holder exits or is killed, so a
crashed command never leaves the workspace locked. Once it holds the lock, a stage records
itself in ``WS/.deepswap.lock.json`` (pid, command, start time, host), which the "busy" message
quotes, and removes the record when it lets go; the next holder replaces a killed one's record.

Short writers (``init``, ``add``, ``faces --remove``) wait up to ``SHORT_WAIT_S`` for the lock;
long writers (``fetch``, ``extract``, ``train``) refuse at once, and first sweep what killed
writers left in the workspace (``writers.writes_workspace``). Readers (``status``, ``convert``,
``evaluate``) take no lock: every file they read is replaced by an atomic rename, so they see
either the old version or the new one. A thread that holds a workspace's lock may enter it again
(``extract`` runs ``fetch``); another thread, like another process, may not.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from . import _io
from .errors import DeepswapError

LOCK_NAME = ".deepswap.lock"
HOLDER_NAME = ".deepswap.lock.json"
SHORT_WAIT_S = 10.0

_held = threading.local()


@contextmanager
def workspace_lock(root: str | os.PathLike[str], command: str, wait: bool,
                   on_acquired: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock of the workspace folder ``root`` while inside, as ``deepswap COMMAND``.

    ``wait``: wait up to ``SHORT_WAIT_S`` for another holder, else refuse at once; a busy
    workspace is a DeepswapError naming the holder. ``on_acquired`` runs once the lock is taken
    (not when this thread enters it again).
    """
    root = Path(root).resolve()
    held: set[Path] = _held.__dict__.setdefault("roots", set())
    if root in held:
        yield
        return
    lock = FileLock(root / LOCK_NAME)
    try:
        lock.acquire(timeout=SHORT_WAIT_S if wait else 0)
    except Timeout:
        raise DeepswapError(f"{root}: {busy_message(root)}") from None
    held.add(root)
    try:
        _io.write_json(root / HOLDER_NAME, {"pid": os.getpid(), "command": command,
                                            "started": datetime.now().isoformat(timespec="seconds"),
                                            "host": socket.gethostname()})
        if on_acquired is not None:
            on_acquired()
        yield
    finally:
        (root / HOLDER_NAME).unlink(missing_ok=True)
        held.discard(root)
        lock.release()


def busy_message(root: Path) -> str:
    """Who holds the lock of ``root``, e.g. "workspace busy: `deepswap train` (pid 812) since 14:02"."""
    holder = _read_holder(root)
    if holder is None:
        return "workspace busy: another deepswap command is writing it; try again when it has finished"
    started = datetime.fromisoformat(holder["started"])
    since = started.strftime("%H:%M" if started.date() == datetime.now().date() else "%Y-%m-%d %H:%M")
    return (f"workspace busy: `deepswap {holder['command']}` (pid {holder['pid']}) since {since}; "
            "wait for it to finish or stop it")


def _read_holder(root: Path) -> dict[str, Any] | None:
    """The holder record, or None where it is missing, unreadable, or names a process that has ended
    (a record of a killed holder, read before the new holder replaced it)."""
    try:
        holder = json.loads((root / HOLDER_NAME).read_text("utf-8"))
        pid, command = int(holder["pid"]), str(holder["command"])
        datetime.fromisoformat(holder["started"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if holder.get("host") == socket.gethostname() and not _io.is_running(pid):
        return None
    return {**holder, "pid": pid, "command": command}
