"""Reading the frames of any recorded source, honouring its start and duration."""

from __future__ import annotations

from typing import Iterator

from ..errors import DeepswapError
from ..video import Frame, read_frames, read_photos
from ..workspace import PersonKey, Source, Workspace


def source_frames(workspace: Workspace, key: PersonKey, source: Source, fps: float | None = None) -> Iterator[Frame]:
    """Stream the frames of one recorded source (honouring its start/duration; URLs must be fetched)."""
    path = workspace.local_path(key, source)
    if not path.exists():
        hint = "run `deepswap fetch` first" if source.kind == "url" else "it was moved or deleted"
        raise DeepswapError(f"{source.uri}: footage not available ({hint})")
    if source.kind == "photos":
        return read_photos(path)
    start, duration = workspace.local_span(key, source)
    return read_frames(path, fps=fps, start=start, duration=duration)
