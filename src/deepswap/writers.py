"""The stages that write a workspace wear ``writes_workspace``: it holds the workspace's lock
(``deepswap.lock``) while they run, and a long writer first sweeps what killed writers left."""

from __future__ import annotations

import functools
import inspect
import shutil
from typing import Any, Callable, TypeVar

from . import _io
from .lock import workspace_lock
from .workspace import PERSON_KEYS, Workspace, as_workspace, staging_path

Stage = TypeVar("Stage", bound=Callable[..., Any])


def sweep_workspace(workspace: Workspace) -> None:
    """Delete what killed writers left in a workspace: temp files of atomic writes whose process
    has ended, and staging folders of downloads that finished. Unfinished downloads stay (``fetch``
    resumes them). Only the holder of the workspace's lock may call this."""
    for path in _io.stale_temporaries(workspace.root.rglob(".*.part*")):
        path.unlink(missing_ok=True)
    for key in PERSON_KEYS:
        folder = workspace.downloads_dir(key)
        for download in folder.glob("*.mp4") if folder.is_dir() else ():
            if staging_path(download).is_dir():
                shutil.rmtree(staging_path(download), ignore_errors=True)


def writes_workspace(command: str, wait: bool = False,
                     takes_lock: Callable[[], bool] | None = None) -> Callable[[Stage], Stage]:
    """Run the decorated stage holding its workspace's lock as ``deepswap COMMAND`` (see
    ``deepswap.lock``); the stage's first parameter is the workspace (a Workspace or a path).

    ``wait``: a short writer, which waits a few seconds for the lock. Otherwise a long writer,
    which refuses a busy workspace at once and first sweeps it (``sweep_workspace``).
    ``takes_lock``: asked at each call whether this process takes the lock (train: only the
    process that writes); None, always.
    """
    def decorate(stage: Stage) -> Stage:
        first = next(iter(inspect.signature(stage).parameters))

        @functools.wraps(stage)
        def locked(*args: Any, **kwargs: Any) -> Any:
            if takes_lock is not None and not takes_lock():
                return stage(*args, **kwargs)
            workspace = as_workspace(args[0] if args else kwargs[first])
            sweep = None if wait else functools.partial(sweep_workspace, workspace)
            with workspace_lock(workspace.root, command, wait, on_acquired=sweep):
                return stage(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate
