"""The web app's routes: pages per workspace (sources, faces, train, convert, verify, evaluate),
forms that post to the library through ``actions`` (read by ``forms``), jobs shown live by
Server-Sent Events, and ``create_app``, which puts them behind the guards of ``security``.

Every page is rendered on the server (Jinja2, see ``site``); htmx sends the forms (with the CSRF
header) and shows their errors; after a change the page reloads, so what it shows is always what is
on disk. A running job's panel follows the job by SSE, and the page reloads when the job ends.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import DeepswapError
from . import actions, forms
from .actions import Workspace
from .forms import PREVIEW_FRAMES, number, person_of, store, text, uploaded, uploads_dir
from .jobs import JobManager
from .options import UISettings
from .security import LOOPBACK_HOSTS, NAME_PATTERN, BodyTooLarge, BodyTooSlow, Guard, check_web_url, inside, safe_name, too_slow
from .site import (UI, Site, format_quantity, format_seconds, job_panel, message, mtime_of, reload_page, render,
                   shown_path, ui_of, workspace_context)

HERE = Path(__file__).parent
MAX_UPLOAD_BYTES = 4 * 2 ** 30
FACES_SHOWN = 600
EVENT_INTERVAL = 0.3  # seconds between looks at a job for its event stream


# Rendering


# Form values


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
    return render(request, "sources.html", **context, fields=forms.form_fields("add"), report=report,
                  pending=sum(not s["available"] for p in report["persons"].values() for s in p["sources"]
                              if s["kind"] == "url"))


async def add_urls(request: Request) -> Response:
    context = workspace_context(request, "sources")
    form = await request.form()
    urls = text(form, "urls").split()
    if not urls:
        return message("paste one or more URLs first")
    person, span = person_of(form), forms.read_options("add", form)
    ui_of(request).jobs.check_idle(context["folder"])
    for url in urls:
        await run_in_threadpool(check_web_url, url, request.app.state.settings.ui_allow_private_urls)
    await run_in_threadpool(actions.add_urls, context["folder"], person, urls, span.start, span.duration)
    return reload_page()


async def add_files(request: Request) -> Response:
    """Uploaded videos become one source each; uploaded photos, one photo-folder source."""
    context = workspace_context(request, "sources")
    form = await request.form()
    person = person_of(form)
    span = forms.read_options("add", form)
    ui_of(request).jobs.check_idle(context["folder"])
    uploads = uploaded(form, "files", actions.VIDEO_SUFFIXES | actions.PHOTO_SUFFIXES)
    if not uploads:
        return message("choose one or more videos or photos first")
    photos = [upload for upload in uploads if Path(safe_name(upload.filename or "")).suffix in actions.PHOTO_SUFFIXES]
    sources: list[Path] = []
    try:
        for upload in uploads:
            if upload not in photos:
                sources.append(await store(request, upload, context["folder"], person))
        if photos:
            album = actions.unused_path(uploads_dir(context["folder"], person), "photos")
            sources.append(album)
            for upload in photos:
                await store(request, upload, context["folder"], person, album.name)
        await run_in_threadpool(actions.add_files, context["folder"], person, sources, span.start, span.duration)
    except DeepswapError:
        for source in sources:
            shutil.rmtree(source, ignore_errors=True) if source.is_dir() else source.unlink(missing_ok=True)
        raise
    return reload_page()


async def set_reference(request: Request) -> Response:
    context = workspace_context(request, "sources")
    form = await request.form()
    person = person_of(form)
    ui_of(request).jobs.check_idle(context["folder"])
    photos = uploaded(form, "photo", actions.PHOTO_SUFFIXES)
    if not photos:
        return message("choose a photo first")
    photo = await store(request, photos[0], context["folder"], "reference")
    try:
        await run_in_threadpool(actions.set_reference, context["folder"], person, photo)
    finally:
        photo.unlink()
    return reload_page()


async def faces_page(request: Request) -> Response:
    context = workspace_context(request, "faces", "extract", "mask")
    person = request.query_params.get("person", "a")
    person = person if person in actions.PERSON_KEYS else "a"
    order = request.query_params.get("order", "time")
    order = order if order in actions.FACE_ORDERS else "time"
    workspace: Workspace = context["workspace"]
    tiles = actions.faces(workspace, person, order)  # type: ignore[arg-type]
    show_all = request.query_params.get("all") == "1"
    return render(request, "faces.html", **context, fields=forms.form_fields("extract"), train_fields=forms.form_fields("train"),
                  person=person, order=order, orders=actions.FACE_ORDERS, corrected=actions.corrected_faces(workspace, person),
                  has_model=actions.saved_model(workspace)["model"] is not None,
                  tiles=tiles if show_all else tiles[:FACES_SHOWN], total=len(tiles),
                  summary={key: actions.faces_summary(workspace, key) for key in actions.PERSON_KEYS},
                  has_sources={key: bool(workspace.persons[key].sources) for key in actions.PERSON_KEYS})


async def face_thumbnail(request: Request) -> Response:
    context = workspace_context(request, "faces")
    person = person_of(request.path_params)
    data = actions.thumbnail(context["workspace"], person, request.path_params["face"])
    if data is None:
        raise HTTPException(404, "no such face")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def mask_editor(request: Request) -> Response:
    """A face's mask editor: the crop with its stored mask (and what the learned mask says), to paint and save."""
    context = workspace_context(request, "faces", "mask")
    person = person_of(request.path_params)
    face = await run_in_threadpool(actions.mask_face, context["workspace"], person, request.path_params["face"])
    if face is None:
        raise HTTPException(404, "no such face")
    site = ui_of(request).site
    workspace: Workspace = context["workspace"]
    return render(request, "mask.html", **context, person=person, face=face, train_fields=forms.form_fields("train"),
                  crop_url=site.file_url(face.crop), mask_url=site.file_url(face.mask, mtime_of(face.mask)),
                  has_model=actions.saved_model(workspace)["model"] is not None,
                  summary={key: actions.faces_summary(workspace, key) for key in actions.PERSON_KEYS})


async def learned_mask(request: Request) -> Response:
    context = workspace_context(request, "faces")
    person = person_of(request.path_params)
    data = await run_in_threadpool(actions.learned_mask, context["workspace"], person, request.path_params["face"])
    if data is None:
        raise HTTPException(404, "no such face, or no learned mask yet")
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


async def save_mask(request: Request) -> Response:
    """Store a face's mask as painted in the editor (the face named by id, checked against the set)."""
    context = workspace_context(request, "faces")
    form = await request.form()
    person = person_of(form)
    ui_of(request).jobs.check_idle(context["folder"])
    upload = form.get("mask")
    if not isinstance(upload, UploadFile):
        return message("send the mask as a PNG file")
    data = await upload.read(actions.MAX_MASK_BYTES + 1)
    corrected = await run_in_threadpool(actions.correct_mask, context["workspace"], person, text(form, "face"), data)
    return Response(status_code=204, headers={"X-Corrected-Faces": str(corrected)})


async def remove_faces(request: Request) -> Response:
    context = workspace_context(request, "faces")
    form = await request.form()
    person = person_of(form)
    ui_of(request).jobs.check_idle(context["folder"])
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
    return render(request, "train.html", **context, fields=forms.form_fields("train"), models=[(model, model) for model in actions.models()],
                  saved=actions.saved_model(workspace),
                  loss=actions.loss_history(workspace), preview_url=ui.site.file_url(preview, mtime_of(preview)),
                  preview_path=str(preview),
                  faces={key: actions.faces_summary(workspace, key) for key in actions.PERSON_KEYS})


async def convert_page(request: Request) -> Response:
    context = workspace_context(request, "convert", "convert", "preview")
    ui = ui_of(request)
    folder: Path = context["folder"]
    workspace: Workspace = context["workspace"]
    inputs = forms.convert_inputs(folder, workspace)
    preview_job, convert_job = ui.jobs.latest(folder, "preview"), ui.jobs.latest(folder, "convert")
    previews = [ui.site.file_url(path) for path in preview_job.result["files"]] if preview_job and preview_job.result else []
    outputs = [(output, shown_path(folder, output["path"]), ui.site.file_url(output["path"]))
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
        result["video"] = Path(result["url"]).suffix.lower() in actions.VIDEO_SUFFIXES
    return render(request, "convert.html", **context, fields=forms.form_fields("convert"), inputs_choices=_convert_choices(folder, inputs),
                  chosen=request.query_params.get("input") or context["last"].get("input"),
                  previews=[url for url in previews if url], result=result, outputs=outputs, preview_frames=PREVIEW_FRAMES,
                  has_model=actions.saved_model(workspace)["model"] is not None)


def _convert_choices(folder: Path, inputs: dict[str, tuple[str, Path]]) -> list[tuple[str, str]]:
    """The Convert page's inputs: every upload at once (a batch) when there are several, then each input."""
    uploads = len(forms.convert_uploads(folder))
    every = [(forms.ALL_UPLOADS, f"all {uploads} uploaded files (a batch into outputs/)")] if uploads > 1 else []
    return every + [(key, label) for key, (label, _) in inputs.items()]


async def upload_convert_input(request: Request) -> Response:
    context = workspace_context(request, "convert")
    form = await request.form()
    uploads = uploaded(form, "file", actions.VIDEO_SUFFIXES | actions.PHOTO_SUFFIXES)
    if not uploads:
        return message("choose a video or photo first")
    stored = [await store(request, upload, context["folder"], "convert") for upload in uploads]
    chosen = forms.ALL_UPLOADS if len(stored) > 1 else f"upload:{stored[0].name}"
    return reload_page(f"/w/{context['name']}/convert?input={chosen}")


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
    inputs = forms.convert_inputs(context["folder"], context["workspace"])
    groups = await run_in_threadpool(actions.coverage_groups, context["folder"])
    coverage = [(group, [(ui.site.file_url(a), ui.site.file_url(b)) for a, b in group.examples]) for group in groups]
    return render(request, "evaluate.html", **context, fields=forms.form_fields("evaluate"), inputs_choices=[(key, label) for key, (label, _) in inputs.items()],
                  report=report, rows=actions.evaluation_rows(report) if report else [], coverage=coverage,
                  has_model=actions.saved_model(context["workspace"])["model"] is not None)


# Jobs


async def start_job(request: Request) -> Response:
    context = workspace_context(request, "")
    ui = ui_of(request)
    folder: Path = context["folder"]
    form = await request.form()
    kind = request.path_params["kind"]
    if kind not in forms.JOB_BUILDERS:
        raise HTTPException(404, f"no job {kind!r}")
    title, action, arguments = forms.JOB_BUILDERS[kind](folder, context["workspace"], form)
    if kind == "convert" and arguments["options"].preview is not None:
        kind = "preview"
    ui.jobs.start(folder, kind, title, action, arguments,
                  form={key: value for key, value in form.multi_items() if isinstance(value, str)})
    return reload_page()


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


# Errors

async def deepswap_error(request: Request, error: Exception) -> Response:
    """A user error: one line in the message area (forms) or on an error page (pages); an option is
    named by its label on the form."""
    said = error.said(forms.said_in_form) if isinstance(error, actions.OptionError) else str(error)
    if request.method == "GET":
        return render(request, "error.html", status_code=400, error=said)
    return message(said)


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
               jobs: JobManager | None = None, settings: UISettings = UISettings(),
               local_host: str | None = "127.0.0.1") -> Starlette:
    """The web UI over ROOT. ``access_token`` (``UIServer`` always sets one unless told not to) is
    then needed by every request. ``local_host``: the loopback address served, when it is one; then
    only requests naming this machine are answered (no page elsewhere reaches us by DNS rebinding).
    ``settings``: the owner's (private URLs allowed, the uploads quota)."""
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
        Route("/faces/mask", save_mask, methods=["POST"]),
        Route("/faces/{person}/{face}/mask", mask_editor),
        Route("/learned/{person}/{face}.png", learned_mask),
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
    app.state.settings = settings
    return app


