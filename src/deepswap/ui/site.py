"""What every page shares: the site (ROOT, its workspaces and the files the pages may show),
rendering a page with its workspace's context and job panel, and the one-line answers to forms."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from . import actions
from .jobs import FINISHED, Job, JobManager
from .security import NAME_PATTERN, safe_name

PAGES = {"sources": "Sources", "faces": "Faces", "train": "Train", "convert": "Convert", "verify": "Verify",
         "evaluate": "Evaluate"}
JOB_PAGES = {"fetch": "sources", "extract": "faces", "mask": "faces", "train": "train", "convert": "convert",
             "preview": "convert", "evaluate": "evaluate"}  # where a finished job stays in view
SHOWN_SUFFIXES = actions.VIDEO_SUFFIXES | actions.PHOTO_SUFFIXES | {".gif"}  # what /files/ serves, and where:
SHOWN_FOLDERS = ("model", "outputs")
SHOWN_PERSON_FOLDERS = (("a", "faces"), ("b", "faces"))


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
                      or (len(inner) == 2 and inner[0] in actions.PERSON_KEYS and Path(inner[1]).stem == "reference")):
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


def shown_path(folder: Path, path: str) -> str:
    """A path as the pages show it: relative to the workspace when inside it."""
    resolved = Path(path).resolve()
    return resolved.relative_to(folder.resolve()).as_posix() if resolved.is_relative_to(folder.resolve()) else path


def mtime_of(path: Path) -> int | None:
    return int(path.stat().st_mtime_ns // 1_000_000) if path.is_file() else None


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
