"""What every on-disk format's schema shares: strict models, safe names, one-line errors, paths kept inside.

Each format's schema lives beside the module that owns the format (``workspace.py``: deepswap.toml
and outputs.json, ``faces/faceset.py``: alignments.json, ``train/state.py``: state.json...). A
file is checked whole when it is loaded; a damaged one is a ``DeepswapError`` of one line naming
the file, the entry and the problem. Every name taken from a file (a face id, a checkpoint file
name) must match a strict pattern before a path is built from it, and ``inside`` checks that such a
path stays in its folder, so no workspace file can make deepswap read, write or delete elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from .errors import DeepswapError

NOT_ALLOWED = "not an allowed name"


def _is_source_id(name: str) -> bool:
    """Letters, digits, "-" and "_" only (no dots, no slashes): what ``Source.id`` makes of a file name."""
    return 0 < len(name) <= 64 and name.replace("-", "a").replace("_", "a").isalnum()


def _source_id(name: str) -> str:
    if not _is_source_id(name):
        raise ValueError(NOT_ALLOWED)
    return name


def _face_id(name: str) -> str:
    """``<source id>_<frame number>``, as ``faceset.face_id`` makes it."""
    source, _, frame = name.rpartition("_")
    if not (_is_source_id(source) and 6 <= len(frame) <= 12 and frame.isascii() and frame.isdigit()):
        raise ValueError(NOT_ALLOWED)
    return name


def _file_name(name: str) -> str:
    """One file name, as found in a folder: no folder part, not "." or ".."."""
    if name in ("", ".", "..") or len(name) > 255 or "/" in name or "\0" in name:
        raise ValueError(NOT_ALLOWED)
    return name


SourceId = Annotated[str, AfterValidator(_source_id)]
FaceId = Annotated[str, AfterValidator(_face_id)]
FileName = Annotated[str, AfterValidator(_file_name)]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]


def json_array(item: Any, length: int) -> Any:
    """The type of a JSON array of exactly ``length`` items (checked as a tuple: several times
    faster than a list for the thousands of landmark arrays of a large face set)."""
    return Annotated[tuple[item, ...], Strict(False), Field(min_length=length, max_length=length)]


class StrictModel(BaseModel):
    """A record of an on-disk format: exact JSON/TOML types (no "3" for 3), no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid")


def describe(error: ValidationError) -> str:
    """A pydantic error as one short line: where in the file, what is wrong, the value found."""
    first = error.errors(include_url=False)[0]
    location = list(first["loc"])
    key = None
    if "[key]" in location:  # the problem is a key of a table, not its value
        key = location[location.index("[key]") - 1]
        location = location[: location.index("[key]") - 1]
    where = ".".join(str(part) if str(part).isprintable() else repr(part) for part in location) or "top level"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "string_pattern_mismatch":
        message = NOT_ALLOWED
    if key is not None:
        message = f"key {key!r}: {message}"
    elif first["type"] not in ("missing", "extra_forbidden") and not isinstance(first.get("input"), (dict, type(None))):
        message += f" (found {_short_repr(first['input'])})"
    more = error.error_count() - 1
    return f"{where}: {message}" + (f", and {more} more problem(s)" if more else "")


def _short_repr(value: Any, width: int = 60) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'table' if isinstance(value, dict) else 'list'} of {len(value)}"
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def validate(adapter: TypeAdapter[Any] | type[BaseModel], data: Any, path: Path, what: str, advice: str = "") -> Any:
    """``data`` checked against a schema, or a one-line ``DeepswapError`` naming ``path``."""
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_python(data)
        return adapter.model_validate(data)
    except ValidationError as error:
        raise DeepswapError(f"{path}: {what} ({describe(error)}){'; ' + advice if advice else ''}") from None
    except RecursionError:
        raise DeepswapError(f"{path}: {what} (nested too deeply){'; ' + advice if advice else ''}") from None


def inside(folder: str | os.PathLike[str], name: str | os.PathLike[str]) -> Path:
    """``folder / name``, checked to stay inside ``folder`` (by its written path, so folders that
    are links to another disk keep working); a name that leaves it is a ``DeepswapError``."""
    base = os.path.abspath(folder)
    path = os.path.abspath(os.path.join(base, name))
    if os.path.isabs(name) or path == base or os.path.commonpath([base, path]) != base:
        raise DeepswapError(f"{folder}: refusing the name {os.fspath(name)!r}, which points outside this folder")
    return Path(folder) / name
