"""What the forms send, read into the library's terms: the fields of the extract, train and convert
forms (drawn and read from the options the library declares, see ``deepswap.options``), other
form values, uploads (checked, kept under sanitised names, within the quota) and the jobs the Run
buttons start (title, action, arguments)."""

from __future__ import annotations

import collections.abc
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from ..errors import DeepswapError
from . import actions, site
from .actions import Declared, Option, PersonKey, Workspace
from .security import safe_name

PREVIEW_FRAMES = 4

JobBuilder = Callable[[Path, Workspace, FormData], tuple[str, str, dict[str, Any]]]


@dataclass(frozen=True)
class FormField:
    """A declared option as the web form draws it (the ``option`` macro of ``_fields.html``):
    ``kind`` is check, select, number or text; ``default`` the value shown when nothing was sent."""

    name: str
    label: str
    help: str
    kind: str
    default: str
    choices: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False


def form_fields(kind: str) -> dict[str, FormField]:
    """The fields of the ``kind`` form (extract, train, convert), by option name."""
    return {found.name: _field(found) for found in actions.form_options(kind)}


def read_options(kind: str, form: FormData, **settled: Any) -> Any:
    """The option object of the ``kind`` form from what it sent (an empty field takes the library's
    default; the object checks the values); ``settled``: values the page decides itself."""
    values = dict(settled)
    for found in actions.form_options(kind):
        raw = text(form, found.name)
        if found.name in values or (found.kind is not bool and not raw):
            continue
        values[found.name] = _value(found, raw, form)
    return actions.build_options(kind, values)


def _field(found: Option) -> FormField:
    spec, default = found.declared, found.default
    if found.kind is bool:
        return FormField(found.name, spec.form_label, spec.help, "check", "on" if default else "")
    shown = _shown(default)
    if spec.choices:
        return FormField(found.name, spec.form_label, spec.help, "select", shown, tuple((c, c) for c in spec.choices))
    if found.kind in (int, float):
        return FormField(found.name, spec.form_label, spec.help, "number", shown, minimum=spec.minimum,
                         maximum=spec.maximum, whole=found.kind is int)
    return FormField(found.name, spec.form_label, spec.help, "text", shown)


def _shown(default: Any) -> str:
    if default is None or isinstance(default, collections.abc.Mapping):
        return ""
    return f"{default:g}" if isinstance(default, float) else str(default)


def _value(found: Option, raw: str, form: FormData) -> Any:
    """A field's value in the option's type; a number that is not one is an ``OptionError``."""
    if found.kind is bool:
        return form.get(found.name) == "on"
    if typing.get_origin(found.kind) is collections.abc.Mapping:
        return architecture_of(raw)
    if found.kind in (int, float):
        return number(form, found.name, found.kind, said_in_form(found.declared))
    return raw


def said_in_form(option: Declared) -> str:
    """How the web form names an option (in an error): its label, quoted."""
    return f"“{option.form_label}”"


def text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def number(form: FormData, key: str, kind: type = float, label: str | None = None) -> Any:
    """A number field: None when empty, a one-line error (naming ``label``) when it is not a number."""
    value = text(form, key)
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise DeepswapError(f"{label or key} must be a {'whole ' if kind is int else ''}number, not {value!r}") from None


def person_of(form: FormData | dict[str, Any], key: str = "person") -> PersonKey:
    value = form.get(key)
    if value not in actions.PERSON_KEYS:
        raise DeepswapError(f"person must be a or b, not {value!r}")
    return value  # type: ignore[return-value]


def architecture_of(value: str) -> dict[str, Any]:
    """``"resolution=32 width=8"`` → {"resolution": 32, "width": 8} (numbers; the model checks names)."""
    options: dict[str, Any] = {}
    for part in value.replace(",", " ").split():
        key, equals, raw = part.partition("=")
        if not equals or not key.isidentifier():
            raise DeepswapError(f"architecture: {part!r} is not name=value")
        try:
            options[key] = int(raw)
        except ValueError:
            try:
                options[key] = float(raw)
            except ValueError:
                raise DeepswapError(f"architecture: {part!r} needs a number") from None
    return options


def uploaded(form: FormData, field: str, suffixes: frozenset[str] | None) -> list[UploadFile]:
    """The files sent in a form field, checked to be of a kind we take (before anything is stored)."""
    uploads = [item for item in form.getlist(field) if isinstance(item, UploadFile) and item.filename]
    for upload in uploads:
        if suffixes is not None and Path(safe_name(upload.filename or "")).suffix not in suffixes:
            raise DeepswapError(f"{upload.filename}: not a video or photo ({', '.join(sorted(suffixes))})")
    return uploads


async def store(request: Request, upload: UploadFile, workspace: Path, *parts: str, media: bool = True) -> Path:
    """Write an upload into the workspace's ``uploads/PARTS…`` under its sanitised name (made unique),
    atomically; with ``media``, only once its content proved to be the photo or video its name
    says. Refused when it would take the ``uploads/`` folder past its quota."""
    uploads = uploads_dir(workspace)
    folder = uploads_dir(workspace, *parts)
    quota = request.app.state.settings.uploads_quota_bytes
    used = await run_in_threadpool(_folder_bytes, uploads)
    if used + (upload.size or 0) > quota:
        raise DeepswapError(f"{upload.filename}: the uploads folder {uploads} would pass its quota of "
                            f"{site.format_quantity(quota, 'bytes')} (it holds {site.format_quantity(used, 'bytes')}); "
                            "remove files there first")
    folder.mkdir(parents=True, exist_ok=True)
    target = actions.unused_path(folder, safe_name(upload.filename or ""))
    await run_in_threadpool(actions.keep_upload, upload.file, target, upload.filename or target.name, media)
    return target


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def uploads_dir(folder: Path, *parts: str) -> Path:
    return folder.joinpath("uploads", *parts)


ALL_UPLOADS = "uploads:all"


def convert_uploads(folder: Path) -> list[Path]:
    """The videos and photos uploaded to the Convert page, newest first."""
    upload_dir = folder / "uploads" / "convert"
    if not upload_dir.is_dir():
        return []
    return sorted((path for path in upload_dir.iterdir() if path.suffix in actions.VIDEO_SUFFIXES | actions.PHOTO_SUFFIXES),
                  key=lambda p: -p.stat().st_mtime)


def convert_inputs(folder: Path, workspace: Workspace) -> dict[str, tuple[str, Path]]:
    """The videos convert can take: uploads first, then each person's footage (key → label, path)."""
    choices: dict[str, tuple[str, Path]] = {}
    for path in convert_uploads(folder):
        choices[f"upload:{path.name}"] = (f"uploaded: {path.name}", path)
    for key, paths in actions.convertible_videos(workspace).items():
        for index, path in enumerate(paths):
            choices[f"{key}:{index}"] = (f"{workspace.persons[key].name} ({key.upper()}): {path.name}", path)
    return choices


def fetch_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    return "fetching downloads", "fetch", {"workspace": folder}


def extract_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    options = read_options("extract", form)
    person = options.person
    who = f"{workspace.persons[person].name} ({person.upper()})" if person else "both people"
    return f"extracting the faces of {who}", "extract", {"workspace": folder, "options": options}


def train_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    budget = text(form, "budget")
    amount = text(form, "amount")
    if budget in ("minutes", "iterations") and not amount:
        raise DeepswapError(f"how many {budget}? fill in the number, or choose 'until stopped'")
    options = read_options("train", form, minutes=number(form, "amount", float, "“Train for”") if budget == "minutes" else None,
                           iterations=number(form, "amount", int, "“Train for”") if budget == "iterations" else None)
    if options.mask_steps is not None:
        return mask_job(folder, workspace, form)
    return "training", "train", {"workspace": folder, "options": options}


def mask_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    options = read_options("train", form)
    if options.mask_steps is None:
        raise DeepswapError("how many mask steps? fill in the number")
    return "training the learned mask", "train_mask", {"workspace": folder, "options": options}


def convert_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    inputs = convert_inputs(folder, workspace)
    chosen = text(form, "input")
    if chosen == ALL_UPLOADS and form.get("mode") != "preview":
        uploads = convert_uploads(folder)
        return f"converting {len(uploads)} uploaded files", "convert_batch", {
            "workspace": folder, "inputs": uploads, "folder": folder / "outputs", "options": read_options("convert", form)}
    if chosen not in inputs:
        raise DeepswapError("choose a video to convert (or upload one)")
    source = inputs[chosen][1]
    preview = form.get("mode") == "preview"
    options = read_options("convert", form, preview=PREVIEW_FRAMES if preview else None)
    output = actions.default_output(folder / "outputs", source, gif=options.gif, preview=preview,
                                    stem=safe_name(source.stem))
    verb = "previewing" if preview else "converting"
    return f"{verb} {source.name}", "convert", {"workspace": folder, "input_path": source, "output": output,
                                                 "options": options}


def evaluate_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    chosen = text(form, "clips")
    inputs = convert_inputs(folder, workspace)
    if chosen and chosen not in inputs:
        raise DeepswapError("choose clips of A from the list")
    options = read_options("evaluate", form, clips=inputs[chosen][1] if chosen else None)
    return "evaluating the model", "evaluate", {"workspace": folder, "options": options}


JOB_BUILDERS: dict[str, JobBuilder] = {"fetch": fetch_job, "extract": extract_job, "train": train_job, "mask": mask_job,
                                       "convert": convert_job, "evaluate": evaluate_job}
