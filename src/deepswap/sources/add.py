"""``deepswap add``: record footage (URLs, videos, photo folders) and a reference photo of a person."""

from __future__ import annotations

from pathlib import Path

from .. import _io
from ..errors import DeepswapError
from ..options import OptionError, declaration
from ..filetypes import PHOTO_SUFFIXES, VIDEO_SUFFIXES
from ..video import probe_video
from ..workspace import Source, SourceKind, WorkspaceLike, as_workspace, parse_person
from ..writers import writes_workspace
from .options import AddOptions


def classify_source(uri: str) -> SourceKind:
    """Tell what kind of source a command-line argument names, or raise a one-line error."""
    if uri.startswith(("http://", "https://")):
        return "url"
    path = Path(uri)
    if not path.exists():
        raise DeepswapError(f"{uri}: no such file or folder")
    if path.is_dir():
        if not any(p.suffix.lower() in PHOTO_SUFFIXES for p in path.iterdir()):
            raise DeepswapError(f"{uri}: folder holds no photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
        return "photos"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in PHOTO_SUFFIXES:
        return "photos"
    raise DeepswapError(f"{uri}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}), photo or folder of photos")


@writes_workspace("add", wait=True)
def add_sources(
    workspace: WorkspaceLike,
    person: str,
    uris: list[str],
    start: float | None = None,
    duration: float | None = None,
    reference: str | Path | None = None,
) -> list[Source]:
    """Record footage (URLs, videos, photo folders) and optionally a reference photo for a person.

    Returns the sources that were new; ones already recorded are left as they are. The workspace
    file is read afresh before the change (a ``Workspace`` object passed in is updated).
    """
    workspace = as_workspace(workspace)
    workspace.reload()
    key = parse_person(person)
    AddOptions(start=start, duration=duration)
    new_sources = []
    for uri in uris:
        kind = classify_source(uri)
        if kind == "photos" and (start is not None or duration is not None):
            raise OptionError(f"{uri}: {{}} and {{}} apply to videos, not photos; add photos separately",
                              declaration(AddOptions, "start"), declaration(AddOptions, "duration"))
        if kind == "video":
            length = probe_video(uri).duration
            if start is not None and length and start >= length:
                raise OptionError(f"{uri}: {{}} {start:g} s is past the end of the video ({length:.1f} s)",
                                  declaration(AddOptions, "start"))
        source = Source(uri=uri if kind == "url" else str(Path(uri).resolve()), kind=kind, start=start, duration=duration)
        if all(s.id != source.id for s in workspace.persons[key].sources + new_sources):
            new_sources.append(source)
    if reference is not None:
        ref = Path(reference)
        if not ref.is_file() or ref.suffix.lower() not in PHOTO_SUFFIXES or _io.read_image(ref) is None:
            raise DeepswapError(f"{ref}: reference must be a readable photo ({', '.join(sorted(PHOTO_SUFFIXES))})")
        stored = workspace.person_dir(key) / f"reference{ref.suffix.lower()}"
        _io.write_bytes(stored, ref.read_bytes())
        workspace.persons[key].reference = stored.relative_to(workspace.root).as_posix()
    workspace.persons[key].sources.extend(new_sources)
    workspace.save()
    return new_sources
