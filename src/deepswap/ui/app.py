"""The web app: pages per workspace (sources, faces, train, convert, verify, evaluate), forms that
post to the library through ``actions``, jobs shown live by Server-Sent Events.

Every page is rendered on the server (Jinja2); htmx sends the forms (with the CSRF header) and
shows their errors; after a change the page reloads, so what it shows is always what is on disk.
A running job's panel follows the job by SSE, and the page reloads when the job ends.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import shutil
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import _io
from ..errors import DeepswapError
from ..filetypes import PHOTO_SUFFIXES, VIDEO_SUFFIXES
from ..workspace import PERSON_KEYS, PersonKey, Workspace
from . import actions
from .jobs import FINISHED, Job, JobManager
from .security import (LOOPBACK_HOSTS, NAME_PATTERN, BodyTooLarge, BodyTooSlow, Guard, check_web_url, inside, safe_name,
                       too_slow, unused_path)

HERE = Path(__file__).parent
MAX_UPLOAD_BYTES = 4 * 2 ** 30
PAGES = {"sources": "Sources", "faces": "Faces", "train": "Train", "convert": "Convert", "verify": "Verify",
         "evaluate": "Evaluate"}
JOB_PAGES = {"fetch": "sources", "extract": "faces", "train": "train", "convert": "convert", "preview": "convert",
             "evaluate": "evaluate"}  # where a finished job stays in view
SHOWN_SUFFIXES = VIDEO_SUFFIXES | PHOTO_SUFFIXES | {".gif"}  # what /files/ serves, and where:
SHOWN_FOLDERS = ("model", "outputs")
SHOWN_PERSON_FOLDERS = (("a", "faces"), ("b", "faces"))
DEFAULT_UPLOADS_QUOTA_GIB = 20
FACES_SHOWN = 600
PREVIEW_FRAMES = 4
EVENT_INTERVAL = 0.3  # seconds between looks at a job for its event stream


@dataclass(frozen=True)
class Site:
    """ROOT: one workspace, or a folder whose sub-folders are workspaces. Pages name a workspace by
    its folder name (``/w/NAME/…``); files are served by their path under ROOT (``/files/…``)."""

    root: Path

    @property
    def single(self) -> bool:
        return actions.is_workspace(self.root)

    @property
    def single_name(self) -> str:
        return safe_name(self.root.name)

    def names(self) -> list[str]:
        if self.single:
            return [self.single_name]
        return sorted(folder.name for folder in self.root.iterdir()
                      if NAME_PATTERN.fullmatch(folder.name) and actions.is_workspace(folder))

    def folder(self, name: str) -> Path:
        """The folder of workspace ``name``; 404 when there is none."""
        if self.single and name == self.single_name:
            return self.root
        if not self.single and NAME_PATTERN.fullmatch(name) and actions.is_workspace(self.root / name):
            return self.root / name
        raise HTTPException(404, f"no workspace {name!r} here")

    def file_url(self, path: str | Path | None, version: object = None) -> str | None:
        """The URL serving ``path``, or None when it is not a file the pages may show (``servable``)."""
        if path is None:
            return None
        resolved = self.servable(Path(path).resolve())
        if resolved is None:
            return None
        url = "/files/" + resolved.relative_to(self.root.resolve()).as_posix()
        return f"{url}?v={version}" if version is not None else url

    def servable(self, path: Path) -> Path | None:
        """``path`` (absolute, symlinks resolved) when it is something deepswap wrote for the pages
        to show: an image or video inside ROOT that is a registered output of one of its
        workspaces, or inside a workspace under its faces, its model's previews, its outputs or
        its reference photos. Never a dotfile, a setting, a key or any other file of the owner's:
        None for those."""
        base = self.root.resolve()
        if not path.is_relative_to(base) or path.suffix.lower() not in SHOWN_SUFFIXES or not path.is_file():
            return None
        parts = path.relative_to(base).parts
        if any(part.startswith(".") for part in parts):
            return None
        inner = parts if self.single else parts[1:] if parts[0] in self.names() else ()
        if inner and (inner[0] in SHOWN_FOLDERS or inner[:2] in SHOWN_PERSON_FOLDERS
                      or (len(inner) == 2 and inner[0] in PERSON_KEYS and Path(inner[1]).stem == "reference")):
            return path
        return path if any(actions.is_registered_output(self.folder(name), path) for name in self.names()) else None


@dataclass
class UI:
    site: Site
    jobs: JobManager
    templates: Jinja2Templates
    csrf_token: str


def ui_of(request: Request) -> UI:
    return request.app.state.ui


# Rendering

def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    ui = ui_of(request)
    context.setdefault("workspace", None)
    return ui.templates.TemplateResponse(request, template, {
        "csrf_token": ui.csrf_token, "site": ui.site, "pages": PAGES, **context}, status_code=status_code)


def workspace_context(request: Request, page: str, *kinds: str) -> dict[str, Any]:
    """What every page of a workspace shows: its name, people, nav and job panel, and ``last``:
    the form of the latest job of ``kinds`` (the page's form shows those values again)."""
    ui = ui_of(request)
    name = request.path_params["name"]
    folder = ui.site.folder(name)
    workspace = actions.open_workspace(folder)
    job = ui.jobs.latest(folder)
    if job is not None and job.state == FINISHED and JOB_PAGES[job.kind] != page:
        job = None
    earlier = [found for kind in kinds if (found := ui.jobs.latest(folder, kind)) is not None]
    last = max(earlier, key=lambda found: found.started).form if earlier else {}
    return {"name": name, "folder": folder, "workspace": workspace, "page": page, "job": job, "last": last,
            "job_html": job_panel(request, name, job)}


def job_panel(request: Request, name: str, job: Job | None) -> str:
    ui = ui_of(request)
    return ui.templates.get_template("_job.html").render(job=job, name=name, site=ui.site, now=time.time())


def message(text: str, status_code: int = 422) -> HTMLResponse:
    """A one-line answer to a form, shown in the page's message area."""
    response = HTMLResponse(f'<p class="error">{html.escape(text, quote=False)}</p>', status_code)
    response.headers["HX-Retarget"] = "#message"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def reload_page(location: str | None = None) -> Response:
    """Tell htmx to reload the page (or go to ``location``) after a change."""
    return Response(status_code=204, headers={"HX-Redirect": location} if location else {"HX-Refresh": "true"})


# Form values

def text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def number(form: FormData, key: str, kind: type = float, label: str | None = None) -> Any:
    """A number field: None when empty, a one-line error when it is not a number."""
    value = text(form, key)
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise DeepswapError(f"{label or key}: {value!r} is not a {'whole ' if kind is int else ''}number") from None


def person_of(form: FormData | dict[str, Any], key: str = "person") -> PersonKey:
    value = form.get(key)
    if value not in PERSON_KEYS:
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
    quota = request.app.state.uploads_quota
    used = await run_in_threadpool(_folder_bytes, uploads)
    if used + (upload.size or 0) > quota:
        raise DeepswapError(f"{upload.filename}: the uploads folder {uploads} would pass its quota of "
                            f"{format_quantity(quota, 'bytes')} (it holds {format_quantity(used, 'bytes')}); "
                            "remove files there first")
    folder.mkdir(parents=True, exist_ok=True)
    target = unused_path(folder, safe_name(upload.filename or ""))
    await run_in_threadpool(_keep, upload, target, media)
    return target


def _keep(upload: UploadFile, target: Path, media: bool) -> None:
    with _io.atomic_path(target) as tmp:
        with tmp.open("wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 2 ** 20)
        if media:
            actions.check_media(tmp, upload.filename or target.name)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def uploads_dir(folder: Path, *parts: str) -> Path:
    return folder.joinpath("uploads", *parts)


# Pages

async def index(request: Request) -> Response:
    ui = ui_of(request)
    if ui.site.single:
        return RedirectResponse(f"/w/{ui.site.single_name}/sources", 303)
    listed = []
    for name in ui.site.names():
        try:
            listed.append((name, actions.status(ui.site.root / name), None))
        except DeepswapError as error:
            listed.append((name, None, str(error)))
    return render(request, "index.html", listed=listed)


async def create(request: Request) -> Response:
    ui = ui_of(request)
    if ui.site.single:
        return message("this server shows one workspace; start `deepswap ui` on a folder to create more", 403)
    form = await request.form()
    name = text(form, "folder")
    if not NAME_PATTERN.fullmatch(name):
        return message("folder name: letters, digits, . - _ (up to 80), not starting with . - _")
    if (ui.site.root / name).exists():
        return message(f"{name}: already exists; choose another name")
    await run_in_threadpool(actions.create_workspace, ui.site.root / name, text(form, "a"), text(form, "b"),
                            number(form, "face_size", int, "face size"), samples=form.get("samples") == "on")
    return reload_page(f"/w/{name}/sources")


async def workspace_home(request: Request) -> Response:
    return RedirectResponse(f"/w/{request.path_params['name']}/sources", 303)


async def sources_page(request: Request) -> Response:
    context = workspace_context(request, "sources")
    report = actions.status(context["folder"])
    return render(request, "sources.html", **context, report=report,
                  pending=sum(not s["available"] for p in report["persons"].values() for s in p["sources"]
                              if s["kind"] == "url"))


async def add_urls(request: Request) -> Response:
    context = workspace_context(request, "sources")
    form = await request.form()
    urls = text(form, "urls").split()
    if not urls:
        return message("paste one or more URLs first")
    person, start, duration = person_of(form), number(form, "start"), number(form, "duration")
    _refuse_if_busy(request, context["folder"])
    for url in urls:
        await run_in_threadpool(check_web_url, url, request.app.state.allow_private_urls)
    await run_in_threadpool(actions.add_urls, context["folder"], person, urls, start, duration)
    return reload_page()


async def add_files(request: Request) -> Response:
    """Uploaded videos become one source each; uploaded photos, one photo-folder source."""
    context = workspace_context(request, "sources")
    form = await request.form()
    person = person_of(form)
    start, duration = number(form, "start"), number(form, "duration")
    _refuse_if_busy(request, context["folder"])
    uploads = uploaded(form, "files", VIDEO_SUFFIXES | PHOTO_SUFFIXES)
    if not uploads:
        return message("choose one or more videos or photos first")
    photos = [upload for upload in uploads if Path(safe_name(upload.filename or "")).suffix in PHOTO_SUFFIXES]
    sources: list[Path] = []
    try:
        for upload in uploads:
            if upload not in photos:
                sources.append(await store(request, upload, context["folder"], person))
        if photos:
            album = unused_path(uploads_dir(context["folder"], person), "photos")
            sources.append(album)
            for upload in photos:
                await store(request, upload, context["folder"], person, album.name)
        await run_in_threadpool(actions.add_files, context["folder"], person, sources, start, duration)
    except DeepswapError:
        for source in sources:
            shutil.rmtree(source, ignore_errors=True) if source.is_dir() else source.unlink(missing_ok=True)
        raise
    return reload_page()


async def set_reference(request: Request) -> Response:
    context = workspace_context(request, "sources")
    form = await request.form()
    person = person_of(form)
    _refuse_if_busy(request, context["folder"])
    photos = uploaded(form, "photo", PHOTO_SUFFIXES)
    if not photos:
        return message("choose a photo first")
    photo = await store(request, photos[0], context["folder"], "reference")
    try:
        await run_in_threadpool(actions.set_reference, context["folder"], person, photo)
    finally:
        photo.unlink()
    return reload_page()


async def faces_page(request: Request) -> Response:
    context = workspace_context(request, "faces", "extract")
    person = request.query_params.get("person", "a")
    person = person if person in PERSON_KEYS else "a"
    order = request.query_params.get("order", "time")
    order = order if order in actions.FACE_ORDERS else "time"
    workspace: Workspace = context["workspace"]
    tiles = actions.faces(workspace, person, order)  # type: ignore[arg-type]
    show_all = request.query_params.get("all") == "1"
    return render(request, "faces.html", **context, person=person, order=order, orders=actions.FACE_ORDERS,
                  tiles=tiles if show_all else tiles[:FACES_SHOWN], total=len(tiles),
                  summary={key: actions.faces_summary(workspace, key) for key in PERSON_KEYS},
                  has_sources={key: bool(workspace.persons[key].sources) for key in PERSON_KEYS})


async def face_thumbnail(request: Request) -> Response:
    context = workspace_context(request, "faces")
    person = person_of(request.path_params)
    data = actions.thumbnail(context["workspace"], person, request.path_params["face"])
    if data is None:
        raise HTTPException(404, "no such face")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def remove_faces(request: Request) -> Response:
    context = workspace_context(request, "faces")
    form = await request.form()
    person = person_of(form)
    _refuse_if_busy(request, context["folder"])
    chosen = [face for face in text(form, "faces").split(",") if face]
    if not chosen:
        return message("mark faces first: click them, or drag across them")
    await run_in_threadpool(actions.remove_faces, context["workspace"], person, chosen)
    return reload_page()


async def train_page(request: Request) -> Response:
    context = workspace_context(request, "train", "train")
    workspace: Workspace = context["workspace"]
    ui = ui_of(request)
    preview = workspace.model_dir / "preview.png"
    return render(request, "train.html", **context, models=[(model, model) for model in actions.models()],
                  saved=actions.saved_model(workspace),
                  loss=actions.loss_history(workspace), preview_url=ui.site.file_url(preview, _mtime(preview)),
                  preview_path=str(preview),
                  faces={key: actions.faces_summary(workspace, key) for key in PERSON_KEYS})


async def convert_page(request: Request) -> Response:
    context = workspace_context(request, "convert", "convert", "preview")
    ui = ui_of(request)
    folder: Path = context["folder"]
    workspace: Workspace = context["workspace"]
    inputs = convert_inputs(folder, workspace)
    preview_job, convert_job = ui.jobs.latest(folder, "preview"), ui.jobs.latest(folder, "convert")
    previews = [ui.site.file_url(path) for path in preview_job.result["files"]] if preview_job and preview_job.result else []
    outputs = [(output, _shown_path(folder, output["path"]), ui.site.file_url(output["path"]))
               for output in reversed(workspace.outputs())]
    # The result to show: this server's latest conversion, else the newest output file (say, the demo's video).
    if convert_job is not None and convert_job.result:
        done = convert_job.result
        result = {"url": ui.site.file_url(done["files"][0] if done["files"] else done["output"]),
                  "frames": done["frames"], "swapped": done["swapped"]}
    else:
        result = next(({"url": url, "frames": output["frames"], "swapped": output["swapped"]}
                       for output, _, url in outputs if url is not None), None)
    if result is not None and result["url"] is not None:
        result["video"] = Path(result["url"]).suffix.lower() in VIDEO_SUFFIXES
    return render(request, "convert.html", **context, inputs_choices=[(key, label) for key, (label, _) in inputs.items()],
                  chosen=request.query_params.get("input") or context["last"].get("input"),
                  previews=[url for url in previews if url], result=result, outputs=outputs, preview_frames=PREVIEW_FRAMES,
                  has_model=actions.saved_model(workspace)["model"] is not None)


def convert_inputs(folder: Path, workspace: Workspace) -> dict[str, tuple[str, Path]]:
    """The videos convert can take: uploads first, then each person's footage (key → label, path)."""
    choices: dict[str, tuple[str, Path]] = {}
    upload_dir = folder / "uploads" / "convert"
    if upload_dir.is_dir():
        for path in sorted(upload_dir.iterdir(), key=lambda p: -p.stat().st_mtime):
            if path.suffix in VIDEO_SUFFIXES | PHOTO_SUFFIXES:
                choices[f"upload:{path.name}"] = (f"uploaded: {path.name}", path)
    for key, paths in actions.convertible_videos(workspace).items():
        for index, path in enumerate(paths):
            choices[f"{key}:{index}"] = (f"{workspace.persons[key].name} ({key.upper()}): {path.name}", path)
    return choices


async def upload_convert_input(request: Request) -> Response:
    context = workspace_context(request, "convert")
    form = await request.form()
    uploads = uploaded(form, "file", VIDEO_SUFFIXES | PHOTO_SUFFIXES)
    if not uploads:
        return message("choose a video or photo first")
    stored = await store(request, uploads[0], context["folder"], "convert")
    return reload_page(f"/w/{context['name']}/convert?input=upload:{stored.name}")


async def verify_page(request: Request) -> Response:
    context = workspace_context(request, "verify")
    ui = ui_of(request)
    outputs = [output["path"] for output in reversed(context["workspace"].outputs())
               if ui.site.file_url(output["path"]) is not None]
    return render(request, "verify.html", **context, outputs=outputs)


async def verify_file(request: Request) -> Response:
    context = workspace_context(request, "verify")
    ui = ui_of(request)
    form = await request.form()
    uploads = uploaded(form, "file", None)
    stored = [await store(request, upload, context["folder"], "verify", media=False) for upload in uploads[:1]]
    try:
        if stored:
            target, shown = stored[0], uploads[0].filename
        else:
            picked = text(form, "output")
            if not picked or ui.site.file_url(picked) is None:
                return message("drop a file here, or pick an output")
            target, shown = Path(picked), Path(picked).name
        verdict = await run_in_threadpool(actions.verify, target)
    finally:
        for path in stored:
            path.unlink(missing_ok=True)
    return render(request, "_verdict.html", verdict=verdict, shown=shown)


async def evaluate_page(request: Request) -> Response:
    context = workspace_context(request, "evaluate", "evaluate")
    ui = ui_of(request)
    job = ui.jobs.latest(context["folder"], "evaluate")
    report = job.result if job is not None and isinstance(job.result, dict) else None
    inputs = convert_inputs(context["folder"], context["workspace"])
    return render(request, "evaluate.html", **context, inputs_choices=[(key, label) for key, (label, _) in inputs.items()],
                  report=report, rows=actions.evaluation_rows(report) if report else [],
                  has_model=actions.saved_model(context["workspace"])["model"] is not None)


# Jobs

def _refuse_if_busy(request: Request, folder: Path) -> None:
    running = ui_of(request).jobs.running(folder)
    if running is not None:
        raise DeepswapError(f"busy with {running.title}; wait for it to finish or stop it first")


async def start_job(request: Request) -> Response:
    context = workspace_context(request, "")
    ui = ui_of(request)
    folder: Path = context["folder"]
    form = await request.form()
    kind = request.path_params["kind"]
    builders: dict[str, Callable[[Path, Workspace, FormData], tuple[str, str, dict[str, Any]]]] = {
        "fetch": _fetch_job, "extract": _extract_job, "train": _train_job, "convert": _convert_job,
        "evaluate": _evaluate_job}
    if kind not in builders:
        raise HTTPException(404, f"no job {kind!r}")
    title, action, arguments = builders[kind](folder, context["workspace"], form)
    if kind == "convert" and arguments["options"].preview is not None:
        kind = "preview"
    ui.jobs.start(folder, kind, title, action, arguments,
                  form={key: value for key, value in form.multi_items() if isinstance(value, str)})
    return reload_page()


def _fetch_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    return "fetching downloads", "fetch", {"workspace": folder}


def _extract_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    person = person_of(form) if text(form, "person") else None
    options = actions.extract_options(person, number(form, "fps", float, "frames per second"), form.get("force") == "on")
    who = f"{workspace.persons[person].name} ({person.upper()})" if person else "both people"
    return f"extracting the faces of {who}", "extract", {"workspace": folder, "options": options}


def _train_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    budget = text(form, "budget")
    amount = text(form, "amount")
    if budget in ("minutes", "iterations") and not amount:
        raise DeepswapError(f"how many {budget}? fill in the number, or choose 'until stopped'")
    options = actions.train_options(
        model=text(form, "model") or None,
        minutes=number(form, "amount", float, "minutes") if budget == "minutes" else None,
        iterations=number(form, "amount", int, "iterations") if budget == "iterations" else None,
        batch_size=number(form, "batch_size", int, "batch size"),
        learning_rate=number(form, "learning_rate", float, "learning rate"),
        architecture=architecture_of(text(form, "architecture")),
        preview_every=number(form, "preview_every", int, "preview every"))
    return "training", "train", {"workspace": folder, "options": options}


def _convert_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    inputs = convert_inputs(folder, workspace)
    chosen = text(form, "input")
    if chosen not in inputs:
        raise DeepswapError("choose a video to convert (or upload one)")
    source = inputs[chosen][1]
    preview = form.get("mode") == "preview"
    gif = form.get("gif") == "on"
    options = actions.convert_options(
        {"color": text(form, "color") or None, "blend": text(form, "blend") or None,
         "mask_erode": number(form, "mask_erode", float, "mask erode"), "mask_blur": number(form, "mask_blur", float, "mask blur"),
         "detail": number(form, "detail", float, "fine detail")},
        direction=text(form, "direction") or None, side_by_side=form.get("side_by_side") == "on",
        start=number(form, "start"), duration=number(form, "duration"), scale=number(form, "scale"),
        width=number(form, "width", int), crf=number(form, "crf", int), gif=gif,
        batch_size=number(form, "batch_size", int, "batch size"), preview=PREVIEW_FRAMES if preview else None)
    previews = folder / "outputs" / "previews"
    previews.mkdir(parents=True, exist_ok=True)
    stem = safe_name(source.stem)
    if preview:
        output = unused_path(previews, stem)
    else:
        suffix = ".gif" if gif else source.suffix.lower() if source.suffix.lower() in PHOTO_SUFFIXES else ".mp4"
        output = unused_path(previews.parent, f"{stem}_swapped{suffix}")
    verb = "previewing" if preview else "converting"
    return f"{verb} {source.name}", "convert", {"workspace": folder, "input_path": source, "output": output,
                                                 "options": options}


def _evaluate_job(folder: Path, workspace: Workspace, form: FormData) -> tuple[str, str, dict[str, Any]]:
    chosen = text(form, "clips")
    inputs = convert_inputs(folder, workspace)
    if chosen and chosen not in inputs:
        raise DeepswapError("choose clips of A from the list")
    clips = inputs[chosen][1] if chosen else None
    return "evaluating the model", "evaluate", {
        "workspace": folder, "clips": clips, "max_frames": number(form, "max_frames", int, "frames") or 150}


async def stop_job(request: Request) -> Response:
    context = workspace_context(request, "")
    ui_of(request).jobs.stop(context["folder"])
    return Response(status_code=204)


async def job_events(request: Request) -> Response:
    """The workspace's current job as an event stream: a ``job`` event whenever it changed, carrying
    the panel's HTML, the state, new loss points and the files written (and once a second, so its
    clock moves); the stream ends with the job."""
    context = workspace_context(request, "")
    ui = ui_of(request)
    job = ui.jobs.latest(context["folder"])  # finished or not: a stream opened late still sees the end
    if job is None:
        return Response(status_code=204)

    async def stream() -> AsyncIterator[dict[str, str]]:
        seen, points, sent = -1, 0, 0.0
        while True:
            if job.version != seen or time.monotonic() - sent >= 1.0:  # at least every second: the clock moves
                seen, sent = job.version, time.monotonic()
                loss = job.loss
                if len(loss) < points:  # the history was thinned: send it whole again
                    points = 0
                yield {"event": "job", "data": json.dumps({
                    "id": job.id, "state": job.state, "active": job.active, "kind": job.kind,
                    "html": job_panel(request, context["name"], job), "reset": points == 0,
                    "loss": loss[points:], "files": {path: ui.site.file_url(path, count) for path, count in job.files.items()},
                })}
                points = len(loss)
            if not job.active:
                return
            await asyncio.sleep(EVENT_INTERVAL)

    return EventSourceResponse(stream(), ping=15)


async def serve_file(request: Request) -> Response:
    ui = ui_of(request)
    path = inside(ui.site.root, request.path_params["path"])
    if path is None or ui.site.servable(path) is None:
        raise HTTPException(404, "no such file")
    download = request.query_params.get("download") == "1"
    return FileResponse(path, filename=path.name if download else None,
                        content_disposition_type="attachment" if download else "inline")


def _shown_path(folder: Path, path: str) -> str:
    """A path as the pages show it: relative to the workspace when inside it."""
    resolved = Path(path).resolve()
    return resolved.relative_to(folder.resolve()).as_posix() if resolved.is_relative_to(folder.resolve()) else path


def _mtime(path: Path) -> int | None:
    return int(path.stat().st_mtime_ns // 1_000_000) if path.is_file() else None


# Errors

async def deepswap_error(request: Request, error: Exception) -> Response:
    """A user error: one line in the message area (forms) or on an error page (pages)."""
    if request.method == "GET":
        return render(request, "error.html", status_code=400, error=str(error))
    return message(str(error))


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return render(request, "error.html", status_code=error.status_code, error=error.detail)
    return message(str(error.detail), error.status_code)


async def too_large(request: Request, error: Exception) -> Response:
    return message(f"upload too large: the limit is {request.app.state.max_body / 2 ** 20:.0f} MiB", 413)


async def body_too_slow(request: Request, error: Exception) -> Response:
    return message(too_slow().body.decode(), 408)


def create_app(root: str | Path, *, access_token: str | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               jobs: JobManager | None = None, allow_private_urls: bool = False,
               uploads_quota_bytes: int = DEFAULT_UPLOADS_QUOTA_GIB * 2 ** 30,
               local_host: str | None = "127.0.0.1") -> Starlette:
    """The web UI over ROOT. ``access_token`` (``UIServer`` always sets one unless told not to) is
    then needed by every request. ``local_host``: the loopback address served, when it is one; then
    only requests naming this machine are answered (no page elsewhere reaches us by DNS rebinding).
    ``allow_private_urls``: the URL field may name loopback and private addresses.
    ``uploads_quota_bytes``: what each workspace's ``uploads/`` folder may hold."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise DeepswapError(f"{root}: no such folder")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(seconds=format_seconds, quantity=format_quantity)
    manager = jobs or JobManager()
    csrf_token = secrets.token_urlsafe(24)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(manager.shutdown)

    workspace_routes = [
        Route("/", workspace_home),
        Route("/sources", sources_page),
        Route("/sources/urls", add_urls, methods=["POST"]),
        Route("/sources/files", add_files, methods=["POST"]),
        Route("/sources/reference", set_reference, methods=["POST"]),
        Route("/faces", faces_page),
        Route("/faces/remove", remove_faces, methods=["POST"]),
        Route("/thumb/{person}/{face}.jpg", face_thumbnail),
        Route("/train", train_page),
        Route("/convert", convert_page),
        Route("/convert/upload", upload_convert_input, methods=["POST"]),
        Route("/verify", verify_page),
        Route("/verify", verify_file, methods=["POST"]),
        Route("/evaluate", evaluate_page),
        Route("/run/{kind}", start_job, methods=["POST"]),
        Route("/job/stop", stop_job, methods=["POST"]),
        Route("/job/events", job_events),
    ]
    middleware = [Middleware(Guard, csrf_token=csrf_token, access_token=access_token, max_body=max_upload_bytes)]
    if local_host is not None:
        allowed = {host.strip("[]") for host in (*LOOPBACK_HOSTS, local_host)}
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=sorted(allowed)))
    app = Starlette(
        routes=[Route("/", index), Route("/new", create, methods=["POST"]),
                Mount("/w/{name}", routes=workspace_routes), Route("/files/{path:path}", serve_file),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        middleware=middleware, lifespan=lifespan,
        exception_handlers={DeepswapError: deepswap_error, HTTPException: http_error, BodyTooLarge: too_large,
                            BodyTooSlow: body_too_slow})
    app.state.ui = UI(Site(root), manager, templates, csrf_token)
    app.state.max_body = max_upload_bytes
    app.state.allow_private_urls = allow_private_urls
    app.state.uploads_quota = uploads_quota_bytes
    return app


def format_seconds(seconds: float | None) -> str:
    """12:34 or 1:02:03; "–" when unknown."""
    if seconds is None or not 0 <= seconds < 1e8:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_quantity(value: float | None, unit: str = "") -> str:
    """A count in its unit, bytes in KiB/MiB/GiB."""
    if value is None:
        return "?"
    if unit == "bytes":
        for size, name in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if value >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:,.0f}"
