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

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import tomli_w
from filelock import FileLock, Timeout
from pydantic import AfterValidator, Field, TypeAdapter, model_validator

from . import _io
from ._schema import Count, StrictModel, inside, validate
from .errors import DeepswapError
from .faces import DEFAULT_FACE_SIZE, DEFAULT_THRESHOLD
from .filetypes import PHOTO_SUFFIXES
from .lock import SHORT_WAIT_S, workspace_lock

PersonKey = Literal["a", "b"]
PERSON_KEYS: tuple[PersonKey, ...] = get_args(PersonKey)
SourceKind = Literal["url", "video", "photos"]
CONFIG_NAME = "deepswap.toml"
OUTPUTS_NAME = "outputs.json"
REFERENCE_PATTERN = rf"^[ab]/reference\.(?:{'|'.join(sorted(s.lstrip('.') for s in PHOTO_SUFFIXES))})$"

# Seconds as TOML writes them: an int stays an int (Source.id hashes the value as written).
Seconds = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveSeconds = Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Source(StrictModel):
    """One piece of footage of a person: a URL, a local video, or a photo folder."""

    uri: Annotated[str, Field(min_length=1)]
    kind: SourceKind
    start: Seconds | None = None
    duration: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _url_is_http(self) -> "Source":
        if (self.kind == "url") != self.uri.startswith(("http://", "https://")):
            raise ValueError(f"uri: a {self.kind} source cannot be {self.uri!r}")
        return self

    @property
    def id(self) -> str:
        """Stable short name of this source (used for download and face file names)."""
        key = f"{self.uri}|{self.start}|{self.duration}"
        stem = Path(self.uri.split("?")[0].rstrip("/")).stem or "source"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40]
        return f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    def to_toml(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Person(StrictModel):
    name: Annotated[str, Field(min_length=1, pattern=r"\S")]
    sources: list[Source] = []
    reference: Annotated[str, Field(pattern=REFERENCE_PATTERN)] | None = None


class Settings(StrictModel):
    """``[settings]`` of deepswap.toml; unknown keys are refused (a misspelt setting is not ignored)."""

    face_size: Annotated[int, Field(ge=64, le=1024)] = DEFAULT_FACE_SIZE
    identity_threshold: Annotated[float, Field(gt=0, lt=2)] = DEFAULT_THRESHOLD
    max_download_mb: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 2000
    # Content Credentials (read by userconfig.signing_identity; paths relative to deepswap.toml)
    sign_cert: str | None = None
    sign_key: str | None = None
    tsa_url: Annotated[str, Field(pattern=r"^https?://")] | None = None


class _Persons(StrictModel):
    a: Person
    b: Person


class _ConfigFile(StrictModel):
    """The whole of deepswap.toml."""

    persons: _Persons
    settings: Settings = Settings()


def _absolute(path: str) -> str:
    if "\x00" in path or not Path(path).is_absolute():
        raise ValueError("not an absolute path")
    return path


class _OutputRecord(StrictModel, extra="allow"):
    """One entry of outputs.json (convert adds its figures beside the path)."""

    path: Annotated[str, AfterValidator(_absolute)]
    input: str | None = None
    direction: Literal["a2b", "b2a"] | None = None
    frames: Count | None = None
    swapped: Count | None = None
    output_id: Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")] | None = None
    pending: bool = False


_OUTPUTS = TypeAdapter(list[_OutputRecord])


@dataclass
class Workspace:
    """A loaded workspace; ``save()`` writes ``deepswap.toml`` atomically.

    ``settings`` holds the ``[settings]`` table as written; it is checked when the workspace is
    opened and saved (``Settings``), and read through the typed properties (``face_size``...).
    """

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
            workspace = cls(root=root, persons={"a": Person(name=a), "b": Person(name=b)},
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
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DeepswapError(f"{config}: damaged workspace file ({exc})") from None
        if not data:
            raise DeepswapError(f"{config}: damaged workspace file (empty)")
        loaded = validate(_ConfigFile, data, config, "damaged workspace file")
        return cls(root=root, persons={key: getattr(loaded.persons, key) for key in PERSON_KEYS},
                   settings=data.get("settings", {}))

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
        validate(_ConfigFile, data, self.root / CONFIG_NAME, "refusing to write a bad workspace file")
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
    def config(self) -> Settings:
        """The settings, checked (a bad value is a one-line error naming deepswap.toml)."""
        return validate(Settings, self.settings, self.root / CONFIG_NAME, "damaged workspace file (settings)")

    @property
    def face_size(self) -> int:
        return self.config.face_size

    @property
    def identity_threshold(self) -> float:
        return self.config.identity_threshold

    @property
    def max_download_bytes(self) -> int:
        return int(self.config.max_download_mb * 1e6)

    def inside(self, path: str | Path) -> Path:
        """``root / path`` for a path read from a workspace file, refused if it leads outside."""
        return inside(self.root, path)

    def reference_path(self, key: PersonKey) -> Path | None:
        ref = self.persons[key].reference
        return self.inside(ref) if ref else None

    def download_path(self, key: PersonKey, source: Source) -> Path:
        """Where a URL source is stored once fetched: the whole video, or for a source with
        ``start``/``duration`` only that section (``<id>.section.mp4``, see ``local_span``)."""
        ranged = source.start is not None or source.duration is not None
        return self.downloads_dir(key) / f"{source.id}{'.section' if ranged else ''}.mp4"

    def local_path(self, key: PersonKey, source: Source) -> Path:
        """The file or folder to read a source from (the download for URLs; a ranged URL source
        fetched whole by an older deepswap keeps its whole ``<id>.mp4``)."""
        if source.kind != "url":
            return Path(source.uri)
        path = self.download_path(key, source)
        whole = self.downloads_dir(key) / f"{source.id}.mp4"
        return whole if not path.exists() and whole.exists() else path

    def local_span(self, key: PersonKey, source: Source) -> tuple[float | None, float | None]:
        """``(start, duration)`` of the source's footage within its local file: a downloaded
        section begins at the source's start, so it is read from its own beginning."""
        if source.kind == "url" and self.local_path(key, source).name.endswith(".section.mp4"):
            return None, source.duration
        return source.start, source.duration

    def is_available(self, key: PersonKey, source: Source) -> bool:
        return self.local_path(key, source).exists()

    @property
    def outputs_path(self) -> Path:
        return self.root / OUTPUTS_NAME

    def record_output(self, path: str | Path, info: dict[str, Any]) -> Path | None:
        """Append an output file (written by convert) to the workspace's list of outputs, in place
        of an earlier entry for the same path (``pending`` in ``info``: begun, not finished yet).

        A damaged list is kept aside as ``outputs.json.damaged-<time>`` and a new one started; the
        kept file is returned (None when the list was sound), so the caller can tell the user.
        Convert runs beside writers (it takes no workspace lock), so this read-modify-write of
        ``outputs.json`` has a small lock of its own: two converts never lose each other's entry.
        """
        kept = None
        resolved = str(Path(path).resolve())
        try:
            with FileLock(self.root / f".{OUTPUTS_NAME}.lock", timeout=SHORT_WAIT_S):
                try:
                    outputs = self.outputs(unfinished=True)
                except DeepswapError:
                    kept = self.outputs_path.with_name(f"{OUTPUTS_NAME}.damaged-{datetime.now():%Y%m%d-%H%M%S}")
                    self.outputs_path.replace(kept)
                    outputs = []
                outputs = [o for o in outputs if o["path"] != resolved] + [{"path": resolved, **info}]
                validate(_OUTPUTS, outputs, self.outputs_path, "cannot record this output")
                _io.write_json(self.outputs_path, outputs)
        except Timeout:
            raise DeepswapError(f"{self.outputs_path}: another convert kept it locked for "
                                f"{SHORT_WAIT_S:g} s; {path} was written but is not listed") from None
        except (DeepswapError, OSError) as error:
            raise DeepswapError(f"{self.outputs_path}: could not record {path} ({error}); the output itself is "
                                "complete") from None
        return kept

    def outputs(self, unfinished: bool = False) -> list[dict[str, Any]]:
        """What convert wrote, as recorded in outputs.json ([] if none); damaged → one-line error.
        ``unfinished``: also the outputs a convert began and did not record as finished (``pending``)."""
        path = self.outputs_path
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DeepswapError(f"{path}: damaged list of outputs ({exc})") from None
        validate(_OUTPUTS, data, path, "damaged list of outputs")
        return data if unfinished else [entry for entry in data if not entry.get("pending")]


WorkspaceLike = Workspace | str | os.PathLike[str]


def as_workspace(workspace: WorkspaceLike) -> Workspace:
    """The loaded workspace itself, or the one at a path (public functions take either)."""
    return workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)


def staging_path(download: Path) -> Path:
    """The hidden folder a download is staged (and resumed) in before it moves to ``download``."""
    return download.with_name(f".{download.stem}.partial")


def other_person(key: PersonKey) -> PersonKey:
    """The person who is not ``key``: b for a, a for b."""
    return "b" if key == "a" else "a"


def parse_person(key: str) -> PersonKey:
    if key not in PERSON_KEYS:
        raise DeepswapError(f"person must be 'a' or 'b', not {key!r}")
    return key  # type: ignore[return-value]


def init_workspace(root: str | Path, a: str, b: str) -> Workspace:
    """Create a new workspace folder for swapping person ``a`` and person ``b``."""
    return Workspace.create(root, a, b)
