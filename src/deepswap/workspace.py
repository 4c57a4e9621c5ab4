"""A workspace: one folder holding everything of one swap project.

Layout::

    WS/deepswap.toml          person names, their sources and references, settings
    WS/a/downloads/           fetched URL sources of person A
    WS/a/faces/               aligned crops, masks and alignments.json of person A
    WS/a/reference.<ext>      optional photo used to keep only A's face
    WS/b/...                  the same for person B
    WS/model/                 checkpoints, previews, loss log
    WS/outputs.json           what convert wrote
    WS/.deepswap.lock         the lock writers hold (see ``deepswap.lock``)
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import shutil
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, get_args

import tomli_w
from filelock import FileLock, Timeout

from . import _io
from .errors import DeepswapError
from .faces.analyzer import DEFAULT_FACE_SIZE
from .lock import SHORT_WAIT_S, workspace_lock
from .video import probe_video
from .video.reader import PHOTO_SUFFIXES, VIDEO_SUFFIXES

PersonKey = Literal["a", "b"]
PERSON_KEYS: tuple[PersonKey, ...] = get_args(PersonKey)
SourceKind = Literal["url", "video", "photos"]
CONFIG_NAME = "deepswap.toml"
OUTPUTS_NAME = "outputs.json"
Stage = TypeVar("Stage", bound=Callable[..., Any])


@dataclass
class Source:
    """One piece of footage of a person: a URL, a local video, or a photo folder."""

    uri: str
    kind: SourceKind
    start: float | None = None
    duration: float | None = None

    @property
    def id(self) -> str:
        """Stable short name of this source (used for download and face file names)."""
        key = f"{self.uri}|{self.start}|{self.duration}"
        stem = Path(self.uri.split("?")[0].rstrip("/")).stem or "source"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40]
        return f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    def to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Person:
    name: str
    sources: list[Source] = field(default_factory=list)
    reference: str | None = None


@dataclass
class Workspace:
    """A loaded workspace; ``save()`` writes ``deepswap.toml`` atomically."""

    root: Path
    persons: dict[PersonKey, Person]
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, root: str | Path, a: str, b: str) -> "Workspace":
        root = Path(root)
        if (root / CONFIG_NAME).exists():
            raise DeepswapError(f"{root}: a workspace already exists here; choose another folder")
        if root.exists() and not root.is_dir():
            raise DeepswapError(f"{root}: exists and is not a folder")
        for name in (a, b):
            if not name.strip():
                raise DeepswapError("person names must not be empty")
        root.mkdir(parents=True, exist_ok=True)
        with workspace_lock(root, "init", wait=True):
            if (root / CONFIG_NAME).exists():  # made meanwhile by another init
                raise DeepswapError(f"{root}: a workspace already exists here; choose another folder")
            workspace = cls(root=root, persons={"a": Person(a), "b": Person(b)},
                            settings={"face_size": DEFAULT_FACE_SIZE})
            for key in PERSON_KEYS:
                workspace.faces_dir(key).mkdir(parents=True, exist_ok=True)
            workspace.model_dir.mkdir(parents=True, exist_ok=True)
            workspace.save()
        return workspace

    @classmethod
    def open(cls, root: str | Path) -> "Workspace":
        root = Path(root)
        config = root / CONFIG_NAME
        if not config.is_file():
            raise DeepswapError(f"{root}: not a deepswap workspace (no {CONFIG_NAME}); create one with `deepswap init`")
        try:
            data = tomllib.loads(config.read_text("utf-8"))
            persons = {
                key: Person(
                    name=data["persons"][key]["name"],
                    sources=[Source(**s) for s in data["persons"][key].get("sources", [])],
                    reference=data["persons"][key].get("reference"),
                )
                for key in PERSON_KEYS
            }
        except (tomllib.TOMLDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DeepswapError(f"{config}: damaged workspace file ({exc})") from None
        return cls(root=root, persons=persons, settings=data.get("settings", {}))

    def reload(self) -> None:
        """Read ``deepswap.toml`` again (another command or process may have changed it)."""
        fresh = Workspace.open(self.root)
        self.persons, self.settings = fresh.persons, fresh.settings

    def save(self) -> None:
        data = {
            "persons": {
                key: {
                    "name": p.name,
                    **({"reference": p.reference} if p.reference else {}),
                    "sources": [s.to_toml() for s in p.sources],
                }
                for key, p in self.persons.items()
            },
            "settings": self.settings,
        }
        _io.write_text(self.root / CONFIG_NAME, tomli_w.dumps(data))

    # paths
    def person_dir(self, key: PersonKey) -> Path:
        return self.root / key

    def faces_dir(self, key: PersonKey) -> Path:
        return self.person_dir(key) / "faces"

    def downloads_dir(self, key: PersonKey) -> Path:
        return self.person_dir(key) / "downloads"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def face_size(self) -> int:
        return int(self.settings.get("face_size", DEFAULT_FACE_SIZE))

    def reference_path(self, key: PersonKey) -> Path | None:
        ref = self.persons[key].reference
        return self.root / ref if ref else None

    def download_path(self, key: PersonKey, source: Source) -> Path:
        """Where a URL source is stored once fetched."""
        return self.downloads_dir(key) / f"{source.id}.mp4"

    def local_path(self, key: PersonKey, source: Source) -> Path:
        """The file or folder to read a source from (the download for URLs)."""
        return self.download_path(key, source) if source.kind == "url" else Path(source.uri)

    def is_available(self, key: PersonKey, source: Source) -> bool:
        return self.local_path(key, source).exists()

    def other(self, key: PersonKey) -> PersonKey:
        return "b" if key == "a" else "a"

    def record_output(self, path: str | Path, info: dict[str, Any]) -> None:
        """Append an output file (written by convert) to the workspace's list of outputs.

        Convert runs beside writers (it takes no workspace lock), so this read-modify-write of
        ``outputs.json`` has a small lock of its own: two converts never lose each other's entry.
        """
        try:
            with FileLock(self.root / f".{OUTPUTS_NAME}.lock", timeout=SHORT_WAIT_S):
                outputs = self.outputs()
                outputs = [o for o in outputs if o["path"] != str(Path(path).resolve())]
                outputs.append({"path": str(Path(path).resolve()), **info})
                _io.write_json(self.root / OUTPUTS_NAME, outputs)
        except Timeout:
            raise DeepswapError(f"{self.root / OUTPUTS_NAME}: another convert kept it locked for "
                                f"{SHORT_WAIT_S:g} s; {path} was written but is not listed") from None

    def outputs(self) -> list[dict[str, Any]]:
        path = self.root / OUTPUTS_NAME
        return json.loads(path.read_text("utf-8")) if path.is_file() else []


WorkspaceLike = Workspace | str | os.PathLike[str]


def as_workspace(workspace: WorkspaceLike) -> Workspace:
    """The loaded workspace itself, or the one at a path (public functions take either)."""
    return workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)


def staging_path(download: Path) -> Path:
    """The hidden folder a download is staged (and resumed) in before it moves to ``download``."""
    return download.with_name(f".{download.stem}.partial")


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


def writes_workspace(command: str, wait: bool = False) -> Callable[[Stage], Stage]:
    """Run the decorated stage holding its workspace's lock as ``deepswap COMMAND`` (see
    ``deepswap.lock``); the stage's first parameter is the workspace (a Workspace or a path).

    ``wait``: a short writer, which waits a few seconds for the lock. Otherwise a long writer,
    which refuses a busy workspace at once and first sweeps it (``sweep_workspace``).
    """
    def decorate(stage: Stage) -> Stage:
        first = next(iter(inspect.signature(stage).parameters))

        @functools.wraps(stage)
        def locked(*args: Any, **kwargs: Any) -> Any:
            workspace = as_workspace(args[0] if args else kwargs[first])
            sweep = None if wait else functools.partial(sweep_workspace, workspace)
            with workspace_lock(workspace.root, command, wait, on_acquired=sweep):
                return stage(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate


def parse_person(key: str) -> PersonKey:
    if key not in PERSON_KEYS:
        raise DeepswapError(f"person must be 'a' or 'b', not {key!r}")
    return key  # type: ignore[return-value]


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


def init_workspace(root: str | Path, a: str, b: str) -> Workspace:
    """Create a new workspace folder for swapping person ``a`` and person ``b``."""
    return Workspace.create(root, a, b)


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
    if start is not None and not 0 <= start < math.inf:
        raise DeepswapError(f"--start must be a number of seconds ≥ 0, not {start}")
    if duration is not None and not 0 < duration < math.inf:
        raise DeepswapError(f"--duration must be a number of seconds > 0, not {duration}")
    new_sources = []
    for uri in uris:
        kind = classify_source(uri)
        if kind == "photos" and (start is not None or duration is not None):
            raise DeepswapError(f"{uri}: --start/--duration apply to videos, not photos; add photos separately")
        if kind == "video":
            length = probe_video(uri).duration
            if start is not None and length and start >= length:
                raise DeepswapError(f"{uri}: --start {start:g} s is past the end of the video ({length:.1f} s)")
        source = Source(uri if kind == "url" else str(Path(uri).resolve()), kind, start, duration)
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
